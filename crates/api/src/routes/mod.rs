//! Route handlers. Each hands the CPU-bound service call to the blocking pool, so that a slow
//! detection never stalls the async workers serving other requests.

pub mod access;
pub mod cases;
pub mod faces;
pub mod forms;
pub mod subjects;
pub mod system;
pub mod video;
pub mod watchlists;

use crate::error::ApiError;
use crate::AppState;
use vigil_pipeline::{FaceService, ServiceError};

/// Runs `work` against the service on the blocking thread pool.
pub(crate) async fn run_blocking<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&FaceService) -> Result<T, ServiceError> + Send + 'static,
{
    let service = state.service().clone();
    Ok(tokio::task::spawn_blocking(move || work(&service)).await??)
}
