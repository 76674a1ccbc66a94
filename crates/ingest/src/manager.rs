//! The set of cameras: add, change, remove, enable and disable at run time, each camera
//! supervised on its own, plus the periodic retention pass.

use crate::decoder::DecoderJob;
use crate::frame::{frame_channel, FrameReceiver};
use crate::recorder::RecorderJob;
use crate::retention::{enforce, remove_orphans};
use crate::status::{CameraState, CameraStatus};
use crate::supervisor::{Supervisor, SupervisorSettings};
use crate::{now_ms, IngestError};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vigil_audit::NewAuditEntry;
use vigil_base::camera::{redact_url, VideoConfig};
use vigil_base::{CameraConfig, CameraId};
use vigil_store::VideoStore;

/// Receives each camera's frames. `attach` is called when a camera starts streaming (added,
/// enabled or changed); the sink reads from `frames` (typically on its own thread) until it
/// sees `Closed`, which happens when the camera is removed, disabled, changed or shut down.
pub trait FrameSink: Send + Sync {
    fn attach(&self, camera: &CameraConfig, frames: FrameReceiver);
}

struct Running {
    decoder: Supervisor,
    decoder_job: Arc<DecoderJob>,
    recorder: Option<(Supervisor, Arc<RecorderJob>)>,
}

impl Running {
    fn stop(mut self) {
        self.decoder.stop();
        if let Some((mut recorder, _)) = self.recorder.take() {
            recorder.stop();
        }
        self.decoder_job.frames().close();
    }
}

struct CameraEntry {
    config: CameraConfig,
    running: Option<Running>,
    added_ms: i64,
}

struct Inner {
    video: VideoConfig,
    recordings_dir: PathBuf,
    store: Arc<dyn VideoStore>,
    sink: Arc<dyn FrameSink>,
    cameras: Mutex<BTreeMap<CameraId, CameraEntry>>,
    stop: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

pub struct CameraManager {
    inner: Arc<Inner>,
    retention: Mutex<Option<JoinHandle<()>>>,
}

impl CameraManager {
    /// Removes orphaned recording files, then starts the retention thread. No camera runs yet.
    pub fn new(
        video: VideoConfig,
        recordings_dir: PathBuf,
        store: Arc<dyn VideoStore>,
        sink: Arc<dyn FrameSink>,
    ) -> Result<Self, IngestError> {
        std::fs::create_dir_all(&recordings_dir).map_err(|source| IngestError::Io {
            path: recordings_dir.clone(),
            source,
        })?;
        let orphans = remove_orphans(store.as_ref(), &recordings_dir)?;
        if orphans > 0 {
            tracing::info!(target: "vigil::ingest", orphans, "removed unregistered recording files");
        }
        let inner = Arc::new(Inner {
            video,
            recordings_dir,
            store,
            sink,
            cameras: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
        });
        let thread_inner = inner.clone();
        let retention = std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || retention_loop(thread_inner))
            .map_err(|source| IngestError::Io {
                path: PathBuf::from("<retention thread>"),
                source,
            })?;
        Ok(Self {
            inner,
            retention: Mutex::new(Some(retention)),
        })
    }

    pub fn recordings_dir(&self) -> &Path {
        &self.inner.recordings_dir
    }

    /// Starts the cameras kept in the store and those of the config file (which are written
    /// into the store first, replacing a stored camera of the same id).
    pub fn start_configured(&self, from_config: &[CameraConfig]) -> Result<(), IngestError> {
        for camera in from_config {
            self.inner.store.save_camera(camera)?;
        }
        for camera in self.inner.store.cameras()? {
            self.launch(camera)?;
        }
        Ok(())
    }

    /// Adds a camera, keeps it in the store and starts it if enabled. A used id is `Conflict`.
    pub fn add(&self, camera: CameraConfig) -> Result<CameraStatus, IngestError> {
        self.add_audited(camera, None)
    }

    /// As `add`, with `audit` written in the same transaction as the stored settings.
    pub fn add_audited(
        &self,
        camera: CameraConfig,
        audit: Option<&NewAuditEntry>,
    ) -> Result<CameraStatus, IngestError> {
        camera
            .validate_under(&self.inner.video.source_policy())
            .map_err(|e| IngestError::Config(e.to_string()))?;
        if self.inner.cameras.lock().contains_key(&camera.id) {
            return Err(IngestError::Conflict(camera.id.to_string()));
        }
        self.inner.store.save_camera_audited(&camera, audit)?;
        let id = camera.id.clone();
        self.launch(camera)?;
        self.status(&id)
            .ok_or(IngestError::NotFound(id.to_string()))
    }

    /// Replaces a camera's settings and restarts it. `NotFound` when absent.
    pub fn replace(&self, camera: CameraConfig) -> Result<CameraStatus, IngestError> {
        self.replace_audited(camera, None)
    }

    /// As `replace`, with `audit` written in the same transaction as the stored settings.
    /// A URL given back as the API showed it (password `***`) keeps the stored password.
    pub fn replace_audited(
        &self,
        mut camera: CameraConfig,
        audit: Option<&NewAuditEntry>,
    ) -> Result<CameraStatus, IngestError> {
        if let Some(current) = self.config(&camera.id) {
            keep_redacted_passwords(&mut camera, &current);
        }
        camera
            .validate_under(&self.inner.video.source_policy())
            .map_err(|e| IngestError::Config(e.to_string()))?;
        let previous = {
            let mut cameras = self.inner.cameras.lock();
            let entry = cameras
                .remove(&camera.id)
                .ok_or_else(|| IngestError::NotFound(camera.id.to_string()))?;
            entry.running
        };
        if let Some(running) = previous {
            running.stop();
        }
        self.inner.store.save_camera_audited(&camera, audit)?;
        let id = camera.id.clone();
        self.launch(camera)?;
        self.status(&id)
            .ok_or(IngestError::NotFound(id.to_string()))
    }

    /// Stops and forgets a camera (its sightings and recordings stay until retention).
    pub fn remove(&self, id: &CameraId) -> Result<(), IngestError> {
        self.remove_audited(id, None)
    }

    /// As `remove`, with `audit` written in the same transaction as the deletion.
    pub fn remove_audited(
        &self,
        id: &CameraId,
        audit: Option<&NewAuditEntry>,
    ) -> Result<(), IngestError> {
        let entry = self
            .inner
            .cameras
            .lock()
            .remove(id)
            .ok_or_else(|| IngestError::NotFound(id.to_string()))?;
        if let Some(running) = entry.running {
            running.stop();
        }
        match self.inner.store.delete_camera_audited(id, audit) {
            Ok(()) => Ok(()),
            // Only configured in memory: nothing stored to delete, but the change is still logged.
            Err(vigil_store::StoreError::NotFound(_)) => match audit {
                Some(audit) => Ok(self.inner.store.audit_only(audit)?),
                None => Ok(()),
            },
            Err(error) => Err(error.into()),
        }
    }

    pub fn set_enabled(&self, id: &CameraId, enabled: bool) -> Result<CameraStatus, IngestError> {
        self.set_enabled_audited(id, enabled, None)
    }

    /// As `set_enabled`, with `audit` written in the same transaction as the stored settings
    /// (also when nothing changes, so the request is on record).
    pub fn set_enabled_audited(
        &self,
        id: &CameraId,
        enabled: bool,
        audit: Option<&NewAuditEntry>,
    ) -> Result<CameraStatus, IngestError> {
        let mut camera = self
            .config(id)
            .ok_or_else(|| IngestError::NotFound(id.to_string()))?;
        if camera.enabled == enabled {
            if audit.is_some() {
                self.inner.store.save_camera_audited(&camera, audit)?;
            }
            return self.status(id).ok_or(IngestError::NotFound(id.to_string()));
        }
        camera.enabled = enabled;
        self.replace_audited(camera, audit)
    }

    pub fn config(&self, id: &CameraId) -> Option<CameraConfig> {
        self.inner.cameras.lock().get(id).map(|e| e.config.clone())
    }

    pub fn configs(&self) -> Vec<CameraConfig> {
        self.inner
            .cameras
            .lock()
            .values()
            .map(|e| e.config.clone())
            .collect()
    }

    pub fn status(&self, id: &CameraId) -> Option<CameraStatus> {
        self.inner.cameras.lock().get(id).map(status_of)
    }

    pub fn statuses(&self) -> Vec<CameraStatus> {
        self.inner.cameras.lock().values().map(status_of).collect()
    }

    /// Runs one retention pass now (the background thread runs them periodically).
    pub fn enforce_retention(&self) -> Result<crate::RetentionReport, IngestError> {
        retention_pass(&self.inner)
    }

    /// Stops every camera and the retention thread.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        {
            let _guard = self.inner.wake_lock.lock();
            self.inner.wake.notify_all();
        }
        let entries: Vec<CameraEntry> = std::mem::take(&mut *self.inner.cameras.lock())
            .into_values()
            .collect();
        for entry in entries {
            if let Some(running) = entry.running {
                running.stop();
            }
        }
        if let Some(thread) = self.retention.lock().take() {
            let _ = thread.join();
        }
    }

    fn launch(&self, camera: CameraConfig) -> Result<(), IngestError> {
        let running = if camera.enabled {
            Some(self.start_camera(&camera))
        } else {
            None
        };
        let replaced = self.inner.cameras.lock().insert(
            camera.id.clone(),
            CameraEntry {
                config: camera,
                running,
                added_ms: now_ms(),
            },
        );
        if let Some(Some(running)) = replaced.map(|e| e.running) {
            running.stop();
        }
        Ok(())
    }

    fn start_camera(&self, camera: &CameraConfig) -> Running {
        let video = &self.inner.video;
        let settings = |label: String| SupervisorSettings {
            ffmpeg: video.ffmpeg.clone(),
            label,
            stall_timeout: Duration::from_secs_f32(camera.stall_timeout_secs),
            backoff_initial: Duration::from_secs_f32(video.backoff_initial_secs),
            backoff_max: Duration::from_secs_f32(video.backoff_max_secs),
        };
        // About one second of frames: absorbs a stream's start-up burst (ffmpeg probes the
        // stream, then delivers what it buffered at once) without letting latency grow.
        let (sender, receiver) = frame_channel(camera.analysis_fps.ceil().max(2.0) as usize);
        self.inner.sink.attach(camera, receiver);
        let sources = video.source_policy();
        let decoder_job = Arc::new(DecoderJob::new(camera.clone(), sources.clone(), sender));
        let decoder = Supervisor::start(settings(camera.id.0.clone()), decoder_job.clone());
        let recorder = camera.record.then(|| {
            let job = Arc::new(RecorderJob::new(
                camera.clone(),
                sources,
                &self.inner.recordings_dir,
                video.segment_seconds,
                self.inner.store.clone(),
            ));
            (
                Supervisor::start(settings(format!("{}-record", camera.id)), job.clone()),
                job,
            )
        });
        Running {
            decoder,
            decoder_job,
            recorder,
        }
    }
}

impl Drop for CameraManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A client that read a camera (URLs redacted) and sends it back changed keeps the password it
/// never saw: a URL equal to the current one's redacted form is the current one.
fn keep_redacted_passwords(camera: &mut CameraConfig, current: &CameraConfig) {
    if camera.url != current.url && camera.url == redact_url(&current.url) {
        camera.url = current.url.clone();
    }
    if let (Some(sub), Some(current_sub)) = (&camera.substream_url, &current.substream_url) {
        if sub != current_sub && *sub == redact_url(current_sub) {
            camera.substream_url = Some(current_sub.clone());
        }
    }
}

fn status_of(entry: &CameraEntry) -> CameraStatus {
    let config = &entry.config;
    let mut status = CameraStatus {
        id: config.id.clone(),
        name: config.display_name().to_string(),
        enabled: config.enabled,
        state: CameraState::Disabled,
        state_since_ms: entry.added_ms,
        frames: 0,
        frames_analysed: 0,
        frames_dropped: 0,
        restarts: 0,
        last_frame_ms: None,
        last_error: None,
        width: None,
        height: None,
        recording: None,
        recorded_segments: 0,
    };
    if let Some(running) = &entry.running {
        let decoder = running.decoder.status();
        let (analysed, dropped) = running.decoder_job.frames().counts();
        status.state = decoder.state;
        status.state_since_ms = decoder.state_since_ms;
        status.frames = decoder.heartbeats;
        status.frames_analysed = analysed;
        status.frames_dropped = dropped;
        status.restarts = decoder.restarts;
        status.last_frame_ms = decoder.last_heartbeat_ms;
        status.last_error = decoder.last_error;
        if let Some((width, height)) = running.decoder_job.frame_size() {
            status.width = Some(width);
            status.height = Some(height);
        }
        if let Some((recorder, job)) = &running.recorder {
            status.recording = Some(recorder.status());
            status.recorded_segments = job.segments_registered();
        }
    }
    status
}

fn retention_pass(inner: &Inner) -> Result<crate::RetentionReport, IngestError> {
    let cameras: Vec<CameraConfig> = inner
        .cameras
        .lock()
        .values()
        .map(|e| e.config.clone())
        .collect();
    enforce(
        inner.store.as_ref(),
        &inner.recordings_dir,
        &cameras,
        &inner.video,
        now_ms(),
    )
}

fn retention_loop(inner: Arc<Inner>) {
    let interval = Duration::from_secs_f32(inner.video.retention_interval_secs);
    loop {
        {
            let mut guard = inner.wake_lock.lock();
            if inner.stop.load(Ordering::SeqCst) {
                return;
            }
            inner.wake.wait_for(&mut guard, interval);
            if inner.stop.load(Ordering::SeqCst) {
                return;
            }
        }
        match retention_pass(&inner) {
            Ok(report) if report.deleted_segments > 0 => {
                tracing::info!(target: "vigil::ingest", segments = report.deleted_segments, bytes = report.deleted_bytes, "retention deleted recordings")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(target: "vigil::ingest", %error, "retention pass failed")
            }
        }
    }
}
