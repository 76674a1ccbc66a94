//! Damaged copies of media files, for the "bad file" faults.

use crate::fault::garbage;
use crate::{io_error, Error, Result};
use std::path::Path;

/// How to damage a copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Corruption {
    /// Keep only the first `keep_fraction` (0..1) of the bytes, as a recording cut off mid-write.
    Truncate { keep_fraction: f64 },
    /// Overwrite `ranges` runs of `range_bytes` bytes, spread evenly over the middle 20–80 % of
    /// the file, with pseudo-random bytes from `seed` (the same seed gives the same file).
    Overwrite {
        ranges: usize,
        range_bytes: usize,
        seed: u64,
    },
}

/// Writes a damaged copy of `source` to `destination`.
pub fn corrupt_copy(source: &Path, destination: &Path, how: Corruption) -> Result<()> {
    let mut bytes =
        std::fs::read(source).map_err(io_error(format!("reading {}", source.display())))?;
    match how {
        Corruption::Truncate { keep_fraction } => {
            if !(0.0..1.0).contains(&keep_fraction) {
                return Err(Error::Invalid(format!(
                    "keep_fraction {keep_fraction} is not in [0, 1)"
                )));
            }
            bytes.truncate((bytes.len() as f64 * keep_fraction) as usize);
        }
        Corruption::Overwrite {
            ranges,
            range_bytes,
            seed,
        } => {
            let first = bytes.len() / 5;
            let span = bytes.len() * 3 / 5;
            if ranges == 0 || range_bytes == 0 || ranges * range_bytes > span {
                return Err(Error::Invalid(format!(
                    "{ranges} ranges of {range_bytes} bytes do not fit in the middle {span} bytes"
                )));
            }
            let step = span / ranges;
            for range in 0..ranges {
                let start = first + range * step;
                let noise = garbage(range_bytes, seed.wrapping_add(range as u64));
                bytes[start..start + range_bytes].copy_from_slice(&noise);
            }
        }
    }
    std::fs::write(destination, &bytes)
        .map_err(io_error(format!("writing {}", destination.display())))
}
