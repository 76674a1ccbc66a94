//! Where the repository and the shared data (`../shared` beside the repository) are.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate_dir.to_path_buf())
}

/// `$VIGIL_SHARED_DIR`, else `../shared` beside the repository; an error if it does not exist.
pub fn shared_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("VIGIL_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    if dir.is_dir() {
        Ok(dir.canonicalize().unwrap_or(dir))
    } else {
        Err(Error::SharedDataMissing(dir))
    }
}

/// The real clips: `shared/data/video`.
pub fn video_dir() -> Result<PathBuf> {
    existing(shared_dir()?.join("data/video"))
}

/// LFW deep-funneled, one folder per person: `shared/data/lfw/lfw-deepfunneled`.
pub fn lfw_dir() -> Result<PathBuf> {
    existing(shared_dir()?.join("data/lfw/lfw-deepfunneled"))
}

fn existing(dir: PathBuf) -> Result<PathBuf> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(Error::SharedDataMissing(dir))
    }
}
