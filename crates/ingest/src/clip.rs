//! Exporting a clip around a moment from the recorded segments, by stream copy (no re-encode).

use crate::IngestError;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use vigil_store::SegmentRecord;

/// Where a moment lies in the recordings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RecordingPosition {
    pub segment_id: i64,
    /// Relative to the recordings folder.
    pub path: String,
    /// Seconds from the segment's start.
    pub offset_secs: f64,
}

/// The segment holding `at_ms` and the offset into it, if any segment does.
pub fn position_of(segments: &[SegmentRecord], at_ms: i64) -> Option<RecordingPosition> {
    segments
        .iter()
        .find(|s| s.started_at_ms <= at_ms && at_ms <= s.ended_at_ms)
        .map(|s| RecordingPosition {
            segment_id: s.id,
            path: s.path.clone(),
            offset_secs: (at_ms - s.started_at_ms) as f64 / 1000.0,
        })
}

/// Writes an MP4 of `[from_ms, to_ms]` cut from `segments` (oldest first, covering the span)
/// to `out`. Cuts fall on the nearest earlier keyframe, as stream copy requires.
pub fn export_clip(
    ffmpeg: &Path,
    recordings: &Path,
    segments: &[SegmentRecord],
    from_ms: i64,
    to_ms: i64,
    out: &Path,
) -> Result<(), IngestError> {
    let first = segments
        .first()
        .ok_or_else(|| IngestError::NotFound("recording for that time".into()))?;
    let list_path = out.with_extension("txt");
    let mut list = std::fs::File::create(&list_path).map_err(|source| IngestError::Io {
        path: list_path.clone(),
        source,
    })?;
    for segment in segments {
        let path = recordings.join(&segment.path);
        // concat's list quoting: single quotes, with ' written as '\''.
        let quoted = path.display().to_string().replace('\'', "'\\''");
        writeln!(list, "file '{quoted}'").map_err(|source| IngestError::Io {
            path: list_path.clone(),
            source,
        })?;
    }
    drop(list);
    let start = ((from_ms - first.started_at_ms).max(0)) as f64 / 1000.0;
    let duration = ((to_ms - from_ms).max(1)) as f64 / 1000.0;
    // The list names our own segment files; only the file protocol may be opened through it.
    let output = crate::process::ffmpeg_command(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-protocol_whitelist", "file"])
        .args(["-f", "concat", "-safe", "0", "-i"])
        .arg(&list_path)
        .args([
            "-ss",
            &format!("{start:.3}"),
            "-t",
            &format!("{duration:.3}"),
        ])
        .args(["-c", "copy", "-movflags", "+faststart"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| IngestError::Spawn {
            program: ffmpeg.display().to_string(),
            source,
        })?;
    let _ = std::fs::remove_file(&list_path);
    if !output.status.success() {
        return Err(IngestError::Exited(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
