//! The one error type of this crate.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrackError {
    #[error("frame buffer of {len} bytes is not a {width}x{height} RGB image")]
    FrameSize { width: u32, height: u32, len: usize },
    #[error("track configuration is invalid: {0}")]
    InvalidConfig(String),
}
