//! The `vigil` binary driven as a user would, on real models and LFW photos.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn lfw(name: &str, number: u32) -> PathBuf {
    shared().join(format!(
        "data/lfw/lfw-deepfunneled/{name}/{name}_{number:04}.jpg"
    ))
}

/// A vigil command with its own data folder and the shared models.
fn vigil(data: &Path, models: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .env("VIGIL_DATA_DIR", data)
        .env("VIGIL_MODELS_DIR", models)
        .env("VIGIL_SHARED_DIR", shared())
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_SEAL_KEYS");
    command
}

/// A vigil command acting as `ivy`, an investigator, under her open case CASE-T (both created
/// on first use): biometric commands need an existing user with the role, a case and a reason.
fn investigator(data: &Path, models: &Path) -> Command {
    let created = vigil(data, models)
        .args([
            "users",
            "add",
            "ivy",
            "--role",
            "investigator",
            "--as",
            "root",
        ])
        .output()
        .unwrap();
    if created.status.success() {
        let opened = vigil(data, models)
            .args([
                "cases",
                "open",
                "CASE-T",
                "--purpose",
                "tests",
                "--legal-basis",
                "test",
            ])
            .args(["--expires-days", "1", "--as", "ivy"])
            .output()
            .unwrap();
        assert!(opened.status.success(), "{}", text(&opened));
    }
    let mut command = vigil(data, models);
    command
        .env("VIGIL_USER", "ivy")
        .env("VIGIL_CASE", "CASE-T")
        .env("VIGIL_REASON", "tests");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn models_install_from_a_folder_and_a_corrupted_file_fails_verification() {
    let directory = tempfile::tempdir().unwrap();
    let models = directory.path().join("models");
    let output = vigil(directory.path(), &models)
        .args(["models", "fetch", "--from"])
        .arg(shared().join("models"))
        .args(["scrfd_500m", "w600k_mbf_int8"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let verify = vigil(directory.path(), &models)
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("scrfd_500m         ok"));

    let mut bytes = std::fs::read(models.join("det_500m.onnx")).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(models.join("det_500m.onnx"), bytes).unwrap();
    let verify = vigil(directory.path(), &models)
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert!(!verify.status.success());
    assert!(text(&verify).contains("scrfd_500m         BAD"));

    // a source folder holding a wrong file is refused and installs nothing under the name
    let wrong = directory.path().join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::write(
        wrong.join("face_detection_yunet_2023mar.onnx"),
        b"not a model",
    )
    .unwrap();
    let fetch = vigil(directory.path(), &models)
        .args(["models", "fetch", "yunet", "--from"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!fetch.status.success());
    assert!(!models.join("face_detection_yunet_2023mar.onnx").exists());
}

#[test]
fn models_list_flags_non_commercial_licences() {
    let directory = tempfile::tempdir().unwrap();
    let output = vigil(directory.path(), &shared().join("models"))
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let listing = text(&output);
    let line = listing
        .lines()
        .find(|l| l.starts_with("w600k_mbf_int8"))
        .unwrap();
    assert!(line.contains("NON-COMM."), "{line}");
    let line = listing.lines().find(|l| l.starts_with("yunet ")).unwrap();
    assert!(!line.contains("NON-COMM."), "{line}");
}

#[test]
fn enrolling_a_folder_skips_bad_files_and_identify_names_the_person() {
    let directory = tempfile::tempdir().unwrap();
    let models = shared().join("models");
    let photos = directory.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for n in 1..=3 {
        std::fs::copy(
            lfw("Colin_Powell", n),
            photos.join(format!("colin_{n}.jpg")),
        )
        .unwrap();
    }
    std::fs::write(photos.join("broken.jpg"), b"this is not a jpeg").unwrap();
    std::fs::write(photos.join("empty.png"), b"").unwrap();

    let output = investigator(directory.path(), &models)
        .args(["enroll", "--subject", "Colin Powell"])
        .arg(&photos)
        .output()
        .unwrap();
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("3 template(s) enrolled, 2 file(s) skipped"),
        "{printed}"
    );
    assert!(
        printed.contains("skipped") && printed.contains("broken.jpg"),
        "{printed}"
    );

    let output = investigator(directory.path(), &models)
        .arg("identify")
        .arg(lfw("Colin_Powell", 7))
        .output()
        .unwrap();
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("1. Colin Powell"), "{printed}");
    assert!(printed.contains("false-match rate"), "{printed}");

    let output = vigil(directory.path(), &models)
        .args(["subjects", "list", "--json"])
        .output()
        .unwrap();
    let subjects: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(subjects[0]["name"], "Colin Powell");
    assert_eq!(subjects[0]["template_count"], 3);

    let output = investigator(directory.path(), &models)
        .args(["subjects", "delete", "Colin Powell"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let output = investigator(directory.path(), &models)
        .arg("identify")
        .arg(lfw("Colin_Powell", 7))
        .output()
        .unwrap();
    assert!(text(&output).contains("no candidate"), "{}", text(&output));
}

#[test]
fn an_enrolment_where_every_file_fails_stores_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let models = shared().join("models");
    let bad = directory.path().join("bad.jpg");
    std::fs::write(&bad, b"garbage").unwrap();
    let output = investigator(directory.path(), &models)
        .args(["enroll", "--subject", "Nobody"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("nothing was stored"),
        "{}",
        text(&output)
    );
    let output = vigil(directory.path(), &models)
        .args(["subjects", "list", "--json"])
        .output()
        .unwrap();
    let subjects: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(subjects.as_array().unwrap().len(), 0);
}

#[test]
fn verify_reports_same_person_with_a_false_match_rate() {
    let directory = tempfile::tempdir().unwrap();
    let output = investigator(directory.path(), &shared().join("models"))
        .args(["verify", "--json"])
        .arg(lfw("Serena_Williams", 1))
        .arg(lfw("Serena_Williams", 3))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["same_person"], true);
    assert!(report["false_match_rate"].as_f64().unwrap() < 1e-5);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let directory = tempfile::tempdir().unwrap();
    let output = vigil(directory.path(), &shared().join("models"))
        .env("VIGIL_MATCHING__FALSE_MATCH_RATE", "3")
        .args(["subjects", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("false_match_rate"),
        "{}",
        text(&output)
    );
}

#[test]
fn eval_detect_finds_every_group_photo_face() {
    let directory = tempfile::tempdir().unwrap();
    let json = directory.path().join("detect.json");
    let output = vigil(directory.path(), &shared().join("models"))
        .args(["eval", "detect", "--detector", "scrfd_2.5g", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let reports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(reports[0]["faces_expected"], 22);
    assert_eq!(reports[0]["faces_found"], 22);
    assert_eq!(reports[0]["false_positives"], 0);
}

#[test]
fn eval_lfw_reproduces_the_reference_scores_on_a_sample_of_pairs() {
    let directory = tempfile::tempdir().unwrap();
    let json = directory.path().join("lfw.json");
    let output = vigil(directory.path(), &shared().join("models"))
        .args(["eval", "lfw", "--pairs-per-fold", "3", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let reports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 3);
    for report in reports.iter().filter(|r| r["variant"] == "reference") {
        assert_eq!(report["pairs"], 60);
        let delta = report["reference"]["mean_abs_delta_cosine"]
            .as_f64()
            .unwrap();
        assert!(delta <= 0.01, "{}: mean |Δcos| {delta}", report["model"]);
    }
}

#[test]
fn serve_answers_health_checks_on_the_configured_address() {
    use std::io::{BufRead, BufReader, Read, Write};
    let directory = tempfile::tempdir().unwrap();
    let mut server = vigil(directory.path(), &shared().join("models"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // keep reading the server's log for its whole life, so it never writes into a closed pipe
    let stderr = server.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = sender.send(rest.trim().to_string());
            }
        }
    });
    let address = receiver
        .recv_timeout(std::time::Duration::from_secs(120))
        .ok();
    let address = address.expect("the server printed its address");
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
}

#[test]
fn audit_verify_detects_an_edited_entry_and_a_truncated_tail() {
    let directory = tempfile::tempdir().unwrap();
    let models = shared().join("models");
    for (name, role) in [("alice", "investigator"), ("bob", "auditor")] {
        let added = vigil(directory.path(), &models)
            .args(["users", "add", name, "--role", role, "--as", "root"])
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", text(&added));
    }
    // Biometric commands are audited under the acting user, with case and reason.
    let enrolled = vigil(directory.path(), &models)
        .args(["enroll", "--subject", "Tony Blair", "--as", "alice"])
        .arg(lfw("Tony_Blair", 1))
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let opened = vigil(directory.path(), &models)
        .args([
            "cases",
            "open",
            "CASE-9",
            "--purpose",
            "check",
            "--legal-basis",
            "warrant",
        ])
        .args(["--expires-days", "2", "--as", "alice"])
        .output()
        .unwrap();
    assert!(opened.status.success(), "{}", text(&opened));
    let identified = vigil(directory.path(), &models)
        .args([
            "identify", "--as", "alice", "--case", "CASE-9", "--reason", "check",
        ])
        .arg(lfw("Tony_Blair", 2))
        .output()
        .unwrap();
    assert!(identified.status.success(), "{}", text(&identified));
    let export = vigil(directory.path(), &models)
        .args(["audit", "export"])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&export.stdout).to_string();
    let identify_line = lines
        .lines()
        .find(|l| l.contains("\"action\":\"identify\""))
        .unwrap_or_else(|| panic!("no identify entry:\n{lines}"));
    assert!(
        identify_line.contains("\"user_name\":\"alice\""),
        "{identify_line}"
    );
    assert!(
        identify_line.contains("\"case_ref\":\"CASE-9\""),
        "{identify_line}"
    );
    assert!(identify_line.contains("probe_sha256"), "{identify_line}");
    assert!(lines.contains("\"action\":\"enrol\""));

    let head = vigil(directory.path(), &models)
        .args(["audit", "head"])
        .output()
        .unwrap();
    assert!(head.status.success(), "{}", text(&head));
    let verify = || {
        vigil(directory.path(), &models)
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let clean = verify();
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(text(&clean).contains("audit log intact"));

    // An attacker with the database file: drops the guard triggers, then edits or cuts.
    let database = directory.path().join("vigil.db");
    let connection = rusqlite::Connection::open(&database).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete;
             UPDATE audit_entries SET reason = 'nothing to see' WHERE sequence = 1;",
        )
        .unwrap();
    let edited = verify();
    assert!(!edited.status.success());
    assert!(text(&edited).contains("edited"), "{}", text(&edited));

    connection
        .execute_batch(
            "UPDATE audit_entries SET reason = 'command line' WHERE sequence = 1;
             DELETE FROM audit_entries WHERE sequence = (SELECT MAX(sequence) FROM audit_entries);",
        )
        .unwrap();
    let truncated = verify();
    assert!(!truncated.status.success());
    assert!(
        text(&truncated).contains("truncated"),
        "{}",
        text(&truncated)
    );
}

#[test]
fn the_command_line_holds_searches_to_cases_and_answers_subject_access_requests() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    let models = shared().join("models");
    let enrolled = investigator(data, &models)
        .args(["enroll", "--subject", "Tony Blair"])
        .arg(lfw("Tony_Blair", 1))
        .arg(lfw("Tony_Blair", 2))
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let added = vigil(data, &models)
        .args(["users", "add", "dora", "--role", "auditor", "--as", "root"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));

    // No case, someone else's case, or a user without the role: refused, nothing compared.
    let no_case = investigator(data, &models)
        .env_remove("VIGIL_CASE")
        .arg("identify")
        .arg(lfw("Tony_Blair", 3))
        .output()
        .unwrap();
    assert!(!no_case.status.success());
    assert!(text(&no_case).contains("--case"), "{}", text(&no_case));
    let opened = vigil(data, &models)
        .args([
            "cases",
            "open",
            "CASE-X",
            "--purpose",
            "other",
            "--legal-basis",
            "w",
        ])
        .args(["--expires-days", "1", "--as", "ivy"])
        .output()
        .unwrap();
    assert!(opened.status.success(), "{}", text(&opened));
    let as_dora = vigil(data, &models)
        .args([
            "identify", "--as", "dora", "--case", "CASE-X", "--reason", "x",
        ])
        .arg(lfw("Tony_Blair", 3))
        .output()
        .unwrap();
    assert!(!as_dora.status.success());
    assert!(text(&as_dora).contains("Identify"), "{}", text(&as_dora));
    let added = vigil(data, &models)
        .args([
            "users",
            "add",
            "ian",
            "--role",
            "investigator",
            "--as",
            "root",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let ivy_case_as_ian = vigil(data, &models)
        .args([
            "identify", "--as", "ian", "--case", "CASE-X", "--reason", "x",
        ])
        .arg(lfw("Tony_Blair", 3))
        .output()
        .unwrap();
    assert!(!ivy_case_as_ian.status.success());
    assert!(
        text(&ivy_case_as_ian).contains("neither owner nor member"),
        "{}",
        text(&ivy_case_as_ian)
    );
    let unknown_user = vigil(data, &models)
        .args([
            "search", "--as", "nobody", "--case", "CASE-T", "--reason", "x",
        ])
        .arg(lfw("Tony_Blair", 3))
        .output()
        .unwrap();
    assert!(!unknown_user.status.success());
    assert!(
        text(&unknown_user).contains("--as"),
        "{}",
        text(&unknown_user)
    );

    // Under her case: identify finds Blair; search runs over the (empty) sightings.
    let identified = investigator(data, &models)
        .arg("identify")
        .arg(lfw("Tony_Blair", 3))
        .output()
        .unwrap();
    assert!(identified.status.success(), "{}", text(&identified));
    let searched = investigator(data, &models)
        .arg("search")
        .arg(lfw("Tony_Blair", 3))
        .output()
        .unwrap();
    assert!(searched.status.success(), "{}", text(&searched));
    assert!(
        text(&searched).contains("0 sighting(s)"),
        "{}",
        text(&searched)
    );

    // The auditor's report on Blair: his templates and the identify that found him.
    let json_path = data.join("report.json");
    let report = vigil(data, &models)
        .args([
            "access-report",
            "--subject",
            "Tony Blair",
            "--as",
            "dora",
            "--reason",
            "SAR-17",
        ])
        .arg("--output")
        .arg(&json_path)
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", text(&report));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(
        report["subjects"][0]["templates"].as_array().unwrap().len(),
        2
    );
    let searches = report["searches"].as_array().unwrap();
    assert_eq!(
        searches.len(),
        2,
        "identify and search with his photo: {searches:#?}"
    );
    assert!(searches.iter().all(|s| s["user_name"] == "ivy"));
    let html_path = data.join("report.html");
    let page = vigil(data, &models)
        .args([
            "access-report",
            "--as",
            "dora",
            "--reason",
            "SAR-18",
            "--photo",
        ])
        .arg(lfw("Tony_Blair", 4))
        .arg("--output")
        .arg(&html_path)
        .output()
        .unwrap();
    assert!(page.status.success(), "{}", text(&page));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("Tony Blair") && html.contains("SAR-18"));

    // The refused attempts show up as misuse for the auditor.
    let misuse = vigil(data, &models)
        .args(["audit", "misuse", "--scan", "--json", "--as", "dora"])
        .output()
        .unwrap();
    assert!(misuse.status.success(), "{}", text(&misuse));
    let misuse: serde_json::Value = serde_json::from_slice(&misuse.stdout).unwrap();
    let outside: Vec<&serde_json::Value> = misuse["raised"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "outside_cases")
        .collect();
    assert!(
        outside.iter().any(|a| a["user_name"] == "ivy")
            && outside.iter().any(|a| a["user_name"] == "ian"),
        "{misuse:#}"
    );
    let export = vigil(data, &models)
        .args(["audit", "export"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&export.stdout);
    assert!(log.contains("\"action\":\"access_report\""));
    assert!(log.contains("\"detail\":\"not_in_case\""), "{log}");
}

/// Any 32-byte piece of `secret` found in `disk` (blobs are split over overflow pages).
fn shares_a_piece(disk: &[u8], secret: &[u8]) -> bool {
    secret
        .chunks_exact(32)
        .step_by(8)
        .any(|piece| disk.windows(32).any(|window| window == piece))
}

fn data_files(directory: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|e| e != "keys") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

/// Encryption at rest end to end: keys from a file, enrol and identify (the probe is audited),
/// no photo bytes in the data folder, refused without the key, rotation by appending a key,
/// `keys reseal`, and removing the old key; then keys from `$VIGIL_SEAL_KEYS`.
#[test]
fn encrypted_store_unreadable_without_the_key_through_the_cli() {
    let directory = tempfile::tempdir().unwrap();
    let models = shared().join("models");
    let key_file = directory.path().join("vigil.keys");
    let generate = || {
        let output = vigil(directory.path(), &models)
            .args(["keys", "generate"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let first_key = generate();
    std::fs::write(&key_file, &first_key).unwrap();
    // Created before the first key: the user and case rows hold nothing to seal.
    drop(investigator(directory.path(), &models));
    let with_keys = || {
        let mut command = vigil(directory.path(), &models);
        command
            .env("VIGIL_ENCRYPTION__KEY_FILE", &key_file)
            .env("VIGIL_USER", "ivy")
            .env("VIGIL_CASE", "CASE-T")
            .env("VIGIL_REASON", "tests");
        command
    };
    let run = |mut command: Command, args: &[&str], extra: Option<&Path>| {
        command.args(args);
        if let Some(extra) = extra {
            command.arg(extra);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        text(&output)
    };
    let probe = lfw("Tony_Blair", 2);
    run(
        with_keys(),
        &["enroll", "--subject", "Tony Blair"],
        Some(&lfw("Tony_Blair", 1)),
    );
    let identified = run(with_keys(), &["identify"], Some(&probe));
    assert!(identified.contains("1. Tony Blair"), "{identified}");

    let status = run(with_keys(), &["keys", "status"], None);
    let first_id = status
        .lines()
        .find_map(|line| line.strip_prefix("active key: "))
        .unwrap_or_else(|| panic!("{status}"))
        .trim()
        .to_owned();
    assert!(
        status.contains(&format!("audit_probes.image: plaintext 0, {first_id}: 1")),
        "{status}"
    );
    let disk = data_files(directory.path());
    assert!(!shares_a_piece(&disk, &std::fs::read(&probe).unwrap()));

    let refused = vigil(directory.path(), &models)
        .arg("identify")
        .arg(&probe)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(text(&refused).contains(&first_id), "{}", text(&refused));

    // Rotation: append a key, reseal, drop the old key.
    let second_key = generate();
    std::fs::write(&key_file, format!("{first_key}{second_key}")).unwrap();
    let resealed = run(with_keys(), &["keys", "reseal"], None);
    assert!(
        resealed.contains("0 blobs left under other keys or in plaintext"),
        "{resealed}"
    );
    assert!(!resealed.contains(&first_id), "{resealed}");
    std::fs::remove_file(&key_file).unwrap();
    let mut from_environment = vigil(directory.path(), &models);
    from_environment
        .env("VIGIL_SEAL_KEYS", second_key.trim())
        .env("VIGIL_USER", "ivy")
        .env("VIGIL_CASE", "CASE-T")
        .env("VIGIL_REASON", "tests");
    let identified = run(from_environment, &["identify"], Some(&probe));
    assert!(identified.contains("1. Tony Blair"), "{identified}");
    let mut from_environment = vigil(directory.path(), &models);
    from_environment.env("VIGIL_SEAL_KEYS", second_key.trim());
    let verified = run(from_environment, &["audit", "verify"], None);
    assert!(verified.contains("audit log intact"), "{verified}");
}

/// An audit entry for what the test sets up directly in the store (what the API would write).
fn setup_entry(action: vigil_audit::AuditAction, kind: &str) -> vigil_audit::NewAuditEntry {
    vigil_audit::NewAuditEntry {
        actor: vigil_audit::Actor {
            user_id: None,
            user_name: "ivy".into(),
        },
        action,
        target: vigil_audit::Target {
            kind: kind.into(),
            id: "test".into(),
        },
        case_ref: Some("CASE-T".into()),
        reason: "tests".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: vigil_audit::Outcome::success(""),
    }
}

/// Issue 13 §2.5 through the command line: `vigil subjects delete` refuses a subject that a
/// watchlist entry holds, naming the case, as `DELETE /v1/subjects/{id}` does; once the entry is
/// removed the subject can be deleted.
#[test]
fn subjects_delete_refuses_a_subject_on_a_watchlist_and_names_the_case() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path();
    let models = shared().join("models");
    let enrolled = investigator(data, &models)
        .args(["enroll", "--subject", "Colin Powell"])
        .arg(lfw("Colin_Powell", 1))
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{}", text(&enrolled));

    // The watchlist entry, as POST /v1/watchlists/{id}/entries stores it under CASE-T.
    let entry = {
        use vigil_store::FaceStore;
        let store = vigil_store::SqliteStore::open(data.join("vigil.db")).unwrap();
        let subject = store.subject_by_name("Colin Powell").unwrap().unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let watchlist = store
            .create_watchlist(
                "Wanted",
                None,
                1e-4,
                "ivy",
                &setup_entry(vigil_audit::AuditAction::WatchlistAdd, "watchlist"),
                now_ms,
            )
            .unwrap();
        store
            .add_watch_entry(
                &vigil_store::NewWatchEntry {
                    watchlist: watchlist.id,
                    subject: subject.id,
                    subject_name: "Colin Powell".into(),
                    legal_basis: "test".into(),
                    case_ref: "CASE-T".into(),
                    responsible: "ivy".into(),
                    expires_at_ms: now_ms + 3_600_000,
                    created_by: "ivy".into(),
                },
                &setup_entry(vigil_audit::AuditAction::WatchlistAdd, "watchlist_entry"),
                now_ms,
            )
            .unwrap()
    };

    let refused = investigator(data, &models)
        .args(["subjects", "delete", "Colin Powell"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    let message = text(&refused);
    assert!(message.contains("CASE-T"), "{message}");
    assert!(
        message.contains(&format!("entry {}", entry.id)),
        "{message}"
    );
    let shown = investigator(data, &models)
        .args(["subjects", "show", "Colin Powell"])
        .output()
        .unwrap();
    assert!(shown.status.success(), "still enrolled: {}", text(&shown));
    assert!(text(&shown).contains("1 template(s)"), "{}", text(&shown));

    {
        let store = vigil_store::SqliteStore::open(data.join("vigil.db")).unwrap();
        store
            .remove_watch_entry(
                entry.id,
                &setup_entry(vigil_audit::AuditAction::WatchlistRemove, "watchlist_entry"),
                entry.created_at_ms + 1,
            )
            .unwrap();
    }
    let deleted = investigator(data, &models)
        .args(["subjects", "delete", "Colin Powell"])
        .output()
        .unwrap();
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(
        text(&deleted).contains("and its 1 template(s)"),
        "{}",
        text(&deleted)
    );
}
