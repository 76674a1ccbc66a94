//! The LFW dataset as laid out in ../shared/data/lfw: images, identities, the View-2 pairs
//! protocol and the reference scores computed by the reference pipeline.

use crate::error::ServiceError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One LFW image, named as in pairs.txt: `<Name>/<Name>_NNNN.jpg` under `lfw-deepfunneled`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LfwImage {
    pub identity: String,
    pub number: u32,
}

impl LfwImage {
    pub fn relative_path(&self) -> String {
        format!(
            "lfw-deepfunneled/{0}/{0}_{1:04}.jpg",
            self.identity, self.number
        )
    }
}

/// One pair of the View-2 protocol.
#[derive(Debug, Clone)]
pub struct LfwPair {
    pub index: usize,
    pub fold: usize,
    pub same: bool,
    pub a: LfwImage,
    pub b: LfwImage,
}

pub struct LfwDataset {
    pub root: PathBuf,
}

fn io_error(path: &Path, source: std::io::Error) -> ServiceError {
    ServiceError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl LfwDataset {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, ServiceError> {
        let root = root.into();
        let images = root.join("lfw-deepfunneled");
        if !images.is_dir() {
            return Err(ServiceError::NotFound(format!(
                "LFW images at {}",
                images.display()
            )));
        }
        Ok(Self { root })
    }

    pub fn path_of(&self, image: &LfwImage) -> PathBuf {
        self.root.join(image.relative_path())
    }

    /// Every image, grouped by identity, in a stable order.
    pub fn identities(&self) -> Result<BTreeMap<String, Vec<LfwImage>>, ServiceError> {
        let folder = self.root.join("lfw-deepfunneled");
        let mut identities = BTreeMap::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| io_error(&folder, e))? {
            let entry = entry.map_err(|e| io_error(&folder, e))?;
            if !entry.path().is_dir() {
                continue;
            }
            let identity = entry.file_name().to_string_lossy().to_string();
            let mut images = Vec::new();
            let dir = entry.path();
            for file in std::fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
                let file = file.map_err(|e| io_error(&dir, e))?;
                let name = file.file_name().to_string_lossy().to_string();
                let number = name
                    .strip_prefix(&format!("{identity}_"))
                    .and_then(|rest| rest.strip_suffix(".jpg"))
                    .and_then(|n| n.parse::<u32>().ok());
                if let Some(number) = number {
                    images.push(LfwImage {
                        identity: identity.clone(),
                        number,
                    });
                }
            }
            images.sort();
            if !images.is_empty() {
                identities.insert(identity, images);
            }
        }
        Ok(identities)
    }

    /// Parses pairs.txt: a `folds per_fold` header, then per fold `per_fold` matched lines
    /// (`name n1 n2`) followed by `per_fold` mismatched lines (`name1 n1 name2 n2`).
    pub fn pairs(&self) -> Result<Vec<LfwPair>, ServiceError> {
        let path = self.root.join("pairs.txt");
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        parse_pairs(&text)
    }

    /// Reference cosines per pair index: (w600k_mbf_int8, fr_feature BGR, fr_feature RGB).
    pub fn reference_scores(&self) -> Result<Vec<[f32; 3]>, ServiceError> {
        let path = self.root.join("reference_pair_scores.csv");
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let mut scores = Vec::new();
        for (line_number, line) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let bad = || {
                ServiceError::Invalid(format!("{}:{}: malformed", path.display(), line_number + 1))
            };
            if fields.len() != 8 {
                return Err(bad());
            }
            let index: usize = fields[0].parse().map_err(|_| bad())?;
            if index != scores.len() {
                return Err(bad());
            }
            let parse = |s: &str| s.parse::<f32>().map_err(|_| bad());
            scores.push([parse(fields[5])?, parse(fields[6])?, parse(fields[7])?]);
        }
        Ok(scores)
    }
}

pub fn parse_pairs(text: &str) -> Result<Vec<LfwPair>, ServiceError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let bad = |what: &str| ServiceError::Invalid(format!("pairs.txt: {what}"));
    let header: Vec<usize> = lines
        .next()
        .ok_or_else(|| bad("empty"))?
        .split_whitespace()
        .map(|n| n.parse().map_err(|_| bad("bad header")))
        .collect::<Result<_, _>>()?;
    let [folds, per_fold] = header[..] else {
        return Err(bad("header needs two numbers"));
    };
    let mut pairs = Vec::with_capacity(folds * per_fold * 2);
    for fold in 0..folds {
        for kind in 0..2 {
            for _ in 0..per_fold {
                let line = lines.next().ok_or_else(|| bad("truncated"))?;
                let f: Vec<&str> = line.split_whitespace().collect();
                let number = |s: &str| {
                    s.parse::<u32>()
                        .map_err(|_| bad(&format!("bad line {line:?}")))
                };
                let (same, a, b) = match (kind, f.len()) {
                    (0, 3) => (
                        true,
                        LfwImage {
                            identity: f[0].into(),
                            number: number(f[1])?,
                        },
                        LfwImage {
                            identity: f[0].into(),
                            number: number(f[2])?,
                        },
                    ),
                    (1, 4) => (
                        false,
                        LfwImage {
                            identity: f[0].into(),
                            number: number(f[1])?,
                        },
                        LfwImage {
                            identity: f[2].into(),
                            number: number(f[3])?,
                        },
                    ),
                    _ => return Err(bad(&format!("unexpected line {line:?}"))),
                };
                pairs.push(LfwPair {
                    index: pairs.len(),
                    fold,
                    same,
                    a,
                    b,
                });
            }
        }
    }
    Ok(pairs)
}

/// 10-fold accuracy as the LFW protocol defines it: for each fold, the threshold that maximises
/// accuracy on the other folds is applied to that fold. Returns (mean, standard deviation,
/// mean threshold).
pub fn ten_fold_accuracy(pairs: &[LfwPair], scores: &[f32]) -> (f64, f64, f64) {
    let folds = pairs.iter().map(|p| p.fold).max().map_or(0, |m| m + 1);
    let mut accuracies = Vec::with_capacity(folds);
    let mut thresholds = Vec::with_capacity(folds);
    for test_fold in 0..folds {
        let train: Vec<(f32, bool)> = pairs
            .iter()
            .zip(scores)
            .filter(|(p, _)| p.fold != test_fold)
            .map(|(p, s)| (*s, p.same))
            .collect();
        let threshold = best_threshold(&train);
        let test: Vec<(f32, bool)> = pairs
            .iter()
            .zip(scores)
            .filter(|(p, _)| p.fold == test_fold)
            .map(|(p, s)| (*s, p.same))
            .collect();
        accuracies.push(accuracy(&test, threshold));
        thresholds.push(threshold as f64);
    }
    let n = accuracies.len().max(1) as f64;
    let mean = accuracies.iter().sum::<f64>() / n;
    let variance = accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt(), thresholds.iter().sum::<f64>() / n)
}

fn accuracy(scored: &[(f32, bool)], threshold: f32) -> f64 {
    let correct = scored
        .iter()
        .filter(|(s, same)| (*s >= threshold) == *same)
        .count();
    correct as f64 / scored.len().max(1) as f64
}

/// Tries every midpoint between consecutive sorted scores.
fn best_threshold(scored: &[(f32, bool)]) -> f32 {
    let mut sorted: Vec<(f32, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|p| p.1).count();
    // threshold below everything: all predicted same
    let mut correct = positives;
    let mut best = (correct, sorted.first().map_or(0.0, |p| p.0 - 1e-3));
    for i in 0..sorted.len() {
        // moving the threshold above sorted[i] predicts it "different"
        if sorted[i].1 {
            correct -= 1;
        } else {
            correct += 1;
        }
        let next = sorted.get(i + 1).map_or(sorted[i].0 + 1e-3, |p| p.0);
        if next > sorted[i].0 && correct > best.0 {
            best = (correct, 0.5 * (sorted[i].0 + next));
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_matched_and_mismatched_lines_per_fold() {
        let text = "2 1\nA 1 2\nB 1 C 3\nD 4 5\nE 2 F 1\n";
        let pairs = parse_pairs(text).unwrap();
        assert_eq!(pairs.len(), 4);
        assert!(pairs[0].same && !pairs[1].same);
        assert_eq!(pairs[2].fold, 1);
        assert_eq!(pairs[1].b.relative_path(), "lfw-deepfunneled/C/C_0003.jpg");
        assert!(parse_pairs("2 1\nA 1 2\n").is_err());
    }

    #[test]
    fn separable_scores_give_full_accuracy() {
        let pairs: Vec<LfwPair> = (0..40)
            .map(|i| LfwPair {
                index: i,
                fold: i % 10,
                same: i % 2 == 0,
                a: LfwImage {
                    identity: "x".into(),
                    number: 1,
                },
                b: LfwImage {
                    identity: "x".into(),
                    number: 2,
                },
            })
            .collect();
        let scores: Vec<f32> = pairs
            .iter()
            .map(|p| if p.same { 0.7 } else { 0.1 })
            .collect();
        let (mean, deviation, threshold) = ten_fold_accuracy(&pairs, &scores);
        assert_eq!(mean, 1.0);
        assert_eq!(deviation, 0.0);
        assert!(threshold > 0.1 && threshold < 0.7);
    }
}
