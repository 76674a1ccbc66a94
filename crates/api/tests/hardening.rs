//! Holes a reviewer found (issue 13 §2, items 1, 2, 7 and 9), each with the test that fails if
//! it reopens: no one acts as someone else; credentials are checked before a body is read and
//! slow or greedy clients are bounded; anonymous failures cannot grow the audit log without
//! bound; logout ends cookie sessions; a forwarded-for header is believed only from a proxy.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;
use vigil_auth::Role;
use vigil_base::config::ServerConfig;

fn address_of(server: &TestServer) -> String {
    server.base_url.trim_start_matches("http://").to_string()
}

async fn audit_entries(server: &TestServer, action: &str) -> Vec<Value> {
    server
        .admin
        .get(server.url(&format!("/v1/audit?action={action}&limit=1000")))
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

#[tokio::test]
async fn roles_that_separation_of_duties_keeps_apart_cannot_share_an_account() {
    let server = start_server().await;
    for roles in [
        ["admin", "investigator"],
        ["admin", "reviewer"],
        ["auditor", "investigator"],
    ] {
        let response = server
            .admin
            .post(server.url("/v1/users"))
            .json(&json!({ "name": format!("both-{}", roles.join("-")), "roles": roles }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{roles:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid");
    }
    // Granting investigator is audited with who granted it.
    let granted = server
        .admin
        .post(server.url("/v1/users"))
        .json(&json!({ "name": "new-investigator", "roles": ["investigator"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::CREATED);
    let created = audit_entries(&server, "user_create").await;
    let entry = created
        .iter()
        .find(|e| e["target"]["id"] == "new-investigator")
        .expect("the grant is in the audit log");
    assert_eq!(entry["actor"]["user_name"], "keeper");
    assert_eq!(entry["request"]["roles"], json!(["investigator"]));
}

#[tokio::test]
async fn no_one_mints_a_token_for_someone_else() {
    let server = start_server().await;
    let investigator_id = server.access.store.with_connection(|connection| {
        server
            .access
            .directory
            .create_user(connection, "ivy", "Ivy", &[Role::Investigator], None)
            .unwrap()
            .id
            .0
    });
    let stolen = server
        .admin
        .post(server.url(&format!("/v1/users/{investigator_id}/tokens")))
        .json(&json!({ "name": "mine now" }))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
    let body = stolen.text().await.unwrap();
    assert!(!body.contains("vgl_"), "no secret in the refusal: {body}");
    // The refusal is audited.
    let changes = audit_entries(&server, "user_change").await;
    assert!(
        changes.iter().any(|e| e["target"]["id"]
            .as_str()
            .is_some_and(|id| id.contains(&format!("/users/{investigator_id}/")))
            && e["outcome"]["kind"] != "success"),
        "{changes:?}"
    );
    // One's own token, any role.
    let me: Value = server
        .admin
        .get(server.url("/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = server
        .admin
        .post(server.url(&format!("/v1/users/{}/tokens", me["user_id"])))
        .json(&json!({ "name": "second laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::CREATED);
}

/// Sends `head` and the first `sent` bytes of a body announced as much larger, then waits for
/// the answer; returns it and how long it took.
fn partial_upload(address: &str, head: &str, sent: usize) -> (String, Duration) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'x'; sent]).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn credentials_and_permission_are_checked_before_an_upload_is_read() {
    let server = start_server().await;
    let address = address_of(&server);
    // Anonymous, announcing 15 MB and sending 1 KB: refused at once, not after the body.
    let anonymous = "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 15000000\r\n\r\n";
    let (answer, took) =
        tokio::task::spawn_blocking(move || partial_upload(&address, anonymous, 1024))
            .await
            .unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Authenticated but without the permission: the same.
    let admin_token = server.access.store.with_connection(|connection| {
        let user = server
            .access
            .directory
            .create_user(connection, "admin2", "Admin", &[Role::Admin], None)
            .unwrap();
        server
            .access
            .directory
            .issue_token(connection, user.id, "t", None)
            .unwrap()
            .secret
    });
    let address = address_of(&server);
    let forbidden = format!("POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin_token}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 15000000\r\n\r\n");
    let (answer, took) =
        tokio::task::spawn_blocking(move || partial_upload(&address, &forbidden, 1024))
            .await
            .unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn slow_clients_and_greedy_clients_hold_the_server_for_a_bounded_time_only() {
    let server = start_server_with_config(ServerConfig {
        header_timeout_secs: 1,
        body_timeout_secs: 2,
        max_in_flight_per_client: 1,
        ..ServerConfig::default()
    })
    .await;
    // Slow-loris on the headers: the connection is closed after the header timeout.
    let address = address_of(&server);
    let closed_after = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let started = Instant::now();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut buffer = [0u8; 1024];
        // a server that waits forever leaves this read blocked until the read timeout
        let _ = stream.read(&mut buffer);
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");

    // Slow-loris on the body: an authorised upload that trickles holds its slot until the body
    // deadline, and meanwhile the same client's next request is refused (one in flight each).
    let address = address_of(&server);
    let token = server.token_with_roles("slow", &[Role::Investigator]);
    let trickle = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let started = Instant::now();
        let head = format!(
            "POST /v1/subjects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while started.elapsed() < Duration::from_secs(15) {
            if stream.write_all(b"x").is_err() {
                break;
            }
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => {
                    answer.extend_from_slice(&buffer[..read]);
                    break;
                }
                Err(_) => {}
            }
        }
        (
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = server.get("/v1/subjects").await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let (answer, took) = trickle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // The slot is free again.
    assert_eq!(server.get("/v1/subjects").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn failed_logins_and_permission_refusals_are_audited_but_a_flood_is_counted_not_written() {
    let server = start_server().await;
    for attempt in 0..40 {
        let response = server
            .anonymous
            .post(server.url("/v1/login"))
            .json(&json!({ "name": if attempt % 2 == 0 { "mallory" } else { "" }, "password": "not the password" }))
            .send()
            .await
            .unwrap();
        // an empty name is an ordinary failed login, not a server fault
        assert!(
            matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{}",
            response.status()
        );
    }
    let failed = audit_entries(&server, "login_failed").await;
    let names: Vec<&str> = failed
        .iter()
        .map(|e| e["actor"]["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "one entry per name and address: {names:?}");
    assert!(names.contains(&"mallory") && names.contains(&"(no name)"));

    let investigator = server.client_with_roles("nosy", &[Role::Investigator]);
    for _ in 0..25 {
        let refused = investigator
            .get(server.url("/v1/audit"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    let refusals = audit_entries(&server, "access_refused").await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["actor"]["user_name"], "nosy");
    assert_eq!(refusals[0]["target"]["id"], "GET /v1/audit");
}

#[tokio::test]
async fn logout_ends_a_cookie_session_and_cookie_requests_need_the_csrf_token() {
    let server = start_server().await;
    let created = server
        .admin
        .post(server.url("/v1/users"))
        .json(&json!({ "name": "webuser", "roles": ["reviewer"], "password": "correct horse battery staple" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let login: Value = server
        .anonymous
        .post(server.url("/v1/login"))
        .json(&json!({ "name": "webuser", "password": "correct horse battery staple" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cookie = format!("vigil_session={}", login["session"].as_str().unwrap());
    let me = |cookie: String| {
        server
            .anonymous
            .get(server.url("/v1/me"))
            .header("cookie", cookie)
            .send()
    };
    let answered = me(cookie.clone()).await.unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let csrf = answered.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(csrf, login["csrf_token"].as_str().unwrap());
    // Another site can make the browser send the cookie, not the token: refused.
    let forged = server
        .anonymous
        .post(server.url("/v1/logout"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        forged.json::<Value>().await.unwrap()["error"]["code"],
        "csrf"
    );
    assert_eq!(me(cookie.clone()).await.unwrap().status(), StatusCode::OK);
    let logout = server
        .anonymous
        .post(server.url("/v1/logout"))
        .header("cookie", cookie.clone())
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(cookie).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_does_not_dodge_login_throttling() {
    let server = start_server().await;
    let mut throttled = false;
    for attempt in 0..30 {
        let response = server
            .anonymous
            .post(server.url("/v1/login"))
            .header("x-forwarded-for", format!("198.51.100.{attempt}"))
            .json(&json!({ "name": format!("guess{attempt}"), "password": "not the password" }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
    }
    assert!(
        throttled,
        "the peer address is throttled whatever the header claims"
    );
}
