//! Video analysis after the models: motion gating (skip detection on static frames), a
//! multi-object face tracker (ByteTrack-style two-stage association with appearance gating and
//! re-identification) and best-shot selection. A finished track is what the pipeline turns into
//! a sighting. See docs/design/006-tracker.md for the invariants.
//!
//! The crate never runs a model: the caller detects and analyses faces on the frames the
//! [`MotionGate`] lets through and hands them to [`Tracker::update`]; on the frames it holds
//! back it calls [`Tracker::update_static`].

mod assignment;
mod config;
mod error;
mod kalman;
mod motion;
mod summary;
mod tracker;

pub use config::{MotionConfig, TrackConfig, TrackerConfig};
pub use error::TrackError;
pub use motion::{GateDecision, MotionGate};
pub use summary::{BestShot, EndReason, FinishedTrack, RankedEmbedding, TrajectoryPoint};
pub use tracker::{ActiveTrack, FaceCandidate, FaceObservation, TrackId, TrackState, Tracker};
