//! Health, metrics and the OpenAPI document.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn healthz_reports_the_model_and_gallery_size() {
    let server = start_server().await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model"], server.service.model().as_str());
    assert_eq!(health["gallery_templates"], 0);

    server
        .enrol("Tony Blair", &[lfw_photo("Tony_Blair", 1)])
        .await;
    let health: Value = server.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["gallery_templates"], 1);
}

#[tokio::test]
async fn openapi_document_lists_every_route_and_the_error_schema() {
    let server = start_server().await;
    let response = server.get("/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/v1/openapi.json", "get"),
        ("/v1/detect", "post"),
        ("/v1/verify", "post"),
        ("/v1/identify", "post"),
        ("/v1/subjects", "get"),
        ("/v1/subjects", "post"),
        ("/v1/subjects/{id}", "get"),
        ("/v1/subjects/{id}", "delete"),
        ("/v1/subjects/{id}/templates", "post"),
        ("/v1/templates/{id}", "delete"),
        ("/v1/templates/{id}/thumbnail", "get"),
    ];
    for (path, method) in expected {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} missing from the document"
        );
    }
    let schemas = &document["components"]["schemas"];
    for schema in [
        "ErrorBody",
        "IdentifyReport",
        "Candidate",
        "EnrolmentReport",
        "SubjectDetail",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
    let enrol_body = &document["paths"]["/v1/subjects"]["post"]["requestBody"]["content"];
    assert!(enrol_body["multipart/form-data"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status_and_service_events() {
    let server = start_server().await;
    server.get("/healthz").await;
    server.get("/v1/subjects/12345").await;
    let detected = server
        .post_form(
            "/v1/detect",
            image_form(lfw_photo("Tony_Blair", 1), "a.jpg"),
        )
        .await;
    assert_eq!(detected.status(), StatusCode::OK);

    let small_limit = start_server_with_limit(1024).await;
    let refused = small_limit
        .post_form("/v1/detect", image_form(vec![0; 4096], "big.jpg"))
        .await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let response = server.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let has_line = |name: &str, labels: &[&str]| {
        text.lines()
            .any(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
    };
    assert!(
        has_line(
            "vigil_http_requests_total",
            &["route=\"/healthz\"", "status=\"200\"", "method=\"GET\""]
        ),
        "{text}"
    );
    assert!(
        has_line(
            "vigil_http_requests_total",
            &["route=\"/v1/subjects/{id}\"", "status=\"404\""]
        ),
        "{text}"
    );
    assert!(
        has_line(
            "vigil_http_requests_total",
            &["route=\"/v1/detect\"", "status=\"413\""]
        ),
        "{text}"
    );
    assert!(
        has_line(
            "vigil_http_request_duration_seconds_bucket",
            &["route=\"/v1/detect\""]
        ),
        "{text}"
    );
    assert!(has_line("vigil_faces_detected_total", &[]), "{text}");
    assert!(has_line("vigil_gallery_templates", &[]), "{text}");
}
