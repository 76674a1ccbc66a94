//! The recording job: ffmpeg copies the stream into segment files; each segment is registered
//! in the store once ffmpeg has closed it (it appears in the segment list), never before.

use crate::ffmpeg::record_arguments;
use crate::supervisor::{Heartbeat, Job};
use crate::{now_ms, IngestError};
use parking_lot::Mutex;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ChildStdout;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vigil_base::camera::SourcePolicy;
use vigil_base::CameraConfig;
use vigil_store::{NewSegment, VideoStore};

struct Run {
    list: PathBuf,
    /// Wall clock at spawn; segment times are offsets from it.
    started_ms: i64,
    read_offset: u64,
    pending: String,
}

pub struct RecorderJob {
    camera: CameraConfig,
    sources: SourcePolicy,
    /// `<recordings>/<camera>`.
    directory: PathBuf,
    segment_seconds: u32,
    store: Arc<dyn VideoStore>,
    run: Mutex<Option<Run>>,
    registered: AtomicU64,
}

impl RecorderJob {
    pub fn new(
        camera: CameraConfig,
        sources: SourcePolicy,
        recordings_dir: &Path,
        segment_seconds: u32,
        store: Arc<dyn VideoStore>,
    ) -> Self {
        let directory = recordings_dir.join(camera.id.as_str());
        Self {
            camera,
            sources,
            directory,
            segment_seconds,
            store,
            run: Mutex::new(None),
            registered: AtomicU64::new(0),
        }
    }

    pub fn segments_registered(&self) -> u64 {
        self.registered.load(Ordering::Relaxed)
    }

    fn register_completed(&self, run: &mut Run) -> Result<(), IngestError> {
        let Ok(mut file) = std::fs::File::open(&run.list) else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(run.read_offset))
            .map_err(IngestError::Pipe)?;
        let mut fresh = String::new();
        let read = file.read_to_string(&mut fresh).map_err(IngestError::Pipe)?;
        run.read_offset += read as u64;
        run.pending.push_str(&fresh);
        while let Some(newline) = run.pending.find('\n') {
            let line: String = run.pending.drain(..=newline).collect();
            let mut fields = line.trim().rsplitn(3, ',');
            let (Some(end), Some(start), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(start), Ok(end)) = (start.parse::<f64>(), end.parse::<f64>()) else {
                continue;
            };
            let file_name = Path::new(name.trim_matches('"'))
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let path = self.directory.join(&file_name);
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            let segment = NewSegment {
                camera: self.camera.id.clone(),
                path: format!("{}/{}", self.camera.id, file_name),
                started_at_ms: run.started_ms + (start * 1000.0) as i64,
                ended_at_ms: run.started_ms + (end.max(start) * 1000.0) as i64,
                bytes: metadata.len(),
            };
            match self.store.add_segment(&segment) {
                Ok(_) => {
                    self.registered.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("vigil_recording_segments_total", "camera" => self.camera.id.0.clone())
                        .increment(1);
                }
                Err(error) => {
                    tracing::warn!(target: "vigil::ingest", camera = %self.camera.id, %error, "cannot register segment")
                }
            }
        }
        Ok(())
    }
}

impl Job for RecorderJob {
    fn arguments(&self, run: u64) -> Result<Vec<String>, IngestError> {
        std::fs::create_dir_all(&self.directory).map_err(|source| IngestError::Io {
            path: self.directory.clone(),
            source,
        })?;
        let started_ms = now_ms();
        // Unique per run, so a restart never overwrites a segment of the previous run.
        let prefix = format!("{started_ms}-{run}");
        let list = self.directory.join(format!(".{prefix}.csv"));
        let arguments = record_arguments(
            &self.camera,
            &self.sources,
            &self.directory,
            &prefix,
            &list,
            self.segment_seconds,
        )?;
        let previous = self.run.lock().replace(Run {
            list,
            started_ms,
            read_offset: 0,
            pending: String::new(),
        });
        if let Some(previous) = previous {
            let _ = std::fs::remove_file(&previous.list);
        }
        Ok(arguments)
    }

    fn consume(&self, stdout: ChildStdout, heartbeat: &Heartbeat) -> Result<(), IngestError> {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(IngestError::Pipe)?;
            // One `progress=continue` per stats period: the recorder's sign of life.
            if line.starts_with("progress=") {
                heartbeat.beat();
            }
        }
        Ok(())
    }

    fn tick(&self) {
        let mut guard = self.run.lock();
        if let Some(run) = guard.as_mut() {
            if let Err(error) = self.register_completed(run) {
                tracing::warn!(target: "vigil::ingest", camera = %self.camera.id, %error, "cannot read the segment list");
            }
        }
    }
}
