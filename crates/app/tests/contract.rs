//! The API contract (docs/design/015-api-contract.md), checked with tools no one here wrote,
//! against a real `vigil serve`: openapi-spec-validator reads the document `vigil openapi`
//! prints; openapi-python-client generates a client from it, which enrols, identifies and
//! reviews an alert raised by a file camera (scripts/contract/client_flow.py); schemathesis then
//! sends every operation generated requests with each role's token, on the populated server, and
//! checks each answer's status, content type and body against the document.
//!
//! The tools come from the project's Python environment (`.venv`, scripts/requirements.txt),
//! which `scripts/dev` and CI build. Without them the test says so and passes, except under CI,
//! where it fails.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Instant;
use support::*;
use vigil_testbed::lfw_video::{self, Scene, ENROLLED_PEOPLE};

/// What schemathesis checks on every answer: no 5xx, only documented statuses, the documented
/// content type, and a body that validates against the documented schema.
const CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// Generated test cases per operation and phase: bounded, so the suite's time is.
const MAX_EXAMPLES: &str = "25";
/// Server-sent event streams never end; schemathesis would wait on them forever.
const STREAMS: [&str; 2] = ["/v1/sightings/stream", "/v1/alerts/stream"];
/// One schemathesis run per role, so that every role's success paths answer.
const ROLES: [&str; 5] = ["admin", "operator", "investigator", "reviewer", "auditor"];
const CASE: &str = "CONTRACT-1";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The tools from `.venv/bin`, or None (with the reason) when the environment lacks one.
fn python_tools() -> Option<PathBuf> {
    let bin = repository().join(".venv/bin");
    let missing: Vec<&str> = [
        "python",
        "openapi-spec-validator",
        "openapi-python-client",
        "schemathesis",
    ]
    .into_iter()
    .filter(|tool| !bin.join(tool).is_file())
    .collect();
    if missing.is_empty() {
        return Some(bin);
    }
    let message = format!(
        "{} lacks {missing:?}: run scripts/dev test (or .venv/bin/pip install -r scripts/requirements.txt)",
        bin.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipping the API contract test: {message}");
    None
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(what: &str, command: &mut Command) -> Output {
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what}: {} in {:.1} s",
        output.status,
        started.elapsed().as_secs_f64()
    );
    output
}

/// A new user holding `role`, and its bearer token.
fn user_token(data: &Path, name: &str, role: &str) -> String {
    let added = vigil(data)
        .args([
            "users",
            "add",
            name,
            "--role",
            role,
            "--as",
            "contract-setup",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let token = vigil(data)
        .args(["users", "token", name, "--as", "contract-setup"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", text(&token));
    String::from_utf8(token.stdout).unwrap().trim().to_string()
}

/// The operation ids that take the `X-Vigil-Case` header.
fn operations_under_a_case(document: &serde_json::Value) -> Vec<String> {
    let mut ids = Vec::new();
    for operations in document["paths"].as_object().unwrap().values() {
        for operation in operations.as_object().unwrap().values() {
            let takes_case = operation["parameters"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["in"] == "header" && p["name"] == "X-Vigil-Case")
            });
            if takes_case {
                ids.push(operation["operationId"].as_str().unwrap().to_string());
            }
        }
    }
    ids.sort();
    ids
}

/// One schemathesis run, started: its report goes to a file in the work folder.
struct Fuzzing {
    label: String,
    child: Child,
    report: PathBuf,
}

/// Starts schemathesis with `headers` against `base` (on `operations` only, when given).
fn start_schemathesis(
    bin: &Path,
    work: &Path,
    document: &Path,
    base: &str,
    label: &str,
    headers: &[String],
    operations: &[String],
) -> Fuzzing {
    let report = work.join(format!("schemathesis-{}.txt", label.replace(' ', "-")));
    let output = File::create(&report).unwrap();
    let mut command = Command::new(bin.join("schemathesis"));
    command
        .current_dir(work)
        .arg("run")
        .arg(document)
        .args(["--url", base, "--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--request-timeout", "60"])
        .args(["--suppress-health-check", "all"])
        .env("NO_COLOR", "1")
        .stdout(output.try_clone().unwrap())
        .stderr(output);
    for path in STREAMS {
        command.args(["--exclude-path", path]);
    }
    for header in headers {
        command.args(["--header", header]);
    }
    for operation in operations {
        command.args(["--include-operation-id", operation]);
    }
    Fuzzing {
        label: label.to_string(),
        child: command.spawn().expect("schemathesis starts"),
        report,
    }
}

impl Fuzzing {
    /// Waits for the run; the failures section of its report when it found any.
    fn failures(mut self) -> Option<String> {
        let status = self.child.wait().unwrap();
        let report = std::fs::read_to_string(&self.report).unwrap_or_default();
        let summary: Vec<&str> = report
            .lines()
            .filter(|l| {
                l.contains("Tested:")
                    || l.contains(" generated, ")
                    || (l.contains("==") && l.contains(" in "))
            })
            .collect();
        eprintln!(
            "schemathesis as {}: {status}\n  {}",
            self.label,
            summary.join("\n  ")
        );
        if status.success() {
            return None;
        }
        let failures = report
            .split_once("FAILURES")
            .map(|(_, rest)| rest.split("WARNINGS ===").next().unwrap_or(rest))
            .unwrap_or(&report);
        Some(format!(
            "schemathesis as {} ({status}):\n{failures}",
            self.label
        ))
    }
}

#[test]
fn a_generated_client_and_schemathesis_find_the_api_as_its_document_says() {
    let Some(bin) = python_tools() else {
        return;
    };
    let started = Instant::now();
    let directory = tempfile::tempdir().unwrap();
    let work = directory.path();
    let data = work.join("data");

    // The document, as `vigil openapi` prints it, is valid OpenAPI.
    let printed = vigil(&data).arg("openapi").output().unwrap();
    assert!(printed.status.success(), "{}", text(&printed));
    let document_path = work.join("openapi.json");
    std::fs::write(&document_path, &printed.stdout).unwrap();
    let document: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    let validated = run(
        "openapi-spec-validator",
        Command::new(bin.join("openapi-spec-validator")).arg(&document_path),
    );
    assert!(validated.status.success(), "{}", text(&validated));
    assert!(text(&validated).contains("OK"), "{}", text(&validated));

    // A client generated from it, without one warning: a schema the generator cannot read is
    // dropped with a warning, and the operations that use it silently go missing.
    let client = work.join("vigil_client");
    let generated = run(
        "openapi-python-client generate",
        Command::new(bin.join("openapi-python-client"))
            .current_dir(work)
            .arg("generate")
            .arg("--path")
            .arg(&document_path)
            .arg("--config")
            .arg(repository().join("scripts/contract/openapi-python-client.yaml"))
            .args(["--meta", "none", "--output-path"])
            .arg(&client),
    );
    let generation = text(&generated);
    assert!(generated.status.success(), "{generation}");
    assert!(
        !generation.to_ascii_lowercase().contains("warning"),
        "openapi-python-client warned:\n{generation}"
    );
    let mut generated_operations = 0;
    for group in std::fs::read_dir(client.join("api")).unwrap().flatten() {
        if group.path().is_dir() {
            generated_operations += std::fs::read_dir(group.path())
                .unwrap()
                .flatten()
                .filter(|f| f.file_name() != "__init__.py")
                .count();
        }
    }
    let documented_operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|operations| operations.as_object().unwrap().len())
        .sum();
    assert_eq!(
        generated_operations, documented_operations,
        "the client has a function for every documented operation"
    );

    // One user per role (admin kept apart from investigator and reviewer, as the roles demand).
    let mut tokens = serde_json::Map::new();
    for (name, role) in [
        ("admin", "admin"),
        ("operator", "operator"),
        ("investigator", "investigator"),
        ("reviewer1", "reviewer"),
        ("reviewer2", "reviewer"),
        ("auditor", "auditor"),
    ] {
        tokens.insert(name.into(), user_token(&data, name, role).into());
    }

    // The scene a file camera plays, under the media root; enrolment and watchlist photos are
    // other photos of the same people.
    let lfw = vigil_testbed::lfw_dir().unwrap();
    let scene = Scene::standard(&lfw).unwrap();
    let media = work.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let media = media.canonicalize().unwrap();
    lfw_video::compose(&scene, &media.join("scene.mp4")).unwrap();
    // Candidates: the flow keeps the photos in which detection finds one usable face.
    let mut enrol = serde_json::Map::new();
    for person in ENROLLED_PEOPLE {
        let photos = lfw_video::enrolment_photos(&lfw, &scene, person, 6).unwrap();
        enrol.insert(person.into(), serde_json::json!(photos));
    }
    let blair = lfw_video::enrolment_photos(&lfw, &scene, "Tony_Blair", 20).unwrap();
    let config = work.join("vigil.toml");
    std::fs::write(
        &config,
        format!("[video]\nmedia_root = {:?}\n", media.display().to_string()),
    )
    .unwrap();
    let server = serve(&data, &config);
    let base = server.base();

    // The server serves the document that was validated.
    let served: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{base}/v1/openapi.json"))
        .bearer_auth(tokens["auditor"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(served, document, "GET /v1/openapi.json is `vigil openapi`");

    // The generated client's flow: enrol, identify, watch, add the camera, review the alert.
    let plan = serde_json::json!({
        "base_url": base,
        "tokens": tokens,
        "case": CASE,
        "enrol": enrol,
        "photos_per_subject": 3,
        "probe": {"person": "Tony_Blair", "photos": blair[6..10]},
        "watch": {"person": "Tony_Blair", "name": "Tony Blair", "photos": blair[10..]},
        "camera": {"id": "scene", "url": "scene.mp4"},
        "alert_timeout_secs": 90,
    });
    let plan_path = work.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
    let flow = run(
        "client_flow.py",
        Command::new(bin.join("python"))
            .arg(repository().join("scripts/contract/client_flow.py"))
            .arg("--client")
            .arg(&client)
            .arg("--plan")
            .arg(&plan_path),
    );
    let flow_output = text(&flow);
    eprintln!("{flow_output}");
    assert!(flow.status.success(), "the generated client's flow failed");
    for line in [
        "enrolled Tony_Blair as subject",
        "identified Tony_Blair as the top candidate",
        "alert ",
        "confirmed by reviewer1 and reviewer2",
        "contract flow: ok",
    ] {
        assert!(flow_output.contains(line), "{line:?} missing from the flow");
    }

    // schemathesis with each role's token, on the populated server; then the investigator
    // again under the open case, so that identification and search reach their answers.
    // The runs go side by side (each is mostly waiting on the server), and the failures of all
    // are reported together.
    let role_token = |role: &str| {
        let user = if role == "reviewer" {
            "reviewer1"
        } else {
            role
        };
        format!("Authorization: Bearer {}", tokens[user].as_str().unwrap())
    };
    let fuzzing_started = Instant::now();
    let mut runs: Vec<Fuzzing> = ROLES
        .iter()
        .map(|role| {
            start_schemathesis(
                &bin,
                work,
                &document_path,
                &base,
                role,
                &[role_token(role)],
                &[],
            )
        })
        .collect();
    runs.push(start_schemathesis(
        &bin,
        work,
        &document_path,
        &base,
        &format!("investigator under case {CASE}"),
        &[
            role_token("investigator"),
            format!("X-Vigil-Case: {CASE}"),
            "X-Vigil-Reason: contract test".into(),
        ],
        &operations_under_a_case(&document),
    ));
    let failures: Vec<String> = runs.into_iter().filter_map(Fuzzing::failures).collect();
    eprintln!(
        "schemathesis: {:.0} s for {} runs",
        fuzzing_started.elapsed().as_secs_f64(),
        ROLES.len() + 1
    );
    eprintln!(
        "the API contract test took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "schemathesis found answers the document does not describe:\n{}",
        failures.join("\n")
    );
    drop(server);
}
