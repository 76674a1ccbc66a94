//! Every way a request can be wrong gets its documented status and stable error code, in the
//! API's JSON error shape.

mod support;

use reqwest::multipart::Form;
use reqwest::StatusCode;
use support::*;

#[tokio::test]
async fn broken_images_are_refused_with_their_own_codes() {
    let server = start_server().await;
    let photo = lfw_photo("Tony_Blair", 1);
    // Cut where the scan should start: the header parses, the pixels are absent.
    let start_of_scan = photo
        .windows(2)
        .position(|pair| pair == [0xFF, 0xDA])
        .unwrap();
    let truncated = photo[..start_of_scan].to_vec();
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "empty.jpg",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty_image",
        ),
        (
            "truncated.jpg",
            truncated,
            StatusCode::BAD_REQUEST,
            "corrupt_image",
        ),
        (
            "notes.jpg",
            b"these are meeting notes, not a photo\n".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_format",
        ),
        (
            "huge.png",
            png_header_claiming(30_000, 30_000),
            StatusCode::UNPROCESSABLE_ENTITY,
            "image_too_large",
        ),
    ];
    for (name, bytes, status, code) in cases {
        for route in ["/v1/detect", "/v1/identify"] {
            let response = server
                .post_form(route, image_form(bytes.clone(), name))
                .await;
            assert_error(response, status, code).await;
        }
    }
}

#[tokio::test]
async fn malformed_multipart_bodies_are_refused() {
    let server = start_server().await;
    let garbage = server
        .client
        .post(server.url("/v1/detect"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nthis is not a part header\r\n\r\nnor a closing boundary")
        .send()
        .await
        .unwrap();
    assert_error(garbage, StatusCode::BAD_REQUEST, "malformed_multipart").await;

    let no_boundary = server
        .client
        .post(server.url("/v1/verify"))
        .header("content-type", "multipart/form-data")
        .body("whatever")
        .send()
        .await
        .unwrap();
    assert_error(no_boundary, StatusCode::BAD_REQUEST, "malformed_multipart").await;
}

#[tokio::test]
async fn wrong_content_types_are_unsupported_media() {
    let server = start_server().await;
    let text = server
        .client
        .post(server.url("/v1/detect"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let json = server
        .client
        .post(server.url("/v1/subjects"))
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(
        json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn missing_fields_are_named() {
    let server = start_server().await;
    let only_a = Form::new().part("a", jpeg_part(lfw_photo("Tony_Blair", 1), "a.jpg"));
    let body = assert_error(
        server.post_form("/v1/verify", only_a).await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    assert!(body.error.message.contains("`b`"), "{}", body.error.message);
    let wrong_field = Form::new().part("photo", jpeg_part(lfw_photo("Tony_Blair", 1), "a.jpg"));
    assert_error(
        server.post_form("/v1/detect", wrong_field).await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_a_readable_413() {
    let limit_bytes = 64 * 1024;
    let server = start_server_with_limit(limit_bytes).await;
    let oversized = vec![0u8; 4 * limit_bytes];

    let multipart = server
        .post_form("/v1/detect", image_form(oversized.clone(), "big.jpg"))
        .await;
    assert_error(
        multipart,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    let raw = server
        .client
        .post(server.url("/v1/identify"))
        .header("content-type", "image/jpeg")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_error(raw, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // The server is still healthy and still accepts uploads under the limit.
    let small = server
        .post_form("/v1/detect", image_form(grey_png(64, 64), "small.png"))
        .await;
    assert_eq!(small.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_query_and_path_parameters_are_bad_requests() {
    let server = start_server().await;
    let photo = lfw_photo("Tony_Blair", 1);
    let response = server
        .post_form(
            "/v1/identify?top_k=many",
            image_form(photo.clone(), "a.jpg"),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = server
        .post_form(
            "/v1/identify?false_match_rate=2",
            image_form(photo, "a.jpg"),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid").await;
    assert_error(
        server.get("/v1/subjects/not-a-number").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(
        server.get("/v1/subjects?limit=-1").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let server = start_server().await;
    assert_error(
        server.get("/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        server.get("/v1/subjects/1/nothing").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        server.get("/v1/detect").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}
