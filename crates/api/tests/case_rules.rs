//! Destructive routes check the case, a ceiling on the false-match rate, and reviewers see the
//! enrolled photo of the alerts they confirm — through the real API with the real models.

mod support;

use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use support::{assert_error, image_form, lfw_photo, start_server, TestServer, TEST_CASE};
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_auth::Role;
use vigil_base::{CameraId, SubjectId};
use vigil_store::{NewAlert, NewSighting, NewWatchEntry, VideoStore};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The audit entries of `action`, as an auditor reads them.
async fn audit_of(server: &TestServer, auditor: &Client, action: &str) -> Vec<Value> {
    let entries: Value = auditor
        .get(server.url(&format!("/v1/audit?action={action}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    entries.as_array().unwrap().clone()
}

fn refused_by(entries: &[Value], user: &str) -> usize {
    entries
        .iter()
        .filter(|e| e["actor"]["user_name"] == user && e["outcome"]["kind"] == "refused")
        .count()
}

async fn open_case(
    client: &Client,
    server: &TestServer,
    reference: &str,
    members: &[&str],
) -> reqwest::Response {
    client
        .post(server.url("/v1/cases"))
        .json(&serde_json::json!({
            "reference": reference,
            "purpose": "case rules test",
            "legal_basis": "warrant 7",
            "members": members,
            "expires_at_ms": now_ms() + 86_400_000,
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn case_members_are_users_and_only_the_owner_closes_a_case() {
    let server = start_server().await;
    let olga = server.client_with_roles("olga", &[Role::Investigator]);
    let mia = server.client_with_roles("mia", &[Role::Investigator]);
    let otto = server.client_with_roles("otto", &[Role::Investigator]);
    let auditor = server.client_with_roles("audrey", &[Role::Auditor]);

    // A member must be someone who can log in: free text is refused, and nothing is opened.
    assert_error(
        open_case(&olga, &server, "CASE-RULES", &["mia", "no.such.user"]).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    let cases: Vec<Value> = server.get("/v1/cases").await.json().await.unwrap();
    assert!(cases.iter().all(|c| c["reference"] != "CASE-RULES"));

    let opened = open_case(&olga, &server, "CASE-RULES", &["MIA"]).await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let opened: Value = opened.json().await.unwrap();
    assert_eq!(opened["owner"], "olga");
    assert_eq!(opened["members"], serde_json::json!(["mia"]));
    let ids = opened["member_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    // Stored by id: the listed member is the user record, not the text typed.
    let mia_id = server.access.store.with_connection(|connection| {
        server
            .access
            .directory
            .find_user(connection, "mia")
            .unwrap()
            .unwrap()
            .id
            .0
    });
    assert_eq!(ids[0], mia_id);

    // A member acts under the case but does not end it; an outsider neither.
    for outsider in [&mia, &otto] {
        let refused = outsider
            .post(server.url("/v1/cases/CASE-RULES/close"))
            .send()
            .await
            .unwrap();
        assert_error(refused, StatusCode::FORBIDDEN, "not_in_case").await;
    }
    let still: Vec<Value> = server.get("/v1/cases").await.json().await.unwrap();
    let still = still
        .iter()
        .find(|c| c["reference"] == "CASE-RULES")
        .unwrap();
    assert!(still["closed_at_ms"].is_null(), "{still}");

    // The refusals are in the log, by who tried.
    let closes = audit_of(&server, &auditor, "case_close").await;
    assert_eq!(refused_by(&closes, "mia"), 1, "{closes:#?}");
    assert_eq!(refused_by(&closes, "otto"), 1, "{closes:#?}");

    let closed = olga
        .post(server.url("/v1/cases/CASE-RULES/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::OK);
    let closed: Value = closed.json().await.unwrap();
    assert!(closed["closed_at_ms"].is_i64());
}

#[tokio::test]
async fn watchlist_entries_are_removed_only_within_their_case_and_their_subjects_are_not_deleted_alone(
) {
    let server = start_server().await;
    let olga = server.client_with_roles("olga", &[Role::Investigator]);
    let mia = server.client_with_roles("mia", &[Role::Investigator]);
    let otto = server.client_with_roles("otto", &[Role::Investigator]);
    let auditor = server.client_with_roles("audrey", &[Role::Auditor]);
    assert_eq!(
        open_case(&olga, &server, "CASE-WATCH", &["mia"])
            .await
            .status(),
        StatusCode::CREATED
    );
    let list: Value = olga
        .post(server.url("/v1/watchlists"))
        .json(&serde_json::json!({"name": "wanted", "false_match_rate": 1e-5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form = Form::new()
        .text("name", "Colin Powell")
        .text("legal_basis", "warrant 9")
        .text("responsible", "olga")
        .text("expires_at_ms", (now_ms() + 3_600_000).to_string())
        .part(
            "image",
            Part::bytes(lfw_photo("Colin_Powell", 1))
                .file_name("powell.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let entry = olga
        .post(server.url(&format!("/v1/watchlists/{}/entries", list["id"])))
        .header("x-vigil-case", "CASE-WATCH")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(entry.status(), StatusCode::CREATED);
    let entry: Value = entry.json().await.unwrap();
    let subject = entry["subject"].as_i64().unwrap();

    // Deleting the watched subject on its own would leave an entry with no face: refused,
    // naming the case to go through.
    let conflict = assert_error(
        server.delete(&format!("/v1/subjects/{subject}")).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(
        conflict.error.message.contains("CASE-WATCH"),
        "{}",
        conflict.error.message
    );
    assert_eq!(
        server
            .get(&format!("/v1/subjects/{subject}"))
            .await
            .status(),
        StatusCode::OK
    );

    // Someone outside the entry's case cannot remove it; the refusal is logged.
    let refused = otto
        .delete(server.url(&format!("/v1/watchlist-entries/{}", entry["id"])))
        .send()
        .await
        .unwrap();
    assert_error(refused, StatusCode::FORBIDDEN, "not_in_case").await;
    let removals = audit_of(&server, &auditor, "watchlist_remove").await;
    assert_eq!(refused_by(&removals, "otto"), 1, "{removals:#?}");
    assert_eq!(
        server
            .get(&format!("/v1/subjects/{subject}"))
            .await
            .status(),
        StatusCode::OK
    );

    // A member of the case may; the entry's subject goes with it.
    let removed = mia
        .delete(server.url(&format!("/v1/watchlist-entries/{}", entry["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server
            .get(&format!("/v1/subjects/{subject}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let removals = audit_of(&server, &auditor, "watchlist_remove").await;
    assert!(removals.iter().any(|e| e["actor"]["user_name"] == "mia"
        && e["outcome"]["kind"] == "success"
        && e["case_ref"] == "CASE-WATCH"));
}

#[tokio::test]
async fn no_caller_widens_the_false_match_rate_past_the_ceiling() {
    let server = start_server().await;
    server
        .enrol("Colin Powell", &[lfw_photo("Colin_Powell", 1)])
        .await;
    let ceiling = server.service.matching().max_false_match_rate;
    assert_eq!(ceiling, 1e-3);

    let too_loose = assert_error(
        server
            .post_form(
                "/v1/identify?false_match_rate=0.01",
                image_form(lfw_photo("Colin_Powell", 2), "probe.jpg"),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    assert!(
        too_loose.error.message.contains("max_false_match_rate"),
        "{}",
        too_loose.error.message
    );
    let at_ceiling = server
        .post_form(
            "/v1/identify?false_match_rate=0.001",
            image_form(lfw_photo("Colin_Powell", 2), "probe.jpg"),
        )
        .await;
    assert_eq!(at_ceiling.status(), StatusCode::OK);

    let list = server
        .client
        .post(server.url("/v1/watchlists"))
        .json(&serde_json::json!({"name": "loose", "false_match_rate": 0.05}))
        .send()
        .await
        .unwrap();
    assert_error(list, StatusCode::BAD_REQUEST, "invalid").await;

    let auditor = server.client_with_roles("audrey", &[Role::Auditor]);
    let report = auditor
        .post(server.url("/v1/subject-access-reports?false_match_rate=0.2"))
        .multipart(Form::new().text("subject_id", "1"))
        .send()
        .await
        .unwrap();
    assert_error(report, StatusCode::BAD_REQUEST, "invalid").await;

    // The retrospective search (the command line's scan; the server's shares the check) refuses
    // a loose rate before analysing, and a sighting it finds is within the ceiling.
    let store = server.access.store.clone();
    let service = server.service.clone();
    let probe = lfw_photo("Tony_Blair", 12);
    let (blair, powell_photo) = tokio::task::spawn_blocking({
        let service = service.clone();
        let probe = probe.clone();
        move || {
            (
                service.probe_embedding(&probe).unwrap().1,
                service
                    .probe_embedding(&lfw_photo("Colin_Powell", 3))
                    .unwrap()
                    .1,
            )
        }
    })
    .await
    .unwrap();
    let now = now_ms();
    store
        .insert_sighting(&sighting(1, powell_photo, now))
        .unwrap();
    let loose = vigil_pipeline::video::search_stored(
        &service,
        store.as_ref(),
        &probe,
        &vigil_pipeline::video::SearchFilter::default(),
        10,
        Some(0.5),
    );
    assert!(
        matches!(loose, Err(vigil_pipeline::ServiceError::Invalid(ref m)) if m.contains("ceiling")),
        "{loose:?}"
    );

    // A list created before the ceiling was lowered (written straight to the store) cannot
    // make the matcher report a candidate above it: Powell is no match for Blair's face.
    let powell_vs_blair = server.service.match_embeddings(&[&blair], 5, 0.9).unwrap();
    assert!(
        powell_vs_blair
            .iter()
            .all(|c| c.false_match_rate <= ceiling),
        "{powell_vs_blair:?}"
    );
}

fn sighting(track: u64, face: vigil_base::Embedding, now: i64) -> NewSighting {
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
        crop_jpeg: lfw_photo("Colin_Powell", 3),
        embeddings: vec![(face, 0.9)],
        trajectory: Vec::new(),
        candidates: Vec::new(),
    }
}

fn seeding(action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: "tester".into(),
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

#[tokio::test]
async fn a_reviewer_sees_the_enrolled_photo_of_an_alert_and_no_other_template() {
    let server = start_server().await;
    let reviewer = server.client_with_roles("rita", &[Role::Reviewer]);
    let auditor = server.client_with_roles("audrey", &[Role::Auditor]);
    let watched = server
        .enrol("Colin Powell", &[lfw_photo("Colin_Powell", 1)])
        .await;
    let subject = watched["subject"]["id"].as_i64().unwrap();
    let template = watched["enrolled"][0]["template_id"].as_i64().unwrap();
    let other = server
        .enrol("Tony Blair", &[lfw_photo("Tony_Blair", 1)])
        .await["enrolled"][0]["template_id"]
        .as_i64()
        .unwrap();

    let store = server.access.store.clone();
    let service = server.service.clone();
    let face = tokio::task::spawn_blocking(move || {
        service
            .probe_embedding(&lfw_photo("Colin_Powell", 3))
            .unwrap()
            .1
    })
    .await
    .unwrap();
    let now = now_ms();
    let seen = store.insert_sighting(&sighting(7, face, now)).unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "tester",
            &seeding(AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let entry = store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: SubjectId(subject),
                subject_name: "Colin Powell".into(),
                legal_basis: "warrant 3".into(),
                case_ref: TEST_CASE.into(),
                responsible: "tester".into(),
                expires_at_ms: now + 3_600_000,
                created_by: "tester".into(),
            },
            &seeding(AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let alert = store
        .insert_alert(
            &NewAlert {
                sighting: seen.0,
                watchlist_entry: entry.id,
                subject: SubjectId(subject),
                best_template: template,
                score: 0.6,
                false_match_rate: 1e-7,
                extrapolated: false,
                expected_false_candidates: 1e-6,
                gallery_templates: 2,
            },
            now,
        )
        .unwrap();

    let view: Value = reviewer
        .get(server.url(&format!("/v1/alerts/{}", alert.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = view["enrolled_photo_url"].as_str().unwrap();
    assert_eq!(url, format!("/v1/alerts/{}/enrolled-photo", alert.id));
    let photo = reviewer.get(server.url(url)).send().await.unwrap();
    assert_eq!(photo.status(), StatusCode::OK);
    assert_eq!(photo.headers()["content-type"], "image/jpeg");
    let photo = photo.bytes().await.unwrap();
    let thumbnail = server
        .get(&format!("/v1/templates/{template}/thumbnail"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(photo, thumbnail, "the alert's best template, nothing else");

    // The permission is for the alert's photo only: no template is readable directly.
    for any in [template, other] {
        let refused = reviewer
            .get(server.url(&format!("/v1/templates/{any}/thumbnail")))
            .send()
            .await
            .unwrap();
        assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let unknown = reviewer
        .get(server.url(&format!("/v1/alerts/{}/enrolled-photo", alert.id + 100)))
        .send()
        .await
        .unwrap();
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;

    // An investigator sees it only through the alert's case.
    let olga = server.client_with_roles("olga", &[Role::Investigator]);
    assert_eq!(
        open_case(&olga, &server, "CASE-ELSE", &[]).await.status(),
        StatusCode::CREATED
    );
    let elsewhere = olga
        .get(server.url(url))
        .header("x-vigil-case", "CASE-ELSE")
        .send()
        .await
        .unwrap();
    assert_error(elsewhere, StatusCode::NOT_FOUND, "not_found").await;
    let in_case = olga.get(server.url(url)).send().await.unwrap();
    assert_eq!(in_case.status(), StatusCode::OK);

    // Each look is logged as a view of the template's photo.
    let views = audit_of(&server, &auditor, "view_template").await;
    assert!(
        views.iter().any(|e| e["actor"]["user_name"] == "rita"
            && e["outcome"]["kind"] == "success"
            && e["target"]["id"] == url),
        "{views:#?}"
    );
}
