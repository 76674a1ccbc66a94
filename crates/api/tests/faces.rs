//! Detection, 1:1 verification and 1:N identification over real HTTP with real models.

mod support;

use reqwest::multipart::Form;
use reqwest::StatusCode;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn identify_names_the_enrolled_subject_for_an_unseen_photo_with_its_false_match_rate() {
    let server = start_server().await;
    let enrolment = server
        .enrol(
            "Colin Powell",
            &[lfw_photo("Colin_Powell", 1), lfw_photo("Colin_Powell", 2)],
        )
        .await;
    let subject_id = enrolment["subject"]["id"].as_i64().unwrap();
    assert_eq!(enrolment["enrolled"].as_array().unwrap().len(), 2);
    server
        .enrol("Tony Blair", &[lfw_photo("Tony_Blair", 1)])
        .await;

    let response = server
        .post_form(
            "/v1/identify?top_k=3&false_match_rate=0.001",
            image_form(lfw_photo("Colin_Powell", 3), "probe.jpg"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["gallery_templates"], 3);
    assert_eq!(report["false_match_rate_threshold"], 0.001);
    let best = &report["faces"][0]["candidates"][0];
    assert_eq!(best["subject_id"].as_i64(), Some(subject_id));
    assert_eq!(best["subject_name"], "Colin Powell");
    let rate = best["false_match_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 0.001, "false_match_rate {rate}");
    // Another person in the gallery must not pass the same threshold.
    let names: Vec<&str> = report["faces"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject_name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"Tony Blair"), "candidates {names:?}");
}

#[tokio::test]
async fn verify_accepts_two_photos_of_one_person_and_rejects_two_people() {
    let server = start_server().await;
    let same = Form::new()
        .part("a", jpeg_part(lfw_photo("Serena_Williams", 1), "a.jpg"))
        .part("b", jpeg_part(lfw_photo("Serena_Williams", 2), "b.jpg"));
    let response = server.post_form("/v1/verify", same).await;
    assert_eq!(response.status(), StatusCode::OK);
    let same: Value = response.json().await.unwrap();
    assert_eq!(same["same_person"], true, "{same}");

    let different = Form::new()
        .part("a", jpeg_part(lfw_photo("Serena_Williams", 1), "a.jpg"))
        .part("b", jpeg_part(lfw_photo("George_W_Bush", 1), "b.jpg"));
    let response = server.post_form("/v1/verify", different).await;
    assert_eq!(response.status(), StatusCode::OK);
    let different: Value = response.json().await.unwrap();
    assert_eq!(different["same_person"], false, "{different}");
    assert!(same["score"].as_f64().unwrap() > different["score"].as_f64().unwrap());
    assert!(
        different["false_match_rate"].as_f64().unwrap()
            > same["false_match_rate"].as_f64().unwrap()
    );
}

#[tokio::test]
async fn detect_finds_the_face_whether_sent_as_multipart_or_as_a_raw_body() {
    let server = start_server().await;
    let photo = lfw_photo("Tony_Blair", 2);

    let multipart = server
        .post_form("/v1/detect", image_form(photo.clone(), "blair.jpg"))
        .await;
    assert_eq!(multipart.status(), StatusCode::OK);
    let multipart: Value = multipart.json().await.unwrap();

    let raw = server
        .client
        .post(server.url("/v1/detect"))
        .header("content-type", "image/jpeg")
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    let raw: Value = raw.json().await.unwrap();

    assert_eq!(multipart["width"], 250);
    assert!(!multipart["faces"].as_array().unwrap().is_empty());
    assert_eq!(multipart["faces"], raw["faces"]);
    assert_eq!(multipart["image_sha256"], raw["image_sha256"]);
    // LFW deep-funneled photos are centred on the face: the largest box covers the centre.
    let bbox = &multipart["faces"][0]["bbox"];
    let (x1, y1, x2, y2) = (
        bbox[0].as_f64().unwrap(),
        bbox[1].as_f64().unwrap(),
        bbox[2].as_f64().unwrap(),
        bbox[3].as_f64().unwrap(),
    );
    assert!(
        x1 < 125.0 && 125.0 < x2 && y1 < 125.0 && 125.0 < y2,
        "bbox {bbox}"
    );
}

#[tokio::test]
async fn a_faceless_image_detects_nothing_and_cannot_be_identified() {
    let server = start_server().await;
    let detected = server
        .post_form("/v1/detect", image_form(grey_png(320, 240), "grey.png"))
        .await;
    assert_eq!(detected.status(), StatusCode::OK);
    let detected: Value = detected.json().await.unwrap();
    assert_eq!(detected["faces"].as_array().unwrap().len(), 0);

    let identified = server
        .post_form("/v1/identify", image_form(grey_png(320, 240), "grey.png"))
        .await;
    assert_error(identified, StatusCode::UNPROCESSABLE_ENTITY, "no_face").await;

    let verify = Form::new()
        .part("a", jpeg_part(grey_png(320, 240), "grey.png"))
        .part("b", jpeg_part(lfw_photo("Tony_Blair", 1), "b.jpg"));
    assert_error(
        server.post_form("/v1/verify", verify).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_face",
    )
    .await;
}
