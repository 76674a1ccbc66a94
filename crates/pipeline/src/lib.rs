//! The face service: joins the models (`infer`), the metadata store (`store`), the in-memory
//! gallery (`index`) and score calibration (`base`) into enrolment, 1:N identification, 1:1
//! verification and the evaluation protocols. The HTTP API and the CLI are thin layers over it.

pub mod access_report;
pub mod calibrate;
pub mod error;
pub mod eval;
pub mod lfw;
pub mod pool;
pub mod reports;
pub mod search;
pub mod service;
pub mod video;

pub use error::ServiceError;
pub use reports::*;
pub use service::{FaceService, NamedImage, PreparedTemplate};
