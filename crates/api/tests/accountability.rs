//! Subject access reports and misuse detection through the real API.

mod support;

use reqwest::multipart::Form;
use reqwest::StatusCode;
use serde_json::Value;
use support::{image_form, lfw_photo, start_server, TEST_CASE};
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_auth::Role;
use vigil_base::{CameraId, SubjectId};
use vigil_store::{
    AlertRecord, NewAlert, NewSighting, NewWatchEntry, SightingId, SqliteStore, VideoStore,
    WatchEntry,
};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn note(actor: &str, action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: actor.into(),
        },
        action,
        target: Target {
            kind: "test".into(),
            id: String::new(),
        },
        case_ref: Some(TEST_CASE.into()),
        reason: "seeding the test".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

/// Puts `subject` on `list` under `(legal basis, case)` and raises an alert on `sighting`.
fn watch_and_alert(
    store: &SqliteStore,
    list: i64,
    subject: SubjectId,
    (legal_basis, case): (&str, &str),
    sighting: SightingId,
    now: i64,
) -> (WatchEntry, AlertRecord) {
    let entry = store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list,
                subject,
                subject_name: "Tony Blair".into(),
                legal_basis: legal_basis.into(),
                case_ref: case.into(),
                responsible: "tester".into(),
                expires_at_ms: now + 3_600_000,
                created_by: "tester".into(),
            },
            &note("tester", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let alert = store
        .insert_alert(
            &NewAlert {
                sighting: sighting.0,
                watchlist_entry: entry.id,
                subject,
                best_template: 1,
                score: 0.6,
                false_match_rate: 1e-7,
                extrapolated: false,
                expected_false_candidates: 1e-6,
                gallery_templates: 6,
            },
            now,
        )
        .unwrap();
    (entry, alert)
}

/// A sighting of `face` by camera "gate" that ended a second before `now`.
fn seen_by_gate(track: u64, face: vigil_base::Embedding, now: i64) -> NewSighting {
    NewSighting {
        camera: CameraId::parse("gate").unwrap(),
        track,
        started_at_ms: now - 5_000,
        ended_at_ms: now - 1_000,
        best_at_ms: now - 3_000,
        observations: 12,
        end_reason: "lost".into(),
        quality: 0.9,
        detector_score: 0.9,
        bbox: [0.0, 0.0, 10.0, 10.0],
        frame_width: 100,
        frame_height: 100,
        crop_jpeg: lfw_photo("Tony_Blair", 12),
        embeddings: vec![(face, 0.9)],
        trajectory: Vec::new(),
        candidates: Vec::new(),
    }
}

fn ids(values: &Value, key: &str) -> Vec<i64> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.pointer(key).and_then(Value::as_i64).unwrap())
        .collect()
}

#[tokio::test]
async fn subject_access_report_lists_everything_held_about_a_seeded_subject() {
    let server = start_server().await;
    let store = server.access.store.clone();
    let investigator = server.client_with_roles("ivan", &[Role::Investigator]);
    let auditor = server.client_with_roles("audrey", &[Role::Auditor]);

    // Seed: Blair enrolled from three photos, Powell from three.
    let blair = server
        .enrol(
            "Tony Blair",
            &(1..=3)
                .map(|n| lfw_photo("Tony_Blair", n))
                .collect::<Vec<_>>(),
        )
        .await["subject"]["id"]
        .as_i64()
        .unwrap();
    server
        .enrol(
            "Colin Powell",
            &(1..=3)
                .map(|n| lfw_photo("Colin_Powell", n))
                .collect::<Vec<_>>(),
        )
        .await;

    // Two searches find Blair; one searches for Powell.
    for (person, number) in [("Tony_Blair", 10), ("Tony_Blair", 11), ("Colin_Powell", 10)] {
        let response = investigator
            .post(server.url("/v1/identify"))
            .multipart(image_form(lfw_photo(person, number), "probe.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // A camera saw Blair (a sighting with his face's embedding) and Powell; Blair is on a
    // watchlist and his sighting raised an alert.
    let service = server.service.clone();
    let (blair_face, powell_face) = tokio::task::spawn_blocking(move || {
        (
            service
                .probe_embedding(&lfw_photo("Tony_Blair", 12))
                .unwrap()
                .1,
            service
                .probe_embedding(&lfw_photo("Colin_Powell", 12))
                .unwrap()
                .1,
        )
    })
    .await
    .unwrap();
    let now = now_ms();
    let sighting = |embedding: vigil_base::Embedding| seen_by_gate(1, embedding, now);
    let blair_sighting = store.insert_sighting(&sighting(blair_face)).unwrap();
    let powell_sighting = store.insert_sighting(&sighting(powell_face)).unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "tester",
            &note("tester", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let (entry, alert) = watch_and_alert(
        &store,
        list.id,
        SubjectId(blair),
        ("warrant 12", TEST_CASE),
        blair_sighting,
        now,
    );

    // Only auditors (the data protection role) ask, and they say why.
    let refused = investigator
        .post(server.url("/v1/subject-access-reports"))
        .multipart(Form::new().text("subject_id", blair.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let token = server.token_with_roles("dpo", &[Role::Auditor]);
    let unexplained = server
        .anonymous
        .post(server.url("/v1/subject-access-reports"))
        .bearer_auth(&token)
        .multipart(Form::new().text("subject_id", blair.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(unexplained.status(), StatusCode::BAD_REQUEST);
    let body: Value = unexplained.json().await.unwrap();
    assert_eq!(body["error"]["code"], "reason_required");

    let response = auditor
        .post(server.url("/v1/subject-access-reports"))
        .multipart(Form::new().text("subject_id", blair.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    let subjects = report["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["templates"].as_array().unwrap().len(), 3);
    assert_eq!(ids(&report["watchlist_entries"], "/id"), vec![entry.id]);
    assert_eq!(ids(&report["alerts"], "/id"), vec![alert.id]);
    let sightings: Vec<i64> = report["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sighting"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sightings,
        vec![blair_sighting.0],
        "not Powell's {powell_sighting}"
    );
    let found_by = &report["sightings"][0]["found_by"];
    assert!(
        found_by.as_array().unwrap().contains(&"face_match".into()),
        "{found_by}"
    );
    assert!(
        found_by.as_array().unwrap().contains(&"alert".into()),
        "{found_by}"
    );
    // The two searches for Blair, by their results and by their probes; not the one for Powell.
    let searches = report["searches"].as_array().unwrap();
    assert_eq!(searches.len(), 2, "{searches:#?}");
    for search in searches {
        assert_eq!(search["user_name"], "ivan");
        assert_eq!(search["found_by"], serde_json::json!(["result", "probe"]));
    }
    assert_eq!(report["probes_checked"], 3);

    // From a photo of the person (their own request), as a readable page.
    let page = auditor
        .post(server.url("/v1/subject-access-reports?format=html"))
        .multipart(image_form(lfw_photo("Tony_Blair", 13), "me.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Subject access report"));
    assert!(html.contains("Tony Blair"));
    assert!(html.contains("warrant 12"));
    assert!(!html.contains("Colin Powell"), "only the person's own data");

    // Both requests are in the audit log, the photo one with its photo.
    let entries: Value = auditor
        .get(server.url("/v1/audit?action=access_report"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = entries.as_array().unwrap();
    let answered: Vec<&Value> = entries
        .iter()
        .filter(|e| e["outcome"]["kind"] == "success")
        .collect();
    assert_eq!(answered.len(), 2, "{entries:#?}");
    assert!(answered[0]["probe_sha256"].is_null());
    assert!(answered[1]["probe_sha256"]
        .as_str()
        .is_some_and(|s| s.len() == 64));
}

#[tokio::test]
async fn a_search_outside_ones_cases_is_logged_and_raises_a_misuse_alert_for_auditors() {
    let server = start_server().await;
    let store = server.access.store.clone();
    let now = now_ms();
    store
        .open_case(
            &vigil_store::NewCase {
                reference: "CASE-OTHER".into(),
                purpose: "someone else's".into(),
                legal_basis: "warrant 3".into(),
                owner: "owen".into(),
                members: Vec::new(),
                expires_at_ms: now + 86_400_000,
                evidence_retention_days: None,
            },
            &note("owen", AuditAction::CaseOpen),
            now,
        )
        .unwrap();
    let token = server.token_with_roles("mallory", &[Role::Investigator]);
    let refused = server
        .anonymous
        .post(server.url("/v1/search"))
        .bearer_auth(&token)
        .header("x-vigil-case", "CASE-OTHER")
        .header("x-vigil-reason", "curiosity")
        .multipart(image_form(lfw_photo("Tony_Blair", 1), "probe.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let auditor = server.client_with_roles("audrey", &[Role::Auditor]);
    let investigator = server.client_with_roles("ivan", &[Role::Investigator]);
    // Investigators do not see misuse alerts.
    let hidden = investigator
        .get(server.url("/v1/misuse/alerts"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::FORBIDDEN);

    let raised: Value = auditor
        .post(server.url("/v1/misuse/scan"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alert = raised
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user_name"] == "mallory" && a["rule"] == "outside_cases")
        .unwrap_or_else(|| panic!("no outside_cases alert for mallory: {raised:#}"))
        .clone();
    assert_eq!(alert["observed"], 1);
    let activity: Value = auditor
        .get(server.url("/v1/misuse/activity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mallory = activity
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user_name"] == "mallory")
        .unwrap();
    assert_eq!(mallory["outside_case_attempts"], 1);

    // The refused attempt itself is in the log, with the case it named and its reason.
    let entries: Value = auditor
        .get(server.url("/v1/audit?action=search"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attempt = &entries.as_array().unwrap()[0];
    assert_eq!(attempt["actor"]["user_name"], "mallory");
    assert_eq!(attempt["case_ref"], "CASE-OTHER");
    assert_eq!(attempt["reason"], "curiosity");
    assert_eq!(attempt["outcome"]["detail"], "not_in_case");

    // An auditor acknowledges it with a note; it leaves the open list.
    let id = alert["id"].as_i64().unwrap();
    let no_note = auditor
        .post(server.url(&format!("/v1/misuse/alerts/{id}/acknowledge")))
        .json(&serde_json::json!({ "note": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_note.status(), StatusCode::BAD_REQUEST);
    let acknowledged: Value = auditor
        .post(server.url(&format!("/v1/misuse/alerts/{id}/acknowledge")))
        .json(&serde_json::json!({ "note": "asked mallory; disciplinary referral" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acknowledged["acknowledged_by"], "audrey");
    let open: Value = auditor
        .get(server.url("/v1/misuse/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(open.as_array().unwrap().iter().all(|a| a["id"] != id));
}

#[tokio::test]
async fn an_investigator_sees_alerts_and_sightings_only_through_their_cases() {
    let server = start_server().await;
    let store = server.access.store.clone();
    let now = now_ms();
    for (reference, owner) in [("CASE-A", "ivan"), ("CASE-B", "bella")] {
        store
            .open_case(
                &vigil_store::NewCase {
                    reference: reference.into(),
                    purpose: "scoping test".into(),
                    legal_basis: "warrant".into(),
                    owner: owner.into(),
                    members: Vec::new(),
                    expires_at_ms: now + 86_400_000,
                    evidence_retention_days: None,
                },
                &note(owner, AuditAction::CaseOpen),
                now,
            )
            .unwrap();
    }
    let subject = server
        .enrol("Tony Blair", &[lfw_photo("Tony_Blair", 1)])
        .await["subject"]["id"]
        .as_i64()
        .unwrap();
    let list = store
        .create_watchlist(
            "scoped",
            None,
            1e-5,
            "tester",
            &note("tester", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let service = server.service.clone();
    let face = tokio::task::spawn_blocking(move || {
        service
            .probe_embedding(&lfw_photo("Tony_Blair", 2))
            .unwrap()
            .1
    })
    .await
    .unwrap();
    let sighting = |track| seen_by_gate(track, face.clone(), now);
    let mut alerts = Vec::new();
    let mut sightings = Vec::new();
    for (track, case) in [(1, "CASE-A"), (2, "CASE-B")] {
        let seen = store.insert_sighting(&sighting(track)).unwrap();
        let (_, alert) = watch_and_alert(
            &store,
            list.id,
            SubjectId(subject),
            ("warrant", case),
            seen,
            now,
        );
        alerts.push(alert.id);
        sightings.push(seen);
    }
    let ivan = server.token_with_roles("ivan", &[Role::Investigator]);
    let get = |path: String, case: Option<&'static str>| {
        let mut request = server.anonymous.get(server.url(&path)).bearer_auth(&ivan);
        if let Some(case) = case {
            request = request.header("x-vigil-case", case);
        }
        request.send()
    };
    // Through CASE-A: its alert only; CASE-B's alert does not exist for him.
    let listed: Value = get("/v1/alerts".into(), Some("CASE-A"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.is_array(), "{listed}");
    assert_eq!(ids(&listed, "/alert/id"), vec![alerts[0]]);
    let other = get(format!("/v1/alerts/{}", alerts[1]), Some("CASE-A"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let own = get(format!("/v1/alerts/{}", alerts[0]), Some("CASE-A"))
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    // No case, someone else's case, or the live stream: refused.
    let no_case = get("/v1/alerts".into(), None).await.unwrap();
    assert_eq!(no_case.status(), StatusCode::BAD_REQUEST);
    let not_his = get("/v1/alerts".into(), Some("CASE-B")).await.unwrap();
    assert_eq!(not_his.status(), StatusCode::FORBIDDEN);
    let stream = get("/v1/alerts/stream".into(), Some("CASE-A"))
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::FORBIDDEN);
    // An operator monitors every camera: both alerts, no case needed.
    let operator = server.token_with_roles("olga", &[Role::Operator]);
    let all: Value = server
        .anonymous
        .get(server.url("/v1/alerts"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&all, "/alert/id").len(), 2);

    // Sightings: a case holds those behind its alerts and those its searches returned.
    assert!(store.case_holds_sighting("CASE-A", sightings[0]).unwrap());
    assert!(!store.case_holds_sighting("CASE-A", sightings[1]).unwrap());
    store
        .link_sightings_to_case("CASE-A", &[sightings[1].0], now)
        .unwrap();
    assert!(store.case_holds_sighting("CASE-A", sightings[1]).unwrap());
    let held = store
        .list_sightings(&vigil_store::SightingQuery {
            case: Some("CASE-B".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        held.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![sightings[1]]
    );
}
