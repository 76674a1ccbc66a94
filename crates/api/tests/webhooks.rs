//! Webhook targets over the API (issue 13 §2.4): https to public addresses unless an admin
//! allows the host (`[webhooks] allowed_hosts`, held by the store).

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

async fn subscribe(server: &TestServer, url: &str) -> (StatusCode, Value) {
    let response = server
        .admin
        .post(server.url("/v1/webhooks"))
        .json(&json!({ "url": url, "event_kinds": ["alert.raised"] }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn webhooks_to_plain_http_or_private_addresses_are_refused_unless_the_host_is_allowed() {
    let server = start_server().await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://hooks.example.org/x",
        "https://127.0.0.1:9/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/x",
        "https://[::1]/x",
    ] {
        let (status, body) = subscribe(&server, url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
    }
    let (status, body) = subscribe(&server, "https://hooks.example.org/x").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // An admin allows the on-premises receiver: that host only.
    server
        .access
        .store
        .set_webhook_targets(vigil_notify::TargetPolicy::allowing(["127.0.0.1"]));
    let (status, body) = subscribe(&server, "http://127.0.0.1:9/x").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = subscribe(&server, "http://10.0.0.7/x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let listed: Value = server
        .admin
        .get(server.url("/v1/webhooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let urls: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|hook| hook["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        ["https://hooks.example.org/x", "http://127.0.0.1:9/x"]
    );
}
