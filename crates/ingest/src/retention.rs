//! Recording retention: by age and by bytes, per camera and across cameras, and by free disk
//! space, oldest first.
//!
//! Write order (after moonfire-nvr): a segment row exists only while its file is complete.
//! Deleting is (1) in one transaction, remove the rows and list the paths as garbage; (2) unlink
//! the files and fsync their folders; (3) forget the garbage. A crash between the steps leaves
//! garbage rows whose files may or may not exist; the next pass finishes them. A crash can thus
//! leave a file without a row, never a row without a file. Files that no row or garbage entry
//! knows (a segment ffmpeg was writing when the process died) are removed at start-up.

use crate::IngestError;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use vigil_base::camera::VideoConfig;
use vigil_base::{CameraConfig, CameraId};
use vigil_store::{SegmentRecord, VideoStore};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub garbage_collected: usize,
}

/// Free bytes on the file system holding `path`, or None where it cannot be read.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid out-pointer.
    let result = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (result == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Chooses the segments to delete. `segments` oldest first; `free` the file system's free
/// bytes when known.
pub fn select_expired(
    segments: &[SegmentRecord],
    cameras: &[CameraConfig],
    video: &VideoConfig,
    now_ms: i64,
    free: Option<u64>,
) -> Vec<i64> {
    let hours_ms = |h: f64| (h * 3_600_000.0) as i64;
    let per_camera: BTreeMap<&CameraId, &CameraConfig> =
        cameras.iter().map(|c| (&c.id, c)).collect();
    let mut doomed: HashSet<i64> = HashSet::new();

    // Age: the tighter of the camera's and the global limit.
    for segment in segments {
        let camera_limit = per_camera
            .get(&segment.camera)
            .and_then(|c| c.retention.max_age_hours);
        let limit = camera_limit.map_or(video.retention_max_age_hours, |c| {
            c.min(video.retention_max_age_hours)
        });
        if segment.ended_at_ms < now_ms - hours_ms(limit) {
            doomed.insert(segment.id);
        }
    }
    // Bytes per camera, oldest first.
    let mut camera_bytes: BTreeMap<&CameraId, u64> = BTreeMap::new();
    for segment in segments.iter().filter(|s| !doomed.contains(&s.id)) {
        *camera_bytes.entry(&segment.camera).or_default() += segment.bytes;
    }
    for segment in segments {
        if doomed.contains(&segment.id) {
            continue;
        }
        let Some(limit) = per_camera
            .get(&segment.camera)
            .and_then(|c| c.retention.max_bytes)
        else {
            continue;
        };
        let total = camera_bytes.entry(&segment.camera).or_default();
        if *total > limit {
            *total -= segment.bytes;
            doomed.insert(segment.id);
        }
    }
    // Bytes across cameras, and free space: the oldest remaining go first.
    let mut total: u64 = segments
        .iter()
        .filter(|s| !doomed.contains(&s.id))
        .map(|s| s.bytes)
        .sum();
    let mut freed: u64 = segments
        .iter()
        .filter(|s| doomed.contains(&s.id))
        .map(|s| s.bytes)
        .sum();
    for segment in segments {
        if doomed.contains(&segment.id) {
            continue;
        }
        let over_bytes = video.retention_max_bytes > 0 && total > video.retention_max_bytes;
        let low_disk = free.is_some_and(|f| f + freed < video.min_free_bytes);
        if !(over_bytes || low_disk) {
            break;
        }
        total -= segment.bytes;
        freed += segment.bytes;
        doomed.insert(segment.id);
    }
    segments
        .iter()
        .filter(|s| doomed.contains(&s.id))
        .map(|s| s.id)
        .collect()
}

/// Unlinks retired files and fsyncs their folders, then forgets them.
pub fn collect_garbage(store: &dyn VideoStore, recordings: &Path) -> Result<usize, IngestError> {
    let garbage = store.garbage()?;
    if garbage.is_empty() {
        return Ok(0);
    }
    let mut folders: HashSet<PathBuf> = HashSet::new();
    for relative in &garbage {
        let path = recordings.join(relative);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(IngestError::Io { path, source }),
        }
        if let Some(parent) = path.parent() {
            folders.insert(parent.to_path_buf());
        }
    }
    for folder in folders {
        sync_directory(&folder)?;
    }
    store.forget_garbage(&garbage)?;
    Ok(garbage.len())
}

fn sync_directory(folder: &Path) -> Result<(), IngestError> {
    match std::fs::File::open(folder).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(IngestError::Io {
            path: folder.to_path_buf(),
            source,
        }),
    }
}

/// One retention pass.
pub fn enforce(
    store: &dyn VideoStore,
    recordings: &Path,
    cameras: &[CameraConfig],
    video: &VideoConfig,
    now_ms: i64,
) -> Result<RetentionReport, IngestError> {
    let mut report = RetentionReport {
        garbage_collected: collect_garbage(store, recordings)?,
        ..RetentionReport::default()
    };
    let segments = store.segments(None)?;
    let expired = select_expired(&segments, cameras, video, now_ms, free_bytes(recordings));
    if expired.is_empty() {
        return Ok(report);
    }
    report.deleted_bytes = segments
        .iter()
        .filter(|s| expired.contains(&s.id))
        .map(|s| s.bytes)
        .sum();
    report.deleted_segments = store.retire_segments(&expired)?.len();
    collect_garbage(store, recordings)?;
    metrics::counter!("vigil_recording_deleted_segments_total")
        .increment(report.deleted_segments as u64);
    Ok(report)
}

/// Removes segment files no row knows: what ffmpeg was writing when the process died. Run
/// before recorders start. Returns how many were removed.
pub fn remove_orphans(store: &dyn VideoStore, recordings: &Path) -> Result<usize, IngestError> {
    collect_garbage(store, recordings)?;
    let known: HashSet<String> = store.segments(None)?.into_iter().map(|s| s.path).collect();
    let Ok(cameras) = std::fs::read_dir(recordings) else {
        return Ok(0);
    };
    let mut removed = 0;
    for camera in cameras.flatten() {
        let camera_path = camera.path();
        if !camera_path.is_dir() {
            continue;
        }
        let camera_name = camera.file_name().to_string_lossy().to_string();
        let Ok(files) = std::fs::read_dir(&camera_path) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            let is_ours =
                name.ends_with(".mp4") || (name.starts_with('.') && name.ends_with(".csv"));
            if !is_ours || known.contains(&format!("{camera_name}/{name}")) {
                continue;
            }
            let path = file.path();
            std::fs::remove_file(&path).map_err(|source| IngestError::Io {
                path: path.clone(),
                source,
            })?;
            removed += 1;
        }
        sync_directory(&camera_path)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(id: i64, camera: &str, start_s: i64, bytes: u64) -> SegmentRecord {
        SegmentRecord {
            id,
            camera: CameraId(camera.into()),
            path: format!("{camera}/{id}.mp4"),
            started_at_ms: start_s * 1000,
            ended_at_ms: start_s * 1000 + 10_000,
            bytes,
        }
    }

    fn camera(id: &str, max_age_hours: Option<f64>, max_bytes: Option<u64>) -> CameraConfig {
        let mut c = CameraConfig {
            id: CameraId(id.into()),
            url: "a.mp4".into(),
            ..CameraConfig::default()
        };
        c.retention.max_age_hours = max_age_hours;
        c.retention.max_bytes = max_bytes;
        c
    }

    #[test]
    fn age_limits_take_the_tighter_of_camera_and_global() {
        let video = VideoConfig {
            retention_max_age_hours: 2.0,
            min_free_bytes: 0,
            ..VideoConfig::default()
        };
        let now = 10 * 3600 * 1000;
        let segments = vec![
            segment(1, "a", 3600 * 7, 10), // ended 3 h ago: past the global 2 h
            segment(2, "a", 3600 * 9, 10), // ended ~1 h ago
            segment(3, "b", 3600 * 9, 10), // camera b keeps 0.5 h only
            segment(4, "b", 36_000 - 60, 10),
        ];
        let cameras = vec![camera("a", None, None), camera("b", Some(0.5), None)];
        assert_eq!(
            select_expired(&segments, &cameras, &video, now, None),
            vec![1, 3]
        );
    }

    #[test]
    fn byte_limits_delete_oldest_first_per_camera_then_globally() {
        let video = VideoConfig {
            retention_max_bytes: 250,
            min_free_bytes: 0,
            ..VideoConfig::default()
        };
        let now = 1000 * 1000;
        let segments = vec![
            segment(1, "a", 100, 100),
            segment(2, "b", 110, 100),
            segment(3, "a", 120, 100),
            segment(4, "a", 130, 100),
            segment(5, "b", 140, 100),
        ];
        // a keeps at most 150 bytes → 1 and 3 go; then 3 segments (300) > 250 → oldest (2) goes.
        let cameras = vec![camera("a", None, Some(150)), camera("b", None, None)];
        assert_eq!(
            select_expired(&segments, &cameras, &video, now, None),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn low_disk_space_deletes_until_enough_is_free() {
        let video = VideoConfig {
            min_free_bytes: 1000,
            ..VideoConfig::default()
        };
        let segments = vec![
            segment(1, "a", 100, 300),
            segment(2, "a", 110, 300),
            segment(3, "a", 120, 300),
        ];
        // 500 free: two segments must go to reach 1000.
        assert_eq!(
            select_expired(&segments, &[], &video, 200_000, Some(500)),
            vec![1, 2]
        );
        assert!(select_expired(&segments, &[], &video, 200_000, Some(5000)).is_empty());
    }
}
