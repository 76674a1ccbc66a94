//! A real vigil API on 127.0.0.1: real models, an in-memory SQLite store, a real HTTP client.
//!
//! Needs the shared models next to the repository (`<repo>/../shared/models`), LFW under
//! `<repo>/../shared/data/lfw`, and libonnxruntime via `ORT_DYLIB_PATH`.

// Each test binary uses a different part of this harness.
#![allow(dead_code)]

use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::sync::oneshot;
use vigil_api::access::Access;
use vigil_api::{serve, AppState, ErrorBody};
use vigil_auth::{AuthOptions, Role};
use vigil_base::config::{MatchingConfig, ServerConfig, VigilConfig};
use vigil_base::CalibrationTable;
use vigil_infer::{DecodeLimits, FaceAnalyzer};
use vigil_pipeline::FaceService;
use vigil_store::{FaceStore, SqliteStore};

pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shared_dir() -> PathBuf {
    repository_root().join("../shared")
}

/// `index` counts from 1, as LFW file names do.
pub fn lfw_photo(person: &str, index: u32) -> Vec<u8> {
    let path = shared_dir()
        .join("data/lfw/lfw-deepfunneled")
        .join(person)
        .join(format!("{person}_{index:04}.jpg"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Models load once per test binary; each server still gets its own store and gallery.
fn analyzer() -> Arc<FaceAnalyzer> {
    static ANALYZER: OnceLock<Arc<FaceAnalyzer>> = OnceLock::new();
    ANALYZER
        .get_or_init(|| {
            let config = VigilConfig {
                models_dir: shared_dir().join("models"),
                threads: 2,
                ..VigilConfig::default()
            };
            Arc::new(
                FaceAnalyzer::from_config(&config).expect("models load (is ORT_DYLIB_PATH set?)"),
            )
        })
        .clone()
}

/// Impostor pairs a shipped table must rest on to be used here; the repository may still hold
/// a one-point bootstrap table until `vigil calibrate` has been run.
const MEASURED_TABLE_MIN_IMPOSTOR_PAIRS: u64 = 100_000;

/// The shipped table when it has been measured; otherwise a synthetic one shaped like a real
/// recognizer's (impostor cosines around 0, genuine around 0.6).
fn calibration_for(model: &str) -> CalibrationTable {
    if let Some(table) = vigil_pipeline::calibrate::builtin_table(model)
        .filter(|table| table.impostor_pairs >= MEASURED_TABLE_MIN_IMPOSTOR_PAIRS)
    {
        return table;
    }
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal = move |mean: f64, deviation: f64| {
        let (u, v) = (uniform(), uniform());
        (mean + deviation * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    let mut impostor: Vec<f32> = (0..200_000).map(|_| normal(0.0, 0.08)).collect();
    let mut genuine: Vec<f32> = (0..5_000).map(|_| normal(0.6, 0.12)).collect();
    CalibrationTable::from_scores(
        model,
        "synthetic (api tests)",
        &mut impostor,
        &mut genuine,
        0.005,
    )
    .expect("synthetic calibration table")
}

pub struct TestServer {
    pub base_url: String,
    /// Carries a token of a user with every role, and a case reference and reason.
    pub client: reqwest::Client,
    /// Carries nothing.
    pub anonymous: reqwest::Client,
    /// An administrator (and auditor): separation of duties keeps admin off the tester.
    pub admin: reqwest::Client,
    pub service: Arc<FaceService>,
    pub access: Access,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn start_server() -> TestServer {
    start_server_with_limit(ServerConfig::default().max_upload_bytes).await
}

/// The case reference and reason every request of the test client carries (searches need them).
pub const TEST_CASE: &str = "CASE-2026-0042";
pub const TEST_REASON: &str = "integration test";

pub async fn start_server_with_limit(max_upload_bytes: usize) -> TestServer {
    start_server_with_config(ServerConfig {
        max_upload_bytes,
        ..ServerConfig::default()
    })
    .await
}

pub async fn start_server_with_config(server_config: ServerConfig) -> TestServer {
    let analyzer = tokio::task::spawn_blocking(analyzer).await.unwrap();
    let model = analyzer.recognizer_model().as_str().to_string();
    let sqlite = Arc::new(SqliteStore::open_in_memory().unwrap());
    let store: Arc<dyn FaceStore> = sqlite.clone();
    let access = Access::new(sqlite.clone(), AuthOptions::for_tests()).unwrap();
    // One user holding every role that separation of duties lets one account hold, so the
    // existing route tests exercise the routes themselves, and an admin beside it;
    // tests/access.rs checks the role rules.
    let (token, admin_token) = sqlite.with_connection(|connection| {
        let issue = |name: &str, roles: &[Role]| {
            let user = access
                .directory
                .create_user(connection, name, name, roles, None)
                .unwrap();
            access
                .directory
                .issue_token(connection, user.id, "tests", None)
                .unwrap()
                .secret
        };
        (
            issue(
                "tester",
                &[Role::Operator, Role::Reviewer, Role::Investigator],
            ),
            issue("keeper", &[Role::Admin, Role::Auditor]),
        )
    });
    let tomorrow = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 86_400_000;
    sqlite
        .open_case(
            &vigil_store::NewCase {
                reference: TEST_CASE.into(),
                purpose: "API tests".into(),
                legal_basis: "test fixture".into(),
                owner: "tester".into(),
                members: Vec::new(),
                expires_at_ms: tomorrow,
                evidence_retention_days: None,
            },
            &vigil_audit::NewAuditEntry {
                actor: vigil_audit::Actor {
                    user_id: None,
                    user_name: "tester".into(),
                },
                action: vigil_audit::AuditAction::CaseOpen,
                target: vigil_audit::Target {
                    kind: "case".into(),
                    id: TEST_CASE.into(),
                },
                case_ref: Some(TEST_CASE.into()),
                reason: "API tests".into(),
                request: serde_json::json!({}),
                probe_image: None,
                outcome: vigil_audit::Outcome::success(""),
            },
            tomorrow - 86_400_000,
        )
        .unwrap();
    let service = FaceService::new(
        analyzer,
        store,
        calibration_for(&model),
        MatchingConfig::default(),
        DecodeLimits::default(),
    )
    .unwrap();
    let service = Arc::new(service);
    let state = AppState::new(service.clone(), &server_config, access.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown, shutdown_requested) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async move {
        let _ = shutdown_requested.await;
    }));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers.insert("x-vigil-case", TEST_CASE.parse().unwrap());
    headers.insert("x-vigil-reason", TEST_REASON.parse().unwrap());
    TestServer {
        base_url: format!("http://{address}"),
        client: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        anonymous: reqwest::Client::new(),
        admin: bearer_client(&admin_token),
        service,
        access,
        shutdown: Some(shutdown),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A client acting as a new user holding only `roles`, with the test case and reason.
    pub fn client_with_roles(&self, name: &str, roles: &[Role]) -> reqwest::Client {
        let token = self.token_with_roles(name, roles);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers.insert("x-vigil-case", TEST_CASE.parse().unwrap());
        headers.insert("x-vigil-reason", TEST_REASON.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// An API token of a new user holding only `roles`; the user joins the test case.
    pub fn token_with_roles(&self, name: &str, roles: &[Role]) -> String {
        self.access.store.with_connection(|connection| {
            let user = self
                .access
                .directory
                .create_user(connection, name, name, roles, None)
                .unwrap();
            connection
                .execute(
                    "INSERT INTO case_members (case_id, user_id)
                     SELECT id, ?2 FROM cases WHERE reference = ?1",
                    rusqlite::params![TEST_CASE, user.id.0],
                )
                .unwrap();
            self.access
                .directory
                .issue_token(connection, user.id, "tests", None)
                .unwrap()
                .secret
        })
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: Form) -> Response {
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Enrols `photos` of one person and returns the report.
    pub async fn enrol(&self, name: &str, photos: &[Vec<u8>]) -> Value {
        let mut form = Form::new().text("name", name.to_string());
        for (position, photo) in photos.iter().enumerate() {
            form = form.part(
                "image",
                jpeg_part(photo.clone(), &format!("{name}_{position}.jpg")),
            );
        }
        let response = self.post_form("/v1/subjects", form).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "enrolment of {name} failed"
        );
        response.json().await.unwrap()
    }
}

pub fn jpeg_part(bytes: Vec<u8>, file_name: &str) -> Part {
    Part::bytes(bytes)
        .file_name(file_name.to_string())
        .mime_str("image/jpeg")
        .unwrap()
}

pub fn image_form(bytes: Vec<u8>, file_name: &str) -> Form {
    Form::new().part("image", jpeg_part(bytes, file_name))
}

/// Asserts the status and the stable error code of an error response.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> ErrorBody {
    assert_eq!(
        response.status(),
        status,
        "unexpected status for expected code {code}"
    );
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "error body is {content_type}"
    );
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, code, "message: {}", body.error.message);
    assert!(!body.error.message.is_empty());
    body
}

/// A flat grey PNG: an image that decodes fine and holds no face.
pub fn grey_png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A PNG signature and IHDR claiming `width` × `height`, with nothing behind it.
pub fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, default compression/filter/interlace
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&chunk);
    bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= *byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Subjects and, per subject, template ids: the observable state of the gallery.
pub async fn gallery_snapshot(server: &TestServer) -> Vec<(i64, Vec<i64>)> {
    let subjects: Vec<Value> = server
        .get("/v1/subjects?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let mut snapshot = Vec::new();
    for subject in subjects {
        let id = subject["id"].as_i64().unwrap();
        let detail: Value = server
            .get(&format!("/v1/subjects/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let templates = detail["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        snapshot.push((id, templates));
    }
    snapshot
}

/// A client sending `token` as its bearer credential, and nothing else.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}
