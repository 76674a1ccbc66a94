//! Retrospective search: where and when a probe's face was seen. The ranking, threshold and
//! report shared by the server's index scan (`VideoAnalysis::search`) and the command line's
//! scan of the stored embeddings (`search_stored`).

use crate::service::FaceService;
use crate::video::SightingView;
use crate::ServiceError;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;
use vigil_base::CameraId;
use vigil_store::{SightingId, VideoStore};

/// Filters applied inside the retrospective scan (not to its top-k afterwards).
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Only these cameras; empty = all.
    pub cameras: Vec<CameraId>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl SearchFilter {
    fn admits(&self, camera: &CameraId, at_ms: i64) -> bool {
        (self.cameras.is_empty() || self.cameras.contains(camera))
            && self.from_ms.is_none_or(|from| at_ms >= from)
            && self.to_ms.is_none_or(|to| at_ms <= to)
    }
}

/// One sighting found by a retrospective search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchHit {
    pub sighting: SightingView,
    /// Best cosine of the probe with any of the sighting's kept embeddings.
    pub score: f32,
    pub false_match_rate: f64,
    pub false_match_rate_extrapolated: bool,
    /// false_match_rate × sightings searched.
    pub expected_false_candidates: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchReport {
    pub probe_sha256: String,
    pub model: String,
    /// Sighting embeddings held by the index when the search ran (a sighting keeps up to
    /// three); the filter is applied inside the scan.
    pub sightings_searched: usize,
    pub false_match_rate_threshold: f64,
    pub score_threshold: f32,
    /// Best first; only sightings at or below the threshold false-match rate.
    pub hits: Vec<SearchHit>,
}

/// Exact retrospective search over the sighting embeddings stored in the database, for the
/// command line (which must not open the server's index files while it runs them). Same
/// ranking, threshold and report as [`VideoAnalysis::search`].
pub fn search_stored(
    service: &FaceService,
    store: &dyn VideoStore,
    probe: &[u8],
    filter: &SearchFilter,
    limit: usize,
    false_match_rate: Option<f64>,
) -> Result<SearchReport, ServiceError> {
    // Refused before any face is analysed when looser than the configured ceiling.
    let rate = service.requested_rate(false_match_rate)?;
    let (probe_sha256, embedding) = service.probe_embedding(probe)?;
    let mut best: HashMap<SightingId, f32> = Default::default();
    let mut searched = 0;
    for stored in store.sighting_embeddings_for_model(service.model())? {
        searched += 1;
        if !filter.admits(&stored.camera, stored.best_at_ms) {
            continue;
        }
        let score = embedding.cosine(&stored.embedding).map_err(|e| {
            ServiceError::Invalid(format!("sighting {} embedding: {e}", stored.sighting))
        })?;
        let entry = best.entry(stored.sighting).or_insert(f32::MIN);
        *entry = entry.max(score);
    }
    ranked_report(
        service,
        store,
        best,
        searched,
        filter,
        limit,
        rate,
        probe_sha256,
    )
}

/// Best score per sighting → the report: at or below `rate`, best first, `limit` at most.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ranked_report(
    service: &FaceService,
    store: &dyn VideoStore,
    best: HashMap<SightingId, f32>,
    searched: usize,
    filter: &SearchFilter,
    limit: usize,
    rate: f64,
    probe_sha256: String,
) -> Result<SearchReport, ServiceError> {
    let threshold = service.score_threshold(rate)?;
    let mut ranked: Vec<(SightingId, f32)> =
        best.into_iter().filter(|(_, s)| *s >= threshold).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(limit.clamp(1, 1000));
    let mut hits = Vec::with_capacity(ranked.len());
    for (id, score) in ranked {
        let rate_here = service.calibration().false_match_rate(score);
        if rate_here.value > rate {
            continue;
        }
        let Some(record) = store.sighting(id)? else {
            continue; // deleted by retention since the scan
        };
        if !filter.admits(&record.camera, record.best_at_ms) {
            continue; // a camera-key collision: never show another camera's sighting
        }
        hits.push(SearchHit {
            sighting: SightingView::of(record),
            score,
            false_match_rate: rate_here.value,
            false_match_rate_extrapolated: rate_here.extrapolated,
            expected_false_candidates: rate_here.value * searched as f64,
        });
    }
    Ok(SearchReport {
        probe_sha256,
        model: service.model().to_string(),
        sightings_searched: searched,
        false_match_rate_threshold: rate,
        score_threshold: threshold,
        hits,
    })
}
