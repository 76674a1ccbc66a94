//! Printing results for people: tables on stdout, or JSON with `--json`.

use vigil_pipeline::{Candidate, FaceReport};

pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn rate(value: f64) -> String {
    if value >= 0.01 {
        format!("{value:.3}")
    } else {
        format!("{value:.1e}")
    }
}

pub fn face_line(index: usize, face: &FaceReport) -> String {
    let b = face.bbox;
    let mut line = format!(
        "face {index}: box [{:.0},{:.0},{:.0},{:.0}] {:.0}px quality {:.2}",
        b[0], b[1], b[2], b[3], face.quality.face_pixels, face.quality.score
    );
    if !face.quality.usable {
        let issues: Vec<String> = face
            .quality
            .issues
            .iter()
            .map(|i| format!("{i:?}"))
            .collect();
        line.push_str(&format!(" NOT USABLE ({})", issues.join(", ")));
    }
    line
}

pub fn candidate_line(rank: usize, candidate: &Candidate) -> String {
    format!(
        "  {rank}. {:<30} score {:.3}  false-match rate {}{}  expected false candidates {}",
        candidate.subject_name,
        candidate.score,
        rate(candidate.false_match_rate),
        if candidate.false_match_rate_extrapolated {
            " (extrapolated)"
        } else {
            ""
        },
        rate(candidate.expected_false_candidates),
    )
}
