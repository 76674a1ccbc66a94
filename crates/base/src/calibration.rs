//! Score calibration: turning a raw cosine into a false-match rate.
//!
//! A table is measured per recognizer by `vigil calibrate` (impostor and genuine score
//! distributions over LFW) and shipped in the repository. Within the measured range the
//! false-match rate is the empirical fraction of impostor pairs scoring at or above the score;
//! beyond the last score with enough impostor pairs it follows an exponential tail fitted to the
//! last measured decade, and is flagged as extrapolated. See docs/design/003-calibration.md.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("calibration table is malformed: {0}")]
    Malformed(String),
    #[error("calibration table for model {table} used with model {requested}")]
    WrongModel { table: String, requested: String },
    #[error("false-match rate {0} is not in (0, 1]")]
    BadRate(f64),
}

/// One row of the table: at cosine `score`, the fraction of impostor pairs scoring >= score and
/// the fraction of genuine pairs scoring below it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationPoint {
    pub score: f32,
    pub false_match_rate: f64,
    pub false_non_match_rate: f64,
    /// Impostor pairs at or above `score` (the count behind `false_match_rate`).
    pub impostor_count: u64,
}

/// Exponential tail: log10(FMR) = log10_rate_at_start + slope_per_score * (score - start_score).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TailFit {
    pub start_score: f32,
    pub log10_rate_at_start: f64,
    pub slope_per_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationTable {
    /// Recognizer model id the scores come from.
    pub model: String,
    /// Free text: which data and which detector produced the pairs.
    pub dataset: String,
    pub impostor_pairs: u64,
    pub genuine_pairs: u64,
    /// Sorted by ascending score; false_match_rate non-increasing.
    pub points: Vec<CalibrationPoint>,
    pub tail: Option<TailFit>,
}

/// A calibrated false-match rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FalseMatchRate {
    /// Probability that a different person's face scores at least this high.
    pub value: f64,
    /// True when the score is beyond what the impostor sample measured and the value comes
    /// from the fitted tail (or is the floor 1/impostor_pairs when no tail was fitted).
    pub extrapolated: bool,
}

/// Impostor pairs at or above a score needed before the empirical rate is trusted.
pub const MIN_IMPOSTOR_COUNT: u64 = 10;

impl CalibrationTable {
    pub fn from_json(text: &str) -> Result<Self, CalibrationError> {
        let table: Self =
            serde_json::from_str(text).map_err(|e| CalibrationError::Malformed(e.to_string()))?;
        table.validate()?;
        Ok(table)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), CalibrationError> {
        if self.points.is_empty() {
            return Err(CalibrationError::Malformed("no points".into()));
        }
        for pair in self.points.windows(2) {
            if pair[1].score <= pair[0].score {
                return Err(CalibrationError::Malformed("scores not ascending".into()));
            }
            if pair[1].false_match_rate > pair[0].false_match_rate {
                return Err(CalibrationError::Malformed(
                    "rates not non-increasing".into(),
                ));
            }
        }
        Ok(())
    }

    /// Builds a table from raw impostor and genuine scores on a fixed score grid.
    pub fn from_scores(
        model: &str,
        dataset: &str,
        impostor_scores: &mut [f32],
        genuine_scores: &mut [f32],
        grid_step: f32,
    ) -> Result<Self, CalibrationError> {
        impostor_scores.sort_by(f32::total_cmp);
        genuine_scores.sort_by(f32::total_cmp);
        let impostors = impostor_scores.len() as u64;
        let genuines = genuine_scores.len() as u64;
        let grid = score_grid(grid_step)
            .map(|score| {
                let below = impostor_scores.partition_point(|s| *s < score) as u64;
                let genuine_below = genuine_scores.partition_point(|s| *s < score) as u64;
                (score, impostors - below, genuine_below)
            })
            .collect();
        Self::from_counts(model, dataset, impostors, genuines, grid)
    }

    /// Builds a table from counts on a score grid: for each grid score, the impostor pairs at
    /// or above it and the genuine pairs below it (as a histogram pass produces them).
    pub fn from_counts(
        model: &str,
        dataset: &str,
        impostor_pairs: u64,
        genuine_pairs: u64,
        grid: Vec<(f32, u64, u64)>,
    ) -> Result<Self, CalibrationError> {
        if impostor_pairs == 0 || genuine_pairs == 0 {
            return Err(CalibrationError::Malformed(
                "need impostor and genuine scores".into(),
            ));
        }
        let points: Vec<CalibrationPoint> = grid
            .into_iter()
            .map(|(score, impostor_count, genuine_below)| CalibrationPoint {
                score,
                false_match_rate: impostor_count as f64 / impostor_pairs as f64,
                false_non_match_rate: genuine_below as f64 / genuine_pairs as f64,
                impostor_count,
            })
            .collect();
        let tail = fit_tail(&points);
        let table = Self {
            model: model.to_string(),
            dataset: dataset.to_string(),
            impostor_pairs,
            genuine_pairs,
            points,
            tail,
        };
        table.validate()?;
        Ok(table)
    }

    pub fn check_model(&self, model: &str) -> Result<(), CalibrationError> {
        if self.model != model {
            return Err(CalibrationError::WrongModel {
                table: self.model.clone(),
                requested: model.to_string(),
            });
        }
        Ok(())
    }

    /// Last score whose empirical rate rests on at least MIN_IMPOSTOR_COUNT pairs.
    fn last_trusted(&self) -> usize {
        self.points
            .iter()
            .rposition(|p| p.impostor_count >= MIN_IMPOSTOR_COUNT)
            .unwrap_or(0)
    }

    pub fn false_match_rate(&self, score: f32) -> FalseMatchRate {
        let trusted = self.last_trusted();
        let floor = 1.0 / self.impostor_pairs.max(1) as f64;
        if !score.is_finite() {
            return FalseMatchRate {
                value: 1.0,
                extrapolated: false,
            };
        }
        if score <= self.points[0].score {
            return FalseMatchRate {
                value: self.points[0].false_match_rate,
                extrapolated: false,
            };
        }
        if score <= self.points[trusted].score {
            // log-linear interpolation between neighbouring grid points
            let upper = self
                .points
                .partition_point(|p| p.score < score)
                .min(trusted);
            let lower = upper.saturating_sub(1);
            let (a, b) = (self.points[lower], self.points[upper]);
            let value = if b.score > a.score {
                let t = ((score - a.score) / (b.score - a.score)) as f64;
                let la = a.false_match_rate.max(floor).log10();
                let lb = b.false_match_rate.max(floor).log10();
                10f64.powf(la + t * (lb - la))
            } else {
                b.false_match_rate
            };
            return FalseMatchRate {
                value,
                extrapolated: false,
            };
        }
        match self.tail {
            Some(tail) if score >= tail.start_score => {
                let log = tail.log10_rate_at_start
                    + tail.slope_per_score * (score - tail.start_score) as f64;
                let at_trusted = self.points[trusted].false_match_rate;
                FalseMatchRate {
                    value: 10f64.powf(log).min(at_trusted),
                    extrapolated: true,
                }
            }
            _ => FalseMatchRate {
                value: self.points[trusted].false_match_rate.max(floor),
                extrapolated: true,
            },
        }
    }

    /// Lowest score whose false-match rate is at or below `target`: the threshold to configure.
    pub fn threshold_for(&self, target: f64) -> Result<f32, CalibrationError> {
        if !(target > 0.0 && target <= 1.0) {
            return Err(CalibrationError::BadRate(target));
        }
        // bisection on the monotone function false_match_rate(score)
        let (mut low, mut high) = (-1.0f32, 1.5f32);
        for _ in 0..60 {
            let mid = 0.5 * (low + high);
            if self.false_match_rate(mid).value <= target {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(high)
    }
}

/// Grid scores from -1 to 1 inclusive, `step` apart.
pub fn score_grid(step: f32) -> impl Iterator<Item = f32> {
    let steps = (2.0 / step).round() as i64;
    (0..=steps).map(move |i| -1.0 + i as f32 * step)
}

/// Fits log10(FMR) against score over the last measured decade (the points between ten times
/// the last trusted rate and that rate), by least squares.
fn fit_tail(points: &[CalibrationPoint]) -> Option<TailFit> {
    let trusted = points
        .iter()
        .rposition(|p| p.impostor_count >= MIN_IMPOSTOR_COUNT)?;
    let end = points[trusted];
    let decade: Vec<&CalibrationPoint> = points[..=trusted]
        .iter()
        .filter(|p| p.false_match_rate <= end.false_match_rate * 10.0 && p.impostor_count > 0)
        .collect();
    if decade.len() < 3 {
        return None;
    }
    let n = decade.len() as f64;
    let mean_x = decade.iter().map(|p| p.score as f64).sum::<f64>() / n;
    let mean_y = decade
        .iter()
        .map(|p| p.false_match_rate.log10())
        .sum::<f64>()
        / n;
    let mut covariance = 0.0;
    let mut variance = 0.0;
    for p in &decade {
        let dx = p.score as f64 - mean_x;
        covariance += dx * (p.false_match_rate.log10() - mean_y);
        variance += dx * dx;
    }
    let slope = covariance / variance;
    if !slope.is_finite() || slope >= 0.0 {
        return None;
    }
    Some(TailFit {
        start_score: end.score,
        log10_rate_at_start: end.false_match_rate.log10(),
        slope_per_score: slope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic() -> CalibrationTable {
        // impostors spread uniformly on [-0.3, 0.3], genuines on [0.3, 0.9]
        let mut impostors: Vec<f32> = (0..100_000)
            .map(|i| -0.3 + 0.6 * i as f32 / 100_000.0)
            .collect();
        let mut genuines: Vec<f32> = (0..1000).map(|i| 0.3 + 0.6 * i as f32 / 1000.0).collect();
        CalibrationTable::from_scores("m", "synthetic", &mut impostors, &mut genuines, 0.01)
            .unwrap()
    }

    #[test]
    fn rate_falls_as_score_rises() {
        let t = synthetic();
        let mut previous = 1.0;
        for i in 0..150 {
            let r = t.false_match_rate(-0.5 + i as f32 * 0.01).value;
            assert!(r <= previous + 1e-12, "not monotone at {i}");
            previous = r;
        }
        assert!((t.false_match_rate(0.0).value - 0.5).abs() < 0.01);
    }

    #[test]
    fn beyond_measured_range_is_flagged_extrapolated() {
        let t = synthetic();
        assert!(!t.false_match_rate(0.1).extrapolated);
        let far = t.false_match_rate(0.8);
        assert!(far.extrapolated);
        assert!(far.value < 1e-4);
    }

    #[test]
    fn threshold_meets_target_rate() {
        let t = synthetic();
        let threshold = t.threshold_for(0.01).unwrap();
        assert!(t.false_match_rate(threshold).value <= 0.01);
        assert!(t.false_match_rate(threshold - 0.01).value > 0.01);
        assert!(t.threshold_for(0.0).is_err());
    }

    #[test]
    fn json_round_trip_and_validation() {
        let t = synthetic();
        let back = CalibrationTable::from_json(&t.to_json()).unwrap();
        assert_eq!(t, back);
        assert!(CalibrationTable::from_json("{}").is_err());
    }
}
