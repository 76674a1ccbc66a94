//! Prints the tracks the analysis loop finds in a video file, for tuning the tracker.
//!
//! `cargo run -p vigil-track --example track_video -- VIDEO [--fps N] [--max-width PIXELS]
//!  [--config TRACK.toml] [--frames] [--cosines] [--blackout START..END] [--save DIR]`
//! `--frames` prints every detected frame's faces and live tracks; `--cosines` the cosine
//! ranges between usable faces of the same and of different tracks; `--blackout` drops every
//! face found between START and END ms (a simulated occlusion); `--save` writes each
//! finished track's best shot as DIR/track-ID-SEGMENT.ppm. Needs ffmpeg, ../shared/models and
//! onnxruntime (ORT_DYLIB_PATH or the project's .venv).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;
use vigil_track::TrackConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let mut video = None;
    let (mut fps, mut max_width, mut show_frames, mut cosines) = (10u32, None, false, false);
    let (mut config, mut save) = (TrackConfig::default(), None::<PathBuf>);
    let mut blackout_ms = None;
    while let Some(argument) = arguments.next() {
        let mut value = || arguments.next().ok_or(format!("{argument} needs a value"));
        match argument.as_str() {
            "--fps" => fps = value()?.parse()?,
            "--max-width" => max_width = Some(value()?.parse()?),
            "--config" => config = toml::from_str(&std::fs::read_to_string(value()?)?)?,
            "--save" => save = Some(PathBuf::from(value()?)),
            "--frames" => show_frames = true,
            "--cosines" => cosines = true,
            "--blackout" => {
                let text = value()?;
                let (start, end) = text
                    .split_once("..")
                    .ok_or("--blackout takes START..END ms")?;
                blackout_ms = Some(start.parse()?..end.parse()?);
            }
            _ if video.is_none() => video = Some(PathBuf::from(&argument)),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    let video = video.ok_or("usage: track_video VIDEO [--fps N] [--max-width PIXELS] [--config FILE] [--frames] [--cosines] [--blackout START..END] [--save DIR]")?;
    config.validate()?;
    let options = common::RunOptions {
        fps,
        max_width,
        blackout_ms,
    };
    let started = Instant::now();
    let analyzer = common::analyzer(0)?;
    println!("models loaded in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    // Usable embeddings with the track each joined, for the cosine statistics.
    let mut labelled: Vec<(vigil_track::TrackId, vigil_base::Embedding)> = Vec::new();
    let (finished, stats) = common::track_video(
        &analyzer,
        &config,
        &video,
        &options,
        |at_ms, faces, tracker| {
            let tracks = tracker.active_tracks();
            for face in faces.iter().filter(|f| f.usable) {
                let joined = tracks.iter().find(|t| t.bbox == face.bbox);
                if let (Some(track), Some(embedding)) = (joined, &face.embedding) {
                    labelled.push((track.track_id, embedding.clone()));
                }
            }
            if !show_frames {
                return;
            }
            println!("{at_ms:>6} ms");
            for face in faces {
                let [cx, cy] = face.bbox.center();
                println!(
                    "    face ({cx:.0},{cy:.0}) {:.0}x{:.0} det={:.2} q={:.2} usable={}",
                    face.bbox.width(),
                    face.bbox.height(),
                    face.detector_score,
                    face.quality_score,
                    face.usable
                );
            }
            for track in tracker.active_tracks() {
                let [cx, cy] = track.bbox.center();
                println!(
                    "    track {} {:?} ({cx:.0},{cy:.0}) {} obs",
                    track.track_id, track.state, track.observations
                );
            }
        },
    )?;
    println!(
        "{}: {} tracks, {} frames, {} detected, {} faces, {:.1} s (detect {:.1} s, analyse {:.1} s)",
        video.display(),
        finished.len(),
        stats.frames,
        stats.detected_frames,
        stats.faces,
        started.elapsed().as_secs_f64(),
        stats.detect_seconds,
        stats.analyze_seconds
    );
    for track in &finished {
        println!("  {}", common::describe(track));
    }
    for (i, a) in finished.iter().enumerate() {
        for b in &finished[i + 1..] {
            if let (Some(x), Some(y)) = (a.top_embeddings.first(), b.top_embeddings.first()) {
                println!(
                    "  cosine(track {}, track {}) = {:.3}",
                    a.track_id,
                    b.track_id,
                    x.embedding.cosine(&y.embedding)?
                );
            }
        }
    }
    if cosines {
        print_cosine_statistics(&labelled)?;
    }
    if let Some(dir) = save {
        std::fs::create_dir_all(&dir)?;
        for track in &finished {
            let crop = &track.best_shot.observation.payload;
            let mut ppm = format!("P6\n{} {}\n255\n", crop.width, crop.height).into_bytes();
            ppm.extend_from_slice(&crop.rgb);
            let name = format!("track-{}-{}.ppm", track.track_id, track.segment);
            std::fs::write(dir.join(name), ppm)?;
        }
    }
    Ok(())
}

/// Cosine ranges between usable faces of the same track and of different tracks: the margin
/// the appearance thresholds (`appearance_veto_cosine`, `reid_min_cosine`) sit in.
fn print_cosine_statistics(
    labelled: &[(vigil_track::TrackId, vigil_base::Embedding)],
) -> Result<(), Box<dyn std::error::Error>> {
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for (i, (track_a, a)) in labelled.iter().enumerate() {
        for (track_b, b) in &labelled[i + 1..] {
            let cosine = a.cosine(b)?;
            if track_a == track_b {
                same.push(cosine);
            } else {
                different.push(cosine);
            }
        }
    }
    for (name, values) in [
        ("same track", &mut same),
        ("different tracks", &mut different),
    ] {
        values.sort_by(f32::total_cmp);
        if values.is_empty() {
            println!("  {name}: no pairs");
            continue;
        }
        let at = |q: f32| values[((values.len() - 1) as f32 * q) as usize];
        println!(
            "  {name}: {} pairs, min {:.3}, 5% {:.3}, median {:.3}, 95% {:.3}, max {:.3}",
            values.len(),
            at(0.0),
            at(0.05),
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    Ok(())
}
