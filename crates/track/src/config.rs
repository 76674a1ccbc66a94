//! Settings of the motion gate and the tracker, with their defaults (read from the `[track]`
//! table of a configuration file; every field is optional).

use crate::TrackError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackConfig {
    pub motion: MotionConfig,
    pub tracker: TrackerConfig,
}

impl TrackConfig {
    pub fn validate(&self) -> Result<(), TrackError> {
        self.motion.validate()?;
        self.tracker.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionConfig {
    /// Width of the grayscale thumbnail the gate compares, pixels (frames narrower than this
    /// are used at their own width). Downscaling averages away sensor and compression noise.
    pub thumbnail_width: u32,
    /// A thumbnail pixel has changed when it differs from the background by more than this
    /// many grey levels (0–255).
    pub pixel_threshold: f32,
    /// A frame has motion when more than this fraction of thumbnail pixels changed.
    pub min_changed_fraction: f32,
    /// How far the background moves towards each gated frame (0 = never, 1 = becomes the
    /// frame). Small values make slow motion accumulate until it is seen; someone who stops
    /// fades into the background after ln(pixel_threshold / contrast) / ln(1 − rate) frames
    /// (about 20 frames, 2 s at 10 fps, for a face 100 grey levels off the background).
    pub background_rate: f32,
    /// While tracks are alive, detection runs at least this often even on static frames, so
    /// boxes stay fresh and a person who left without visible motion is noticed.
    pub keepalive_interval_ms: i64,
    /// With no track alive, detection still runs at least this often (a face that appeared
    /// while the change stayed under the threshold).
    pub idle_interval_ms: i64,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            thumbnail_width: 160,
            pixel_threshold: 12.0,
            min_changed_fraction: 0.002,
            background_rate: 0.1,
            keepalive_interval_ms: 1_000,
            idle_interval_ms: 5_000,
        }
    }
}

impl MotionConfig {
    pub fn validate(&self) -> Result<(), TrackError> {
        check(
            self.thumbnail_width >= 8,
            "motion.thumbnail_width must be at least 8",
        )?;
        check(
            (0.0..=255.0).contains(&self.pixel_threshold),
            "motion.pixel_threshold must be within 0..=255",
        )?;
        check(
            (0.0..=1.0).contains(&self.min_changed_fraction),
            "motion.min_changed_fraction must be within 0..=1",
        )?;
        check(
            self.background_rate > 0.0 && self.background_rate <= 1.0,
            "motion.background_rate must be within (0, 1]",
        )?;
        check(
            self.keepalive_interval_ms > 0 && self.idle_interval_ms > 0,
            "motion intervals must be positive",
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Detections at or above this detector score are matched first and may start tracks
    /// (ByteTrack's high-score set).
    pub high_score_threshold: f32,
    /// Detections below this score are ignored; those between this and the high threshold
    /// only extend tracks that were matched on the previous detection frame.
    pub low_score_threshold: f32,
    /// First stage: a track and a detection may match only when the track's predicted box
    /// overlaps the detection by at least this IoU.
    pub min_iou: f32,
    /// Second stage (low-score detections): the stricter IoU such a match needs.
    pub low_score_min_iou: f32,
    /// Weight of the IoU distance in the first-stage cost; the rest is the appearance
    /// (cosine) distance when the detection is usable and the track has an appearance.
    pub iou_weight: f32,
    /// A usable detection whose embedding has a cosine below this with a track's appearance
    /// never matches that track, however well the boxes overlap (crossing paths).
    pub appearance_veto_cosine: f32,
    /// Re-identification: a lost track and a usable detection or newer track with at least
    /// this cosine are the same person, wherever the box is.
    pub reid_min_cosine: f32,
    /// Weight of the old appearance when a usable embedding updates a track's appearance
    /// (exponential moving average).
    pub appearance_momentum: f32,
    /// Matched detection frames a new track needs before it is confirmed; only confirmed
    /// tracks yield finished tracks.
    pub min_hits: u32,
    /// A confirmed track ends when it has not been matched for this long, counted over
    /// detection frames only (static frames do not age tracks).
    pub max_age_ms: i64,
    /// A track is cut into a finished segment when its current segment has lasted this long;
    /// the track goes on under the same id as the next segment.
    pub max_duration_ms: i64,
    /// Embeddings kept per finished track for fusion, best quality first.
    pub top_embeddings: usize,
    /// A face matched by motion alone to one track is embedded only when it may change the
    /// answer (the track has no appearance yet, or the face may enter its top embeddings),
    /// and then at most once per this interval per track. Ambiguous and new faces are always
    /// embedded; unusable faces never are (docs/design/006).
    pub embedding_interval_ms: i64,
    /// A face may enter the track's full top embeddings only when its quality score beats
    /// the lowest kept one by this much (jitter between similar frames is not worth a model
    /// run).
    pub embedding_quality_margin: f32,
    /// Embed every detected face (the behaviour before selective embedding; for measuring).
    pub embed_every_face: bool,
    /// Most points in a finished track's trajectory (decimated evenly, first and last kept).
    pub trajectory_points: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_score_threshold: 0.6,
            low_score_threshold: 0.3,
            min_iou: 0.2,
            low_score_min_iou: 0.5,
            iou_weight: 0.5,
            appearance_veto_cosine: 0.2,
            reid_min_cosine: 0.35,
            appearance_momentum: 0.9,
            min_hits: 3,
            max_age_ms: 2_000,
            max_duration_ms: 60_000,
            top_embeddings: 3,
            embedding_interval_ms: 250,
            embedding_quality_margin: 0.02,
            embed_every_face: false,
            trajectory_points: 32,
        }
    }
}

impl TrackerConfig {
    pub fn validate(&self) -> Result<(), TrackError> {
        let unit = |value: f32| (0.0..=1.0).contains(&value);
        check(
            unit(self.high_score_threshold) && unit(self.low_score_threshold),
            "tracker score thresholds must be within 0..=1",
        )?;
        check(
            self.low_score_threshold <= self.high_score_threshold,
            "tracker.low_score_threshold must not exceed tracker.high_score_threshold",
        )?;
        check(
            unit(self.min_iou) && unit(self.low_score_min_iou) && unit(self.iou_weight),
            "tracker IoU settings must be within 0..=1",
        )?;
        check(
            (-1.0..=1.0).contains(&self.appearance_veto_cosine)
                && (-1.0..=1.0).contains(&self.reid_min_cosine),
            "tracker cosine thresholds must be within -1..=1",
        )?;
        check(
            (0.0..1.0).contains(&self.appearance_momentum),
            "tracker.appearance_momentum must be within 0..1",
        )?;
        check(self.min_hits >= 1, "tracker.min_hits must be at least 1")?;
        check(
            self.max_age_ms > 0 && self.max_duration_ms > 0,
            "tracker durations must be positive",
        )?;
        check(
            self.embedding_interval_ms >= 0 && self.embedding_quality_margin >= 0.0,
            "tracker.embedding_interval_ms and embedding_quality_margin must not be negative",
        )?;
        check(
            self.top_embeddings >= 1,
            "tracker.top_embeddings must be at least 1",
        )?;
        check(
            self.trajectory_points >= 2,
            "tracker.trajectory_points must be at least 2",
        )
    }
}

fn check(condition: bool, message: &str) -> Result<(), TrackError> {
    if condition {
        Ok(())
    } else {
        Err(TrackError::InvalidConfig(message.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_partial_table_keeps_the_other_defaults() {
        TrackConfig::default().validate().unwrap();
        let config: TrackConfig =
            toml::from_str("[tracker]\nmax_age_ms = 3000\n[motion]\nthumbnail_width = 96\n")
                .unwrap();
        assert_eq!(config.tracker.max_age_ms, 3000);
        assert_eq!(config.tracker.min_hits, TrackerConfig::default().min_hits);
        assert_eq!(config.motion.thumbnail_width, 96);
        config.validate().unwrap();
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let config = TrackerConfig {
            low_score_threshold: 0.9,
            ..TrackerConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(TrackError::InvalidConfig(_))
        ));
        assert!(toml::from_str::<TrackConfig>("[tracker]\nmax_age = 3\n").is_err());
    }
}
