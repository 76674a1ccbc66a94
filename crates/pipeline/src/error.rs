use vigil_infer::QualityIssue;

/// What went wrong, in the user's terms. The API maps each variant to a stable error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Image(#[from] vigil_infer::InferError),
    #[error("no face was found in the image")]
    NoFace,
    #[error("a face was found but it is not usable: {}", describe(issues))]
    NoUsableFace { issues: Vec<QualityIssue> },
    #[error("the image holds {count} usable faces of similar size; an enrolment photo must show one person")]
    AmbiguousFaces { count: usize },
    #[error("the image holds {count} faces, more than the limit of {limit}")]
    TooManyFaces { count: usize, limit: usize },
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
    #[error(transparent)]
    Index(#[from] vigil_index::IndexError),
    #[error(transparent)]
    Calibration(#[from] vigil_base::CalibrationError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn describe(issues: &[QualityIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
