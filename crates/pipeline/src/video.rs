//! Live video analysis: each camera's frames → motion gate → detection and analysis (on an
//! analyzer lent by the service's pool) → tracker → sightings in the store, identified against
//! the gallery, and published to subscribers.
//!
//! One analysis thread per camera, reading the camera's one-frame mailbox: when the analyzers
//! are busy, frames are dropped at the mailbox, never queued, so a slow model delays no camera
//! by more than one frame and memory stays flat.

mod crop;
pub mod live;
mod stats;

pub use crop::FaceCrop;
pub use stats::CameraAnalysisView;
use stats::CameraStats;

use crate::reports::Candidate;
use crate::search::ranked_report;
pub use crate::search::{search_stored, SearchFilter, SearchHit, SearchReport};
use crate::service::FaceService;
use crate::ServiceError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use vigil_base::{CameraConfig, CameraId, Embedding, SubjectId};
use vigil_index::{
    BuildProgress, EntryKind, EntryMeta, SearchFilter as IndexFilter, SearchMethod, SegmentedIndex,
    SegmentedOptions,
};
use vigil_infer::{AlignedFace, DecodedImage, RgbView};
use vigil_ingest::{FrameReceiver, FrameSink, Received, VideoFrame};
use vigil_store::{
    AlertRecord, NewAlert, NewSighting, SightingCandidate, SightingId, SightingRecord,
    TrajectoryPoint, VideoStore,
};
use vigil_track::{
    FaceCandidate, FaceObservation, FinishedTrack, MotionGate, RankedEmbedding, TrackConfig,
    Tracker,
};

/// Sightings kept for subscribers that fall behind; a slower subscriber misses the oldest.
const EVENT_BUFFER: usize = 1024;

/// One entry of the sightings index: its metadata and its vector.
type IndexRow = (EntryMeta, Vec<f32>);

/// Index entries kept for a retry while the sightings index cannot be written (a few KiB
/// each). Past it the oldest are given up: the next start rebuilds the index from the store,
/// which holds every sighting, so nothing is lost for good.
const MAX_UNINDEXED_ENTRIES: usize = 20_000;

/// Sightings kept in memory while the store cannot take them (a full disk): a crop and a few
/// embeddings each, tens of KiB, so at most some tens of MiB. Past it the oldest is given up,
/// counted in `vigil_sightings_lost_total` and logged with its camera and time.
const MAX_UNSTORED_SIGHTINGS: usize = 1_000;

/// How often a camera's analysis thread retries the sightings waiting for disk space.
const UNSTORED_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// A finished sighting the store refused for want of space, kept for a retry: what
/// `record_sighting` was given.
struct Unstored {
    sighting: NewSighting,
    usable: Vec<Embedding>,
    now_ms: i64,
}

/// A sighting as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SightingView {
    pub id: i64,
    #[schema(value_type = String)]
    pub camera: CameraId,
    pub track: u64,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub best_at_ms: i64,
    pub observations: u32,
    /// `lost`, `max_duration` or `flush`.
    pub end_reason: String,
    pub quality: f32,
    pub detector_score: f32,
    /// Best-shot box x1, y1, x2, y2 in analysed-frame pixels.
    pub bbox: [f32; 4],
    pub frame_width: u32,
    pub frame_height: u32,
    /// `[at_ms, center_x, center_y, width, height]` points.
    pub trajectory: Vec<[f64; 5]>,
    /// Enrolled subjects matching at or below the configured false-match rate when the
    /// sighting was made, best first.
    pub candidates: Vec<SightingCandidateView>,
    /// Where to fetch the best-shot JPEG.
    pub crop_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SightingCandidateView {
    pub subject_id: i64,
    pub subject_name: String,
    pub score: f32,
    pub false_match_rate: f64,
    pub false_match_rate_extrapolated: bool,
}

impl SightingView {
    pub fn of(record: SightingRecord) -> Self {
        Self {
            crop_url: format!("/v1/sightings/{}/crop.jpg", record.id),
            id: record.id.0,
            camera: record.camera,
            track: record.track,
            started_at_ms: record.started_at_ms,
            ended_at_ms: record.ended_at_ms,
            best_at_ms: record.best_at_ms,
            observations: record.observations,
            end_reason: record.end_reason,
            quality: record.quality,
            detector_score: record.detector_score,
            bbox: record.bbox,
            frame_width: record.frame_width,
            frame_height: record.frame_height,
            trajectory: record
                .trajectory
                .iter()
                .map(|p| {
                    [
                        p.at_ms as f64,
                        p.center_x as f64,
                        p.center_y as f64,
                        p.width as f64,
                        p.height as f64,
                    ]
                })
                .collect(),
            candidates: record
                .candidates
                .into_iter()
                .map(|c| SightingCandidateView {
                    subject_id: c.subject.0,
                    subject_name: c.subject_name,
                    score: c.score,
                    false_match_rate: c.false_match_rate,
                    false_match_rate_extrapolated: c.extrapolated,
                })
                .collect(),
        }
    }
}

/// Index entry ids: the sighting id times this, plus the embedding's rank, so each kept
/// embedding of a sighting has its own entry.
const ENTRY_IDS_PER_SIGHTING: u64 = 16;

fn entry_id(sighting: SightingId, rank: usize) -> u64 {
    sighting.0 as u64 * ENTRY_IDS_PER_SIGHTING + rank as u64
}

fn sighting_of(entry: u64) -> SightingId {
    SightingId((entry / ENTRY_IDS_PER_SIGHTING) as i64)
}

/// The index keys cameras by number: FNV-1a of the camera id (results are checked against the
/// sighting's own camera, so a collision cannot leak another camera's sightings).
fn camera_key(camera: &CameraId) -> vigil_index::CameraId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in camera.as_str().bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    vigil_index::CameraId(hash)
}

fn entry_meta(sighting: SightingId, rank: usize, camera: &CameraId, at_ms: i64) -> EntryMeta {
    EntryMeta {
        id: entry_id(sighting, rank),
        kind: EntryKind::SIGHTING,
        subject: None,
        camera: Some(camera_key(camera)),
        timestamp_ms: at_ms,
    }
}

/// Two sightings show the same person when their faces match at or below this false-match
/// rate: a rejection ("not this person") then stands for the later sighting too.
pub const NOT_THIS_PERSON_FMR: f64 = 1e-4;
/// Rejections of one subject compared with each new candidate alert (the latest).
const REJECTIONS_REMEMBERED: usize = 50;

/// Runs every camera's analysis and publishes the sightings. Cloning shares everything.
#[derive(Clone)]
pub struct VideoAnalysis {
    service: Arc<FaceService>,
    store: Arc<dyn VideoStore>,
    /// Embeddings of stored sightings for retrospective search: the persistent segmented index
    /// (docs/design/005), filters applied inside the scan.
    index: Arc<SegmentedIndex>,
    tracking: TrackConfig,
    /// Off = detect on every analysed frame (for measuring what gating saves).
    motion_gating: bool,
    events: broadcast::Sender<Arc<SightingView>>,
    alerts: broadcast::Sender<Arc<AlertRecord>>,
    /// Per camera, while its analysis runs.
    stats: Arc<Mutex<HashMap<CameraId, Arc<CameraStats>>>>,
    /// Per camera: the live picture, kept while someone watches.
    live: Arc<Mutex<HashMap<CameraId, Arc<live::LivePicture>>>>,
    /// Index entries of stored sightings whose index write failed, oldest first; retried
    /// before the next write and before every search.
    unindexed: Arc<Mutex<Vec<IndexRow>>>,
    /// Sightings the store refused with `StorageFull`, oldest first; retried every few
    /// seconds and before the next sighting is stored, so they are stored in order.
    unstored: Arc<Mutex<std::collections::VecDeque<Unstored>>>,
    /// When the waiting sightings were last retried, so that camera threads do not all retry
    /// at every frame while the disk stays full.
    last_unstored_retry: Arc<Mutex<Option<Instant>>>,
}

impl VideoAnalysis {
    /// `index_dir` holds the sightings' search index; it is reopened, and rebuilt from the
    /// store (with progress in the log) when it does not hold exactly the store's embeddings.
    /// `None` keeps the index in memory only, rebuilt from the store at every start: with
    /// encryption at rest the store's copies are sealed and the index must not write
    /// plaintext embeddings to disk (design 011).
    pub fn new(
        service: Arc<FaceService>,
        store: Arc<dyn VideoStore>,
        tracking: TrackConfig,
        motion_gating: bool,
        index_dir: Option<&std::path::Path>,
    ) -> Result<Arc<Self>, ServiceError> {
        tracking
            .validate()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (alerts, _) = broadcast::channel(EVENT_BUFFER);
        let index = Arc::new(open_sighting_index(&service, store.as_ref(), index_dir)?);
        Ok(Arc::new(Self {
            service,
            store,
            index,
            tracking,
            motion_gating,
            events,
            alerts,
            stats: Arc::default(),
            live: Arc::default(),
            unindexed: Arc::default(),
            unstored: Arc::default(),
            last_unstored_retry: Arc::default(),
        }))
    }

    /// The camera's live picture, marked watched at `now_ms` (kept updated for
    /// [`live::WATCH_TTL_MS`]); None when the camera is not analysed.
    pub fn watch_live(&self, camera: &CameraId, now_ms: i64) -> Option<Arc<live::LivePicture>> {
        let pictures = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let picture = pictures.get(camera)?.clone();
        picture.watch(now_ms);
        Some(picture)
    }

    /// What the camera's analysis has cost since it started; None when it is not analysed.
    pub fn camera_analysis(&self, camera: &CameraId) -> Option<CameraAnalysisView> {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.get(camera).map(|s| s.view())
    }

    /// Reads `[video.tracking]` from the config file's table.
    pub fn tracking_from_table(table: &toml::Table) -> Result<TrackConfig, ServiceError> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                ServiceError::Invalid(format!("video.tracking is invalid: {e}"))
            })
    }

    /// New sightings as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SightingView>> {
        self.events.subscribe()
    }

    /// Alerts as they are raised, and as reviews change their state.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Arc<AlertRecord>> {
        self.alerts.subscribe()
    }

    /// Publishes an alert's new state (after a review) to alert subscribers.
    pub fn publish_alert(&self, alert: AlertRecord) {
        let _ = self.alerts.send(Arc::new(alert));
    }

    /// Matches one sighting's usable embeddings against the watchlist entries active at
    /// `now_ms` and stores a candidate alert for each entry matched at or below its
    /// watchlist's false-match rate. Expired or removed entries, and entries whose case is
    /// closed or expired, never match.
    pub fn raise_alerts(
        &self,
        sighting: SightingId,
        embeddings: &[&Embedding],
        now_ms: i64,
    ) -> Result<Vec<AlertRecord>, ServiceError> {
        if embeddings.is_empty() {
            return Ok(Vec::new());
        }
        let entries = self.store.active_watch_entries(now_ms)?;
        let Some(loosest) = entries
            .iter()
            .map(|e| e.false_match_rate)
            .max_by(|a, b| a.total_cmp(b))
        else {
            return Ok(Vec::new());
        };
        // every watched subject may be a candidate: searching only their templates (the
        // filter runs inside the scan) with k = their number cannot miss one
        let watched: std::collections::HashSet<SubjectId> =
            entries.iter().map(|e| e.subject).collect();
        let candidates = self.service.match_embeddings_among(
            embeddings,
            Some(&watched),
            watched.len(),
            loosest,
        )?;
        let mut raised = Vec::new();
        for candidate in &candidates {
            for entry in entries
                .iter()
                .filter(|e| e.subject.0 == candidate.subject_id)
            {
                if candidate.false_match_rate > entry.false_match_rate {
                    continue;
                }
                if let Some(rejected) =
                    self.rejected_as_not_this_person(entry.subject, embeddings)?
                {
                    self.audit_suppressed(sighting, entry, candidate, &rejected, now_ms)?;
                    continue;
                }
                let alert = self.store.insert_alert(
                    &NewAlert {
                        sighting: sighting.0,
                        watchlist_entry: entry.entry,
                        subject: entry.subject,
                        best_template: candidate.best_template_id,
                        score: candidate.score,
                        false_match_rate: candidate.false_match_rate,
                        extrapolated: candidate.false_match_rate_extrapolated,
                        expected_false_candidates: candidate.expected_false_candidates,
                        gallery_templates: self.service.gallery_templates() as u64,
                    },
                    now_ms,
                )?;
                metrics::counter!("vigil_alerts_total").increment(1);
                let _ = self.alerts.send(Arc::new(alert.clone()));
                raised.push(alert);
            }
        }
        Ok(raised)
    }

    /// "Not this person": when a reviewer rejected an alert about `subject` and this sighting
    /// shows the same person as the rejected one (at or below [`NOT_THIS_PERSON_FMR`]), the
    /// rejection stands for them: that alert is returned, and no new alert is raised.
    fn rejected_as_not_this_person(
        &self,
        subject: SubjectId,
        embeddings: &[&Embedding],
    ) -> Result<Option<(vigil_store::RejectedAlert, f32)>, ServiceError> {
        let rejected = self
            .store
            .rejected_alerts_of(subject, REJECTIONS_REMEMBERED)?;
        if rejected.is_empty() {
            return Ok(None);
        }
        let same_person = self.service.score_threshold(NOT_THIS_PERSON_FMR)?;
        for alert in rejected {
            let seen = self.store.sighting_embeddings(SightingId(alert.sighting))?;
            let best = seen
                .iter()
                .flat_map(|(earlier, _)| embeddings.iter().map(move |now| (earlier, *now)))
                .filter_map(|(earlier, now)| earlier.cosine(now).ok())
                .fold(f32::MIN, f32::max);
            if best >= same_person {
                return Ok(Some((alert, best)));
            }
        }
        Ok(None)
    }

    /// An alert not raised is a decision: it goes in the audit log with what it rests on.
    fn audit_suppressed(
        &self,
        sighting: SightingId,
        entry: &vigil_store::ActiveWatchEntry,
        candidate: &Candidate,
        (rejected, same_person_score): &(vigil_store::RejectedAlert, f32),
        now_ms: i64,
    ) -> Result<(), ServiceError> {
        metrics::counter!("vigil_alerts_suppressed_total").increment(1);
        let audit = vigil_audit::NewAuditEntry {
            actor: vigil_audit::Actor {
                user_id: None,
                user_name: "vigil".into(),
            },
            action: vigil_audit::AuditAction::AlertSuppressed,
            target: vigil_audit::Target {
                kind: "sighting".into(),
                id: sighting.0.to_string(),
            },
            case_ref: None,
            reason: format!(
                "not this person: {} rejected alert {} about the same person",
                rejected.rejected_by, rejected.alert
            ),
            request: serde_json::json!({
                "subject": entry.subject.0,
                "watchlist_entry": entry.entry,
                "score": candidate.score,
                "false_match_rate": candidate.false_match_rate,
                "rejected_alert": rejected.alert,
                "rejected_sighting": rejected.sighting,
                "same_person_score": same_person_score,
                "same_person_false_match_rate": NOT_THIS_PERSON_FMR,
                "at_ms": now_ms,
            }),
            probe_image: None,
            outcome: vigil_audit::Outcome::success("alert not raised"),
        };
        Ok(self.store.audit_decision(&audit)?)
    }

    pub fn store(&self) -> &Arc<dyn VideoStore> {
        &self.store
    }

    /// Records a finished sighting: stores it, raises its alerts (stored with their webhook
    /// deliveries in the alert's transaction, then published), and only then adds its
    /// embeddings to the sightings index. The index is a derived copy: a failed write there
    /// (a full or failing disk) must not cost an alert, so it is kept for a retry (before the
    /// next write and before every search) and never fails the sighting. `usable` are the
    /// embeddings fit for matching, `now_ms` the time the watchlist entries are judged at.
    ///
    /// When the store refuses the sighting for want of space (`StorageFull`) it is kept in
    /// memory (up to `MAX_UNSTORED_SIGHTINGS`) and stored, with its alerts, when space returns
    /// (see [`VideoAnalysis::retry_unstored`]); the error is still returned. Sightings kept
    /// earlier are stored first.
    pub fn record_sighting(
        &self,
        sighting: &NewSighting,
        usable: &[&Embedding],
        now_ms: i64,
    ) -> Result<(SightingId, Vec<AlertRecord>), ServiceError> {
        self.retry_unstored();
        let mut waiting = self.unstored.lock().unwrap_or_else(|p| p.into_inner());
        if !waiting.is_empty() {
            // Still no space: keep this one behind the others rather than store out of order.
            self.keep_unstored(&mut waiting, sighting, usable, now_ms);
            return Err(vigil_store::StoreError::StorageFull(
                "sightings are waiting for disk space".into(),
            )
            .into());
        }
        match self.store_sighting(sighting, usable, now_ms) {
            Ok((id, raised)) => Ok((id, raised?)),
            Err(error) => {
                if let ServiceError::Store(vigil_store::StoreError::StorageFull(_)) = &error {
                    self.keep_unstored(&mut waiting, sighting, usable, now_ms);
                }
                Err(error)
            }
        }
    }

    /// Sightings waiting for disk space.
    pub fn unstored_sightings(&self) -> usize {
        self.unstored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Stores the sightings kept while the disk was full, oldest first, with their alerts
    /// (judged at the time the sighting ended) and publishes them to subscribers; stops at the
    /// first that still does not fit. A sighting refused for another reason is given up
    /// (counted and logged). Returns how many still wait.
    pub fn retry_unstored(&self) -> usize {
        let mut waiting = self.unstored.lock().unwrap_or_else(|p| p.into_inner());
        *self
            .last_unstored_retry
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        while let Some(next) = waiting.front() {
            let usable: Vec<&Embedding> = next.usable.iter().collect();
            match self.store_sighting(&next.sighting, &usable, next.now_ms) {
                Ok((id, raised)) => {
                    if let Err(error) = raised {
                        tracing::error!(target: "vigil::video", sighting = %id, %error,
                            "a sighting stored late cannot raise its alerts");
                    }
                    metrics::counter!("vigil_sightings_total", "camera" => next.sighting.camera.0.clone())
                        .increment(1);
                    metrics::counter!("vigil_sightings_stored_late_total").increment(1);
                    if let Ok(Some(record)) = self.store.sighting(id) {
                        let _ = self.events.send(Arc::new(SightingView::of(record)));
                    }
                }
                Err(ServiceError::Store(vigil_store::StoreError::StorageFull(_))) => break,
                Err(error) => {
                    metrics::counter!("vigil_sightings_lost_total").increment(1);
                    tracing::error!(target: "vigil::video", camera = %next.sighting.camera,
                        ended_at_ms = next.sighting.ended_at_ms, %error,
                        "a sighting kept while the disk was full cannot be stored: lost");
                }
            }
            waiting.pop_front();
        }
        metrics::gauge!("vigil_sightings_unstored").set(waiting.len() as f64);
        waiting.len()
    }

    /// `retry_unstored` at most every `UNSTORED_RETRY_INTERVAL` (the camera threads call it
    /// as frames come, so that kept sightings are stored soon after space returns even when
    /// no new sighting ends).
    fn retry_unstored_now_and_then(&self) {
        let due = self
            .last_unstored_retry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|last| last.elapsed() >= UNSTORED_RETRY_INTERVAL);
        if due && self.unstored_sightings() > 0 {
            self.retry_unstored();
        }
    }

    fn keep_unstored(
        &self,
        waiting: &mut std::collections::VecDeque<Unstored>,
        sighting: &NewSighting,
        usable: &[&Embedding],
        now_ms: i64,
    ) {
        if waiting.len() >= MAX_UNSTORED_SIGHTINGS {
            if let Some(lost) = waiting.pop_front() {
                metrics::counter!("vigil_sightings_lost_total").increment(1);
                tracing::error!(target: "vigil::video", camera = %lost.sighting.camera,
                    ended_at_ms = lost.sighting.ended_at_ms, kept = MAX_UNSTORED_SIGHTINGS,
                    "the disk is still full and too many sightings wait for it: the oldest is lost");
            }
        }
        waiting.push_back(Unstored {
            sighting: sighting.clone(),
            usable: usable.iter().map(|e| (*e).clone()).collect(),
            now_ms,
        });
        metrics::gauge!("vigil_sightings_unstored").set(waiting.len() as f64);
        tracing::warn!(target: "vigil::video", camera = %sighting.camera, waiting = waiting.len(),
            "the disk is full: the sighting is kept in memory and stored when space returns");
    }

    /// Stores one sighting, raises its alerts and indexes it (what `record_sighting` does once
    /// nothing waits before it). The outer error is the sighting's own (nothing stored, so it
    /// may be kept and retried); the inner one its alerts' (the sighting is stored: a retry
    /// would store it twice).
    fn store_sighting(
        &self,
        sighting: &NewSighting,
        usable: &[&Embedding],
        now_ms: i64,
    ) -> Result<(SightingId, Result<Vec<AlertRecord>, ServiceError>), ServiceError> {
        let id = self.store.insert_sighting(sighting)?;
        let raised = self.raise_alerts(id, usable, now_ms);
        let entries: Vec<IndexRow> = sighting
            .embeddings
            .iter()
            .enumerate()
            .filter(|(_, (embedding, _))| embedding.model() == self.service.model())
            .map(|(rank, (embedding, _))| {
                (
                    entry_meta(id, rank, &sighting.camera, sighting.best_at_ms),
                    embedding.values().to_vec(),
                )
            })
            .collect();
        self.index_or_keep_for_retry(entries);
        Ok((id, raised))
    }

    /// Index entries waiting for a retry after a failed index write.
    pub fn unindexed_entries(&self) -> usize {
        self.unindexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Writes the entries waiting since a failed index write; returns how many still wait.
    pub fn retry_unindexed(&self) -> usize {
        self.index_or_keep_for_retry(Vec::new())
    }

    /// Writes the waiting entries and `entries` in one batch (one fsync); on failure keeps them
    /// all for the next try. Returns how many wait.
    fn index_or_keep_for_retry(&self, entries: Vec<IndexRow>) -> usize {
        let mut unindexed = self.unindexed.lock().unwrap_or_else(|p| p.into_inner());
        unindexed.extend(entries);
        if unindexed.is_empty() {
            return 0;
        }
        match self.index.insert_batch(&unindexed) {
            Ok(()) => {
                unindexed.clear();
                metrics::gauge!("vigil_sighting_index_backlog_entries").set(0.0);
            }
            Err(error) => {
                metrics::counter!("vigil_sighting_index_write_failures_total").increment(1);
                let excess = unindexed.len().saturating_sub(MAX_UNINDEXED_ENTRIES);
                unindexed.drain(..excess);
                tracing::error!(target: "vigil::video", %error, waiting = unindexed.len(),
                    given_up = excess, "cannot write the sightings index; alerts are unaffected, the entries are retried (and rebuilt from the store at the next start)");
                metrics::gauge!("vigil_sighting_index_backlog_entries").set(unindexed.len() as f64);
            }
        }
        unindexed.len()
    }

    /// Retrospective search: where and when was the probe's face seen? Only sightings at or
    /// below `false_match_rate` (default: the configured one) are returned, best first.
    pub fn search(
        &self,
        probe: &[u8],
        filter: &SearchFilter,
        limit: usize,
        false_match_rate: Option<f64>,
    ) -> Result<SearchReport, ServiceError> {
        let service = &self.service;
        let rate = false_match_rate.unwrap_or(service.matching().false_match_rate);
        // An invalid rate is refused before any face is analysed.
        service.score_threshold(rate)?;
        // Sightings whose index write failed are searchable as soon as the index takes them.
        self.retry_unindexed();
        let (probe_sha256, embedding) = service.probe_embedding(probe)?;
        let limit = limit.clamp(1, 1000);
        let mut index_filter = IndexFilter::all().kinds([EntryKind::SIGHTING]);
        if !filter.cameras.is_empty() {
            index_filter = index_filter.cameras(filter.cameras.iter().map(camera_key));
        }
        if filter.from_ms.is_some() || filter.to_ms.is_some() {
            let from = filter.from_ms.unwrap_or(i64::MIN);
            let to = filter.to_ms.map_or(i64::MAX, |t| t.saturating_add(1));
            index_filter = index_filter.time_range_ms(from..to);
        }
        // A sighting keeps a few embeddings: fetch enough entries for `limit` sightings.
        let fetch = limit * (self.tracking.tracker.top_embeddings.max(1)) + 16;
        let entries = self
            .index
            .search(&embedding, fetch, &index_filter, SearchMethod::Exact)?;
        let stats = self.index.stats();
        // Live entries of the index (a sighting has one per kept embedding).
        let searched = (stats.sealed_rows + stats.growing_rows).saturating_sub(stats.deleted_rows);
        let mut best: std::collections::HashMap<SightingId, f32> = Default::default();
        for hit in entries {
            let entry = best.entry(sighting_of(hit.entry.id)).or_insert(f32::MIN);
            *entry = entry.max(hit.score);
        }
        ranked_report(
            service,
            self.store.as_ref(),
            best,
            searched,
            filter,
            limit,
            rate,
            probe_sha256,
        )
    }

    /// Deletes sightings that ended before `before_ms` (matched ones only, unmatched ones only,
    /// or all) from the store and from search.
    pub fn purge_sightings_before(
        &self,
        before_ms: i64,
        matched: Option<bool>,
        now_ms: i64,
    ) -> Result<usize, ServiceError> {
        let deleted = self
            .store
            .delete_sightings_ended_before(before_ms, matched, now_ms)?;
        if !deleted.is_empty() {
            // A purged sighting waiting for its index write must not come back by the retry.
            let gone: std::collections::HashSet<SightingId> = deleted.iter().copied().collect();
            self.unindexed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(meta, _)| !gone.contains(&sighting_of(meta.id)));
        }
        for sighting in &deleted {
            for rank in 0..ENTRY_IDS_PER_SIGHTING as usize {
                let id = entry_id(*sighting, rank);
                if self.index.contains(id) {
                    self.index.delete(id)?;
                }
            }
        }
        Ok(deleted.len())
    }

    fn run_camera(&self, camera: CameraConfig, frames: FrameReceiver) {
        let mut worker = match CameraWorker::new(self, camera) {
            Ok(worker) => worker,
            Err(error) => {
                tracing::error!(target: "vigil::video", %error, "cannot start camera analysis");
                return;
            }
        };
        let idle_limit = Duration::from_millis(self.tracking.tracker.max_age_ms.max(0) as u64);
        loop {
            self.retry_unstored_now_and_then();
            match frames.recv(Duration::from_millis(200)) {
                Received::Frame(frame) => worker.analyse(frame),
                Received::Idle => {
                    // The stream went quiet (reconnecting): end its tracks once they would
                    // have aged out anyway, so their sightings are not held back.
                    if worker.last_frame.elapsed() > idle_limit && worker.tracker.has_tracks() {
                        let finished = worker.tracker.flush(worker.last_timestamp_ms);
                        worker.publish_all(finished, Instant::now());
                        worker.gate.reset();
                    }
                }
                Received::Closed => {
                    let finished = worker.tracker.flush(worker.last_timestamp_ms);
                    worker.publish_all(finished, Instant::now());
                    let waiting = self.retry_unstored();
                    if waiting > 0 {
                        tracing::error!(target: "vigil::video", waiting,
                            "sightings are still waiting for disk space: they are lost if the server stops before space returns");
                    }
                    let mut all = self.stats.lock().unwrap_or_else(|p| p.into_inner());
                    // a replaced camera's new worker may already have registered
                    if all
                        .get(&worker.camera.id)
                        .is_some_and(|s| Arc::ptr_eq(s, &worker.stats))
                    {
                        all.remove(&worker.camera.id);
                    }
                    return;
                }
            }
        }
    }
}

impl FrameSink for VideoAnalysis {
    fn attach(&self, camera: &CameraConfig, frames: FrameReceiver) {
        let this = self.clone();
        let camera = camera.clone();
        let name = format!("analyse-{}", camera.id);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || this.run_camera(camera, frames));
        if let Err(error) = spawned {
            tracing::error!(target: "vigil::video", %error, "cannot start an analysis thread");
        }
    }
}

struct CameraWorker<'a> {
    analysis: &'a VideoAnalysis,
    camera: CameraConfig,
    gate: MotionGate,
    tracker: Tracker<FaceCrop>,
    last_frame: Instant,
    last_timestamp_ms: i64,
    frame_size: (u32, u32),
    metric_label: String,
    stats: Arc<CameraStats>,
    live: Arc<live::LivePicture>,
}

impl<'a> CameraWorker<'a> {
    fn new(analysis: &'a VideoAnalysis, camera: CameraConfig) -> Result<Self, ServiceError> {
        let gate = MotionGate::new(analysis.tracking.motion.clone())
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let tracker = Tracker::new(analysis.tracking.tracker.clone())
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let metric_label = camera.id.0.clone();
        let stats = Arc::new(CameraStats::new());
        analysis
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera.id.clone(), stats.clone());
        let live = Arc::new(live::LivePicture::default());
        analysis
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera.id.clone(), live.clone());
        Ok(Self {
            analysis,
            camera,
            gate,
            tracker,
            last_frame: Instant::now(),
            last_timestamp_ms: 0,
            frame_size: (0, 0),
            metric_label,
            stats,
            live,
        })
    }

    fn analyse(&mut self, frame: VideoFrame) {
        let started = Instant::now();
        self.last_frame = started;
        // A timeline that went backwards (a restarted stream re-anchored) restarts the tracks.
        if frame.timestamp_ms < self.last_timestamp_ms {
            let finished = self.tracker.flush(self.last_timestamp_ms);
            self.publish_all(finished, frame.decoded_at);
            self.gate.reset();
        }
        self.last_timestamp_ms = frame.timestamp_ms;
        self.frame_size = (frame.width, frame.height);
        let view = RgbView {
            width: frame.width,
            height: frame.height,
            rgb: &frame.rgb,
        };
        let detect = if self.analysis.motion_gating {
            match self
                .gate
                .check(view, frame.timestamp_ms, self.tracker.has_tracks())
            {
                Ok(decision) => decision.detect,
                Err(error) => {
                    tracing::warn!(target: "vigil::video", camera = %self.camera.id, %error, "frame refused");
                    return;
                }
            }
        } else {
            true
        };
        let (at_ms, decoded_at) = (frame.timestamp_ms, frame.decoded_at);
        // Copied only while someone watches the camera (the frame itself moves into analysis).
        let live_rgb = self
            .live
            .wanted(wall_clock_ms())
            .then(|| (frame.width, frame.height, frame.rgb.clone()));
        let finished = if detect {
            metrics::counter!("vigil_video_detected_frames_total", "camera" => self.metric_label.clone())
                .increment(1);
            match self.observe(frame) {
                Ok(observations) => self.tracker.update(at_ms, observations),
                Err(error) => {
                    tracing::warn!(target: "vigil::video", camera = %self.camera.id, %error, "analysis failed on a frame");
                    self.tracker.update_static(at_ms)
                }
            }
        } else {
            metrics::counter!("vigil_video_gated_frames_total", "camera" => self.metric_label.clone())
                .increment(1);
            self.tracker.update_static(at_ms)
        };
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("vigil_video_frame_seconds", "camera" => self.metric_label.clone())
            .record(seconds);
        self.stats.frame_done(detect, seconds);
        if let Some((width, height, rgb)) = live_rgb {
            let tracks = self.tracker.active_tracks();
            self.live
                .store(live::LiveFrame::new(width, height, at_ms, rgb, &tracks));
        }
        self.publish_all(finished, decoded_at);
    }

    /// Detect, assess every face, and embed only those the tracker asks for (design 006).
    fn observe(
        &mut self,
        frame: VideoFrame,
    ) -> Result<Vec<FaceObservation<FaceCrop>>, ServiceError> {
        // The frame's pixels move into the image: no copy of the frame.
        let image = DecodedImage::from_rgb(frame.width, frame.height, frame.rgb)?;
        let analyzer = self.analysis.service.lend_analyzer();
        let detections = analyzer.detect_frame(RgbView::from(&image))?;
        let (width, height) = (image.width as f32, image.height as f32);
        let inside: Vec<_> = detections
            .into_iter()
            .filter(|d| {
                let [cx, cy] = d.bbox.center();
                self.camera.accepts_point([cx / width, cy / height])
            })
            .collect();
        if inside.is_empty() {
            return Ok(Vec::new());
        }
        let faces = analyzer.assess_detections(&image, inside);
        let candidates: Vec<FaceCandidate> =
            faces.iter().map(FaceCandidate::from_assessed).collect();
        let wanted = self
            .tracker
            .embeddings_wanted(frame.timestamp_ms, &candidates);
        let aligned: Vec<AlignedFace> = faces
            .iter()
            .zip(&wanted)
            .filter(|(_, wanted)| **wanted)
            .map(|(face, _)| face.aligned.clone())
            .collect();
        let mut embeddings = analyzer.embed(&aligned)?.into_iter();
        drop(analyzer);
        metrics::counter!("vigil_video_faces_total", "camera" => self.metric_label.clone())
            .increment(faces.len() as u64);
        metrics::counter!("vigil_video_embeddings_total", "camera" => self.metric_label.clone())
            .increment(aligned.len() as u64);
        self.stats.faces(faces.len() as u64, aligned.len() as u64);
        Ok(faces
            .iter()
            .zip(wanted)
            .map(|(face, wanted)| {
                let embedding = if wanted { embeddings.next() } else { None };
                FaceObservation::from_assessed(
                    face,
                    embedding,
                    FaceCrop::cut(&image, &face.detection.bbox),
                )
            })
            .collect())
    }

    fn publish_all(&self, finished: Vec<FinishedTrack<FaceCrop>>, ended_at: Instant) {
        for track in finished {
            match self.publish(track) {
                Ok(view) => {
                    metrics::histogram!("vigil_sighting_latency_seconds")
                        .record(ended_at.elapsed().as_secs_f64());
                    metrics::counter!("vigil_sightings_total", "camera" => self.metric_label.clone())
                        .increment(1);
                    // No subscriber is not an error.
                    let _ = self.analysis.events.send(Arc::new(view));
                }
                // Kept in memory for a retry, and logged, by `record_sighting`.
                Err(ServiceError::Store(vigil_store::StoreError::StorageFull(_))) => {}
                Err(error) => {
                    tracing::warn!(target: "vigil::video", camera = %self.camera.id, %error, "cannot store a sighting")
                }
            }
        }
    }

    fn publish(&self, mut track: FinishedTrack<FaceCrop>) -> Result<SightingView, ServiceError> {
        let started = Instant::now();
        let service = &self.analysis.service;
        if track.top_embeddings.is_empty() {
            // unusable faces are not embedded while tracking; the sighting keeps its best
            // shot's embedding all the same (stored and searchable, never matched)
            let best = &track.best_shot.observation;
            let embedding = best
                .payload
                .embed(best, &self.analysis.service.lend_analyzer())?;
            self.stats.faces(0, 1);
            metrics::counter!("vigil_video_embeddings_total", "camera" => self.metric_label.clone())
                .increment(1);
            track.top_embeddings.push(RankedEmbedding {
                at_ms: track.best_shot.at_ms,
                embedding,
                quality_score: best.quality_score,
                usable: best.usable,
            });
        }
        let best = &track.best_shot.observation;
        let crop_jpeg = best.payload.to_jpeg()?;
        let usable: Vec<&Embedding> = track
            .top_embeddings
            .iter()
            .filter(|r| r.usable)
            .map(|r| &r.embedding)
            .collect();
        // Only usable faces are searched: a blurred or profile face's embedding is noise.
        let candidates: Vec<Candidate> = if usable.is_empty() {
            Vec::new()
        } else {
            service.match_embeddings(
                &usable,
                service.matching().top_k,
                service.matching().false_match_rate,
            )?
        };
        let sighting = NewSighting {
            camera: self.camera.id.clone(),
            track: track.track_id.0 * 1000 + track.segment as u64,
            started_at_ms: track.first_seen_ms,
            ended_at_ms: track.last_seen_ms,
            best_at_ms: track.best_shot.at_ms,
            observations: track.observations as u32,
            end_reason: serde_json::to_value(track.end_reason)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_else(|| "lost".into()),
            quality: best.quality_score,
            detector_score: best.detector_score,
            bbox: [best.bbox.x1, best.bbox.y1, best.bbox.x2, best.bbox.y2],
            frame_width: self.frame_size.0,
            frame_height: self.frame_size.1,
            crop_jpeg,
            embeddings: track
                .top_embeddings
                .iter()
                .map(|r| (r.embedding.clone(), r.quality_score))
                .collect(),
            trajectory: track
                .trajectory
                .iter()
                .map(|p| TrajectoryPoint {
                    at_ms: p.at_ms,
                    center_x: p.center[0],
                    center_y: p.center[1],
                    width: p.width,
                    height: p.height,
                })
                .collect(),
            candidates: candidates
                .iter()
                .map(|c| SightingCandidate {
                    subject: vigil_base::SubjectId(c.subject_id),
                    subject_name: c.subject_name.clone(),
                    score: c.score,
                    false_match_rate: c.false_match_rate,
                    extrapolated: c.false_match_rate_extrapolated,
                })
                .collect(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let (id, raised) = self.analysis.record_sighting(&sighting, &usable, now)?;
        if !raised.is_empty() {
            // A finished track → its alerts committed, queued for webhooks and on the SSE
            // stream; webhook delivery adds `vigil_webhook_delivery_latency_seconds`.
            metrics::histogram!("vigil_alert_latency_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        let record = self
            .analysis
            .store
            .sighting(id)?
            .ok_or_else(|| ServiceError::Invalid(format!("sighting {id} vanished")))?;
        Ok(SightingView::of(record))
    }
}

/// The index rows of stored sighting embeddings, in capture-time order (so that a rebuild's
/// segments are time slices).
fn index_rows(stored: Vec<vigil_store::SightingEmbedding>) -> Vec<(EntryMeta, Vec<f32>)> {
    let mut rows: Vec<(EntryMeta, Vec<f32>)> = stored
        .into_iter()
        .map(|e| {
            (
                entry_meta(e.sighting, e.rank as usize, &e.camera, e.best_at_ms),
                e.embedding.values().to_vec(),
            )
        })
        .collect();
    rows.sort_by_key(|(meta, _)| (meta.timestamp_ms, meta.id));
    rows
}

/// Opens the sightings' index, rebuilding it from the store when it disagrees with it (first
/// start, a crash between the store's commit and the index's write, a deleted index folder).
fn open_sighting_index(
    service: &FaceService,
    store: &dyn VideoStore,
    dir: Option<&std::path::Path>,
) -> Result<SegmentedIndex, ServiceError> {
    let model = service.model().clone();
    let stored = store.sighting_embeddings_for_model(&model)?;
    let dimension = match stored.first() {
        Some(first) => first.embedding.dimension(),
        None => service.embedding_dimension()?,
    };
    let options = SegmentedOptions::default();
    let Some(dir) = dir else {
        tracing::info!(target: "vigil::video", entries = stored.len(), "loading the sightings index into memory");
        let index = SegmentedIndex::in_memory(model, dimension, options)?;
        index.insert_batch(&index_rows(stored))?;
        return Ok(index);
    };
    let index = SegmentedIndex::open(dir, model.clone(), dimension, options.clone())?;
    let wanted: std::collections::HashSet<u64> = stored
        .iter()
        .map(|e| entry_id(e.sighting, e.rank as usize))
        .collect();
    let held = index.entries();
    if held.len() == wanted.len() && held.iter().all(|e| wanted.contains(&e.id)) {
        return Ok(index);
    }
    drop(index);
    tracing::info!(target: "vigil::video", entries = wanted.len(), "rebuilding the sightings index from the store");
    let rows = index_rows(stored);
    let mut last_logged = 0usize;
    let mut progress = |p: BuildProgress| {
        let percent = (p.done * 100).checked_div(p.total).unwrap_or(100);
        if percent >= last_logged + 10 || p.done == p.total {
            last_logged = percent;
            tracing::info!(target: "vigil::video", phase = p.phase, done = p.done, total = p.total, "index build {percent}%");
        }
    };
    Ok(SegmentedIndex::rebuild(
        dir,
        model,
        dimension,
        options,
        rows,
        &mut progress,
    )?)
}

/// Reads one sighting for the API.
pub fn sighting_view(store: &dyn VideoStore, id: SightingId) -> Result<SightingView, ServiceError> {
    store
        .sighting(id)?
        .map(SightingView::of)
        .ok_or_else(|| ServiceError::NotFound(format!("sighting {id}")))
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
