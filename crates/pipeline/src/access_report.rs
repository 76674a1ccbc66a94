//! Subject access reports: given a photo or an enrolled subject, everything vigil holds that
//! concerns the person — templates, watchlist entries, sightings, alerts, and the searches that
//! returned them or whose probe shows them — as JSON and as a readable HTML page.
//! The request itself is logged by the caller (API guard or CLI). Invariants in
//! docs/design/014-subject-access-report.md.

use crate::reports::SubjectDetail;
use crate::video::SightingView;
use crate::{FaceService, ServiceError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use vigil_audit::{AuditAction, AuditFilter};
use vigil_base::{Embedding, SubjectId, TemplateId};
use vigil_store::{AlertRecord, SightingId, SightingQuery, SqliteStore, VideoStore, WatchEntry};

/// Whom the report is about.
#[derive(Debug, Clone)]
pub enum ReportBasis {
    Subject(SubjectId),
    /// A photo of the person (their request): the dominant usable face is used.
    Photo(Vec<u8>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BasisView {
    /// `subject` or `photo`.
    pub kind: String,
    pub subject_id: Option<i64>,
    pub photo_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportedSighting {
    pub sighting: SightingView,
    /// Why it is listed: `gallery_match` (its top candidate is the person's subject),
    /// `face_match` (its face matches the person at or below the report's false-match rate),
    /// `alert` (it raised an alert about the person).
    pub found_by: Vec<String>,
    /// Best score against the person's faces, when compared.
    pub score: Option<f32>,
    pub false_match_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportedSearch {
    pub sequence: u64,
    pub at_ms: i64,
    pub user_name: String,
    pub action: String,
    pub case_ref: Option<String>,
    pub reason: String,
    pub outcome: String,
    /// `result` (the search returned the person's subject or sightings) and/or `probe` (the
    /// probe photo shows the person).
    pub found_by: Vec<String>,
    pub probe_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubjectAccessReport {
    pub generated_at_ms: i64,
    pub requested_by: String,
    pub reason: String,
    pub basis: BasisView,
    pub model: String,
    /// Faces are linked to the person at or below this false-match rate.
    pub false_match_rate: f64,
    pub subjects: Vec<SubjectDetail>,
    pub watchlist_entries: Vec<WatchEntry>,
    pub sightings: Vec<ReportedSighting>,
    pub alerts: Vec<AlertRecord>,
    pub searches: Vec<ReportedSearch>,
    /// Distinct stored search probes compared with the person.
    pub probes_checked: usize,
    /// Probes that could not be analysed (corrupt, or no face), left out of the comparison.
    pub probes_unreadable: usize,
}

/// Who asks and why, for the report's header.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub basis: ReportBasis,
    pub requested_by: String,
    pub reason: String,
    /// Default: the configured rate.
    pub false_match_rate: Option<f64>,
    /// Compare every stored search probe with the person (slow on a long log: one analysis
    /// per distinct probe).
    pub check_probes: bool,
}

const SEARCH_ACTIONS: [AuditAction; 3] = [
    AuditAction::Identify,
    AuditAction::Verify,
    AuditAction::Search,
];

/// Builds the report. `progress(done, total)` is called as stored probes are compared.
pub fn build_report(
    service: &FaceService,
    store: &SqliteStore,
    request: &ReportRequest,
    now_ms: i64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SubjectAccessReport, ServiceError> {
    let rate = request
        .false_match_rate
        .unwrap_or(service.matching().false_match_rate);
    let threshold = service.score_threshold(rate)?;
    let model = service.model().clone();

    // The person: their enrolled subjects and the faces to compare others with.
    let mut subjects: BTreeSet<SubjectId> = BTreeSet::new();
    let mut faces: Vec<Embedding> = Vec::new();
    let basis = match &request.basis {
        ReportBasis::Subject(id) => {
            if service.store().subject(*id)?.is_none() {
                return Err(ServiceError::NotFound(format!("subject {id}")));
            }
            subjects.insert(*id);
            BasisView {
                kind: "subject".into(),
                subject_id: Some(id.0),
                photo_sha256: None,
            }
        }
        ReportBasis::Photo(bytes) => {
            let (sha256, embedding) = service.probe_embedding(bytes)?;
            for candidate in service.match_embeddings(&[&embedding], 20, rate)? {
                subjects.insert(SubjectId(candidate.subject_id));
            }
            faces.push(embedding);
            BasisView {
                kind: "photo".into(),
                subject_id: None,
                photo_sha256: Some(sha256),
            }
        }
    };
    let mut details = Vec::new();
    let mut names = Vec::new();
    for subject in &subjects {
        let detail = service.subject_detail(*subject)?;
        for template in service.store().templates_of(*subject)? {
            if template.model != model {
                continue;
            }
            if let Some(record) = service.store().template(TemplateId(template.id.0))? {
                faces.push(record.embedding);
            }
        }
        names.push(detail.subject.name.clone());
        details.push(detail);
    }

    // Sightings: by their top candidate, and by comparing every stored sighting face.
    let mut sightings: BTreeMap<SightingId, (BTreeSet<&'static str>, Option<f32>)> =
        BTreeMap::new();
    for subject in &subjects {
        let mut before = None;
        loop {
            let page = store.list_sightings(&SightingQuery {
                subject: Some(*subject),
                before_id: before,
                limit: 1000,
                ..SightingQuery::default()
            })?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            for record in &page {
                sightings
                    .entry(record.id)
                    .or_default()
                    .0
                    .insert("gallery_match");
            }
        }
    }
    if !faces.is_empty() {
        for stored in store.sighting_embeddings_for_model(&model)? {
            let score = faces
                .iter()
                .filter_map(|face| face.cosine(&stored.embedding).ok())
                .fold(f32::MIN, f32::max);
            if score >= threshold {
                let entry = sightings.entry(stored.sighting).or_default();
                entry.0.insert("face_match");
                entry.1 = Some(entry.1.map_or(score, |s: f32| s.max(score)));
            }
        }
    }

    let subject_list: Vec<SubjectId> = subjects.iter().copied().collect();
    let watchlist_entries = store.watch_entries_concerning(&subject_list, &names)?;
    let entry_ids: Vec<i64> = watchlist_entries.iter().map(|e| e.id).collect();
    let sighting_ids: Vec<i64> = sightings.keys().map(|s| s.0).collect();
    let alerts = store.alerts_concerning(&subject_list, &sighting_ids, &entry_ids)?;
    for alert in &alerts {
        sightings
            .entry(SightingId(alert.sighting))
            .or_default()
            .0
            .insert("alert");
    }
    let mut reported_sightings = Vec::with_capacity(sightings.len());
    for (id, (found_by, score)) in &sightings {
        let Some(record) = store.sighting(*id)? else {
            continue;
        };
        reported_sightings.push(ReportedSighting {
            sighting: SightingView::of(record),
            found_by: found_by.iter().map(|s| s.to_string()).collect(),
            score: *score,
            false_match_rate: score.map(|s| service.calibration().false_match_rate(s).value),
        });
    }

    // Searches: those that returned the person, and those whose probe shows them. The log is
    // read page by page on a read-only connection (it may hold millions of searches; a report
    // must neither load them all nor hold up identify and enrol on the store's connection),
    // and only the searches that concern the person are kept.
    let subject_numbers: BTreeSet<i64> = subjects.iter().map(|s| s.0).collect();
    let sighting_numbers: BTreeSet<i64> = sightings.keys().map(|s| s.0).collect();
    let compare_probes = request.check_probes && !faces.is_empty();
    let total = if compare_probes {
        store
            .with_read_connection(|connection| {
                vigil_audit::distinct_probes_of(connection, &SEARCH_ACTIONS)
            })
            .map_err(|e| ServiceError::Invalid(format!("audit log: {e}")))?
    } else {
        0
    };
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let mut probes = ProbeVerdicts::default();
    let mut searches = Vec::new();
    for action in SEARCH_ACTIONS {
        let mut after = None;
        loop {
            let page = store
                .with_read_connection(|connection| {
                    vigil_audit::entries(
                        connection,
                        &AuditFilter {
                            action: Some(action),
                            after_sequence: after,
                            limit: Some(vigil_audit::MAX_LIMIT),
                            ..AuditFilter::default()
                        },
                    )
                })
                .map_err(|e| ServiceError::Invalid(format!("audit log: {e}")))?;
            let Some(last) = page.last() else { break };
            after = Some(last.sequence);
            for record in page {
                let mut found_by = Vec::new();
                let findings = record.request.get("findings");
                let listed = |key: &str, wanted: &BTreeSet<i64>| {
                    findings
                        .and_then(|f| f.get(key))
                        .and_then(|ids| ids.as_array())
                        .is_some_and(|ids| {
                            ids.iter()
                                .filter_map(|v| v.as_i64())
                                .any(|id| wanted.contains(&id))
                        })
                };
                if listed("subjects", &subject_numbers) || listed("sightings", &sighting_numbers) {
                    found_by.push("result".to_string());
                }
                if let Some(sha256) = record.probe_sha256.as_deref().filter(|_| compare_probes) {
                    let compared = probes.compared;
                    let shows_person = probes.shows_person(sha256, |sha256| {
                        progress(compared.min(total), total);
                        let image = store
                            .with_read_connection(|connection| {
                                vigil_audit::probe_image(connection, sha256, store.sealer())
                            })
                            .map_err(|e| ServiceError::Invalid(format!("audit log: {e}")))?;
                        Ok(
                            match image.map(|bytes| service.usable_face_embeddings(&bytes)) {
                                Some(Ok((_, probe_faces))) => {
                                    Some(probe_faces.iter().any(|probe| {
                                        faces.iter().any(|face| {
                                            face.cosine(probe).is_ok_and(|score| score >= threshold)
                                        })
                                    }))
                                }
                                _ => None,
                            },
                        )
                    })?;
                    if shows_person {
                        found_by.push("probe".to_string());
                    }
                }
                if found_by.is_empty() {
                    continue;
                }
                searches.push(ReportedSearch {
                    sequence: record.sequence,
                    at_ms: record.at_ms,
                    user_name: record.actor.user_name,
                    action: record.action.as_str().to_string(),
                    case_ref: record.case_ref,
                    reason: record.reason,
                    outcome: format!("{} {}", record.outcome.kind.as_str(), record.outcome.detail)
                        .trim()
                        .to_string(),
                    found_by,
                    probe_sha256: record.probe_sha256,
                });
            }
        }
    }
    searches.sort_by_key(|search| search.sequence);
    progress(total, total);
    let probes_unreadable = probes.unreadable;

    Ok(SubjectAccessReport {
        generated_at_ms: now_ms,
        requested_by: request.requested_by.clone(),
        reason: request.reason.clone(),
        basis,
        model: model.to_string(),
        false_match_rate: rate,
        subjects: details,
        watchlist_entries,
        sightings: reported_sightings,
        alerts,
        searches,
        probes_checked: total,
        probes_unreadable,
    })
}

/// Most verdicts on probes that do not show the person kept at once; past it they are
/// forgotten (a probe seen again is compared again), so a report's memory does not grow with
/// the number of distinct probes in the log. Probes that show the person are all kept: they
/// are part of the report.
const REMEMBERED_NON_MATCHING_PROBES: usize = 16_384;

/// What is known of the probes compared so far.
#[derive(Default)]
struct ProbeVerdicts {
    showing_person: HashSet<String>,
    not_showing_person: HashSet<String>,
    /// Comparisons made (a forgotten probe seen again counts twice).
    compared: usize,
    /// Distinct probes that could not be analysed (missing, corrupt, or no usable face),
    /// counted once each while remembered.
    unreadable: usize,
}

impl ProbeVerdicts {
    /// Whether the probe `sha256` shows the person; `compare` returns `Some(verdict)`, or
    /// `None` when the probe cannot be analysed.
    fn shows_person(
        &mut self,
        sha256: &str,
        compare: impl FnOnce(&str) -> Result<Option<bool>, ServiceError>,
    ) -> Result<bool, ServiceError> {
        if self.showing_person.contains(sha256) {
            return Ok(true);
        }
        if self.not_showing_person.contains(sha256) {
            return Ok(false);
        }
        let verdict = compare(sha256)?;
        self.compared += 1;
        if verdict.is_none() {
            self.unreadable += 1;
        }
        let shows_person = verdict.unwrap_or(false);
        if shows_person {
            self.showing_person.insert(sha256.to_owned());
        } else {
            if self.not_showing_person.len() >= REMEMBERED_NON_MATCHING_PROBES {
                self.not_showing_person.clear();
            }
            self.not_showing_person.insert(sha256.to_owned());
        }
        Ok(shows_person)
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Unix ms as `YYYY-MM-DD hh:mm:ss UTC`.
fn time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn table(html: &mut String, title: &str, headers: &[&str], rows: Vec<Vec<String>>) {
    html.push_str(&format!("<h2>{} ({})</h2>\n", escape(title), rows.len()));
    if rows.is_empty() {
        html.push_str("<p>None held.</p>\n");
        return;
    }
    html.push_str("<table><thead><tr>");
    for header in headers {
        html.push_str(&format!("<th>{}</th>", escape(header)));
    }
    html.push_str("</tr></thead><tbody>\n");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!("<td>{}</td>", escape(&cell)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table>\n");
}

impl SubjectAccessReport {
    /// A self-contained, readable page (no scripts, no external resources).
    pub fn to_html(&self) -> String {
        let mut html = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Subject access report</title><style>\
             body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}\
             table{border-collapse:collapse;width:100%;margin-bottom:1.5em}\
             th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;font-size:.9em}\
             th{background:#eee}</style></head><body>\n<h1>Subject access report</h1>\n",
        );
        let basis = match (&self.basis.subject_id, &self.basis.photo_sha256) {
            (Some(id), _) => format!("enrolled subject {id}"),
            (_, Some(sha)) => format!("a photo (sha256 {sha})"),
            _ => "unknown".into(),
        };
        html.push_str(&format!(
            "<p>Generated {} for {} ({}), about {}. Faces are linked to the person when their \
             false-match rate is at or below {:e} with recognizer {}. {} stored search probes \
             were compared with the person ({} could not be analysed).</p>\n",
            escape(&time(self.generated_at_ms)),
            escape(&self.requested_by),
            escape(&self.reason),
            escape(&basis),
            self.false_match_rate,
            escape(&self.model),
            self.probes_checked,
            self.probes_unreadable,
        ));
        table(
            &mut html,
            "Enrolled identities and face templates",
            &[
                "subject", "name", "template", "model", "quality", "source", "enrolled",
            ],
            self.subjects
                .iter()
                .flat_map(|detail| {
                    let subject = &detail.subject;
                    detail.templates.iter().map(move |t| {
                        vec![
                            subject.id.to_string(),
                            subject.name.clone(),
                            t.id.to_string(),
                            t.model.clone(),
                            format!("{:.2}", t.quality),
                            t.source_name
                                .clone()
                                .unwrap_or_else(|| t.source_sha256.clone()),
                            time(t.created_at_ms),
                        ]
                    })
                })
                .collect(),
        );
        table(
            &mut html,
            "Watchlist entries",
            &[
                "entry",
                "watchlist",
                "name",
                "legal basis",
                "case",
                "responsible",
                "created",
                "expires",
                "removed",
            ],
            self.watchlist_entries
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        e.watchlist.to_string(),
                        e.subject_name.clone(),
                        e.legal_basis.clone(),
                        e.case_ref.clone(),
                        e.responsible.clone(),
                        format!("{} by {}", time(e.created_at_ms), e.created_by),
                        time(e.expires_at_ms),
                        e.removed_at_ms.map(time).unwrap_or_default(),
                    ]
                })
                .collect(),
        );
        table(
            &mut html,
            "Sightings by cameras",
            &[
                "sighting",
                "camera",
                "from",
                "to",
                "why listed",
                "false-match rate",
            ],
            self.sightings
                .iter()
                .map(|s| {
                    vec![
                        s.sighting.id.to_string(),
                        s.sighting.camera.to_string(),
                        time(s.sighting.started_at_ms),
                        time(s.sighting.ended_at_ms),
                        s.found_by.join(", "),
                        s.false_match_rate
                            .map(|r| format!("{r:.1e}"))
                            .unwrap_or_default(),
                    ]
                })
                .collect(),
        );
        table(
            &mut html,
            "Alerts",
            &[
                "alert",
                "sighting",
                "watchlist entry",
                "state",
                "false-match rate",
                "raised",
            ],
            self.alerts
                .iter()
                .map(|a| {
                    vec![
                        a.id.to_string(),
                        a.sighting.to_string(),
                        a.watchlist_entry.to_string(),
                        format!("{:?}", a.state).to_lowercase(),
                        format!("{:.1e}", a.false_match_rate),
                        time(a.created_at_ms),
                    ]
                })
                .collect(),
        );
        table(
            &mut html,
            "Searches that concerned the person",
            &[
                "audit entry",
                "when",
                "by",
                "operation",
                "case",
                "reason",
                "outcome",
                "why listed",
            ],
            self.searches
                .iter()
                .map(|s| {
                    vec![
                        s.sequence.to_string(),
                        time(s.at_ms),
                        s.user_name.clone(),
                        s.action.clone(),
                        s.case_ref.clone().unwrap_or_default(),
                        s.reason.clone(),
                        s.outcome.clone(),
                        s.found_by.join(", "),
                    ]
                })
                .collect(),
        );
        html.push_str("</body></html>\n");
        html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_civil_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_800_230_400_000), "2027-01-18 00:00:00 UTC");
        assert_eq!(time(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03 UTC");
    }

    #[test]
    fn html_escapes_what_it_shows() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
