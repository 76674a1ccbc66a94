//! Finding and starting onnxruntime, and opening model sessions.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`), from, in order: the configured
//! path, the `ORT_DYLIB_PATH` variable, or `.venv/lib/python3*/site-packages/onnxruntime/capi/`
//! in the current directory, the executable's directory, or any of their parents.

use crate::InferError;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// ort allows one environment per process; it is created on first use and then shared.
static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// The onnxruntime environment, loading the library on first call.
pub fn environment(explicit_library: Option<&Path>) -> Result<Environment, InferError> {
    let mut slot = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(environment) = slot.as_ref() {
        return Ok(environment.clone());
    }
    let library = locate_library(explicit_library)?;
    let load_error = |message: String| InferError::RuntimeLoad {
        path: library.clone(),
        message,
    };
    let builder = ort::init_from(&library).map_err(|e| load_error(e.to_string()))?;
    let environment = builder.build().map_err(|e| load_error(e.to_string()))?;
    tracing::info!(library = %library.display(), "onnxruntime loaded");
    *slot = Some(environment.clone());
    Ok(environment)
}

/// Resolves the onnxruntime shared library path, following the documented search order.
pub fn locate_library(explicit_library: Option<&Path>) -> Result<PathBuf, InferError> {
    if let Some(path) = explicit_library {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        return Err(InferError::RuntimeNotFound {
            searched: vec![path.to_path_buf()],
        });
    }
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path);
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(current) = std::env::current_dir() {
        roots.push(current);
    }
    if let Some(parent) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push(parent);
    }
    for root in roots {
        for directory in root.ancestors() {
            let venv = directory.join(".venv");
            if !venv.is_dir() {
                continue;
            }
            searched.push(venv.clone());
            if let Some(found) = library_in_venv(&venv) {
                return Ok(found);
            }
        }
    }
    Err(InferError::RuntimeNotFound { searched })
}

/// `<venv>/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`, newest name last.
fn library_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    for python in std::fs::read_dir(venv.join("lib")).ok()?.flatten() {
        if !python.file_name().to_string_lossy().starts_with("python3") {
            continue;
        }
        let capi = python.path().join("site-packages/onnxruntime/capi");
        let Ok(entries) = std::fs::read_dir(&capi) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("libonnxruntime.so") || name.starts_with("libonnxruntime.dylib") {
                candidates.push(entry.path());
            }
        }
    }
    candidates.sort();
    candidates.pop()
}

/// Opens a model with all graph optimisations and `intra_threads` threads (0 = onnxruntime's
/// default, one per physical core), its pool threads sleeping rather than spinning between
/// runs.
pub fn open_session(
    environment: &Environment,
    model_name: &str,
    path: &Path,
    intra_threads: usize,
) -> Result<Session, InferError> {
    let error = |e: &dyn std::fmt::Display| InferError::onnx(model_name, e);
    let builder = Session::builder(environment).map_err(|e| error(&e))?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| error(&e))?;
    let mut builder = builder
        .with_intra_threads(intra_threads)
        .map_err(|e| error(&e))?;
    // No spin-waiting in the intra-op pool: an analyzer alternates between sessions (detector,
    // recognizer), and a pool thread that spins after its session's run takes the core the
    // next session needs. Measured with 2 threads on 2 cores, for vigil and for Python's
    // binding alike: 22.1 images/s against 13.7 with spinning (BENCHMARKS.md, "Photo pipeline").
    // (A one-thread session has no pool: nothing to set.)
    if intra_threads != 1 {
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| error(&e))?;
    }
    builder.commit_from_file(path).map_err(|e| error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_library_reports_where_it_looked() {
        let missing = Path::new("/nonexistent/libonnxruntime.so");
        match locate_library(Some(missing)) {
            Err(InferError::RuntimeNotFound { searched }) => assert_eq!(searched, vec![missing]),
            other => panic!("expected RuntimeNotFound, got {other:?}"),
        }
    }

    #[test]
    fn venv_layout_is_found() {
        let root = std::env::temp_dir().join(format!("vigil-venv-{}", std::process::id()));
        let capi = root.join(".venv/lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime.so.1.32.0"), b"").unwrap();
        let found = library_in_venv(&root.join(".venv")).unwrap();
        assert!(found.ends_with("libonnxruntime.so.1.32.0"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
