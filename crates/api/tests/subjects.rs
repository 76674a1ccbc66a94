//! The gallery over HTTP: enrolment (all-or-nothing), listing, detail, thumbnails, deletion.

mod support;

use reqwest::multipart::Form;
use reqwest::StatusCode;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn a_deleted_subject_is_gone_from_listing_detail_and_identification() {
    let server = start_server().await;
    let enrolment = server
        .enrol(
            "Aaron Peirsol",
            &[lfw_photo("Aaron_Peirsol", 1), lfw_photo("Aaron_Peirsol", 2)],
        )
        .await;
    let id = enrolment["subject"]["id"].as_i64().unwrap();
    assert_eq!(enrolment["created"], true);

    let listed: Vec<Value> = server.get("/v1/subjects").await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Aaron Peirsol");
    assert_eq!(listed[0]["template_count"], 2);

    let detail = server.get(&format!("/v1/subjects/{id}")).await;
    assert_eq!(detail.status(), StatusCode::OK);
    let detail: Value = detail.json().await.unwrap();
    assert_eq!(detail["subject"]["id"], id);
    assert_eq!(detail["templates"].as_array().unwrap().len(), 2);
    assert_eq!(detail["templates"][0]["source_name"], "Aaron Peirsol_0.jpg");

    let deleted = server.delete(&format!("/v1/subjects/{id}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    assert_error(
        server.get(&format!("/v1/subjects/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let listed: Vec<Value> = server.get("/v1/subjects").await.json().await.unwrap();
    assert!(listed.is_empty());
    let identified = server
        .post_form(
            "/v1/identify?false_match_rate=0.001",
            image_form(lfw_photo("Aaron_Peirsol", 3), "probe.jpg"),
        )
        .await;
    assert_eq!(identified.status(), StatusCode::OK);
    let identified: Value = identified.json().await.unwrap();
    assert_eq!(identified["gallery_templates"], 0);
    assert!(identified["faces"][0]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());

    assert_error(
        server.delete(&format!("/v1/subjects/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_template_thumbnail_is_the_aligned_crop_as_jpeg() {
    let server = start_server().await;
    let enrolment = server
        .enrol("Tony Blair", &[lfw_photo("Tony_Blair", 1)])
        .await;
    let template_id = enrolment["enrolled"][0]["template_id"].as_i64().unwrap();

    let response = server
        .get(&format!("/v1/templates/{template_id}/thumbnail"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(
        decoded.width(),
        decoded.height(),
        "aligned crops are square"
    );

    assert_error(
        server.get("/v1/templates/999999/thumbnail").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn templates_can_be_added_to_and_removed_from_a_subject() {
    let server = start_server().await;
    let enrolment = server
        .enrol("Venus Williams", &[lfw_photo("Venus_Williams", 1)])
        .await;
    let id = enrolment["subject"]["id"].as_i64().unwrap();

    let added = server
        .post_form(
            &format!("/v1/subjects/{id}/templates"),
            image_form(lfw_photo("Venus_Williams", 2), "second.jpg"),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["created"], false);
    assert_eq!(added["subject"]["template_count"], 2);
    let new_template = added["enrolled"][0]["template_id"].as_i64().unwrap();

    let removed = server
        .delete(&format!("/v1/templates/{new_template}"))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        gallery_snapshot(&server).await,
        vec![(
            id,
            vec![enrolment["enrolled"][0]["template_id"].as_i64().unwrap()]
        )]
    );
    assert_error(
        server
            .delete(&format!("/v1/templates/{new_template}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let unknown = server
        .post_form(
            "/v1/subjects/424242/templates",
            image_form(lfw_photo("Venus_Williams", 3), "x.jpg"),
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn an_enrolment_with_one_bad_photo_stores_nothing() {
    let server = start_server().await;
    server
        .enrol("Colin Powell", &[lfw_photo("Colin_Powell", 1)])
        .await;
    let before = gallery_snapshot(&server).await;
    let gallery_before = server.service.gallery_templates();

    // A new subject: a good photo then a faceless one.
    let form = Form::new()
        .text("name", "Tony Blair")
        .part("image", jpeg_part(lfw_photo("Tony_Blair", 1), "good.jpg"))
        .part("image", jpeg_part(grey_png(200, 200), "grey.png"));
    assert_error(
        server.post_form("/v1/subjects", form).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_face",
    )
    .await;

    // An existing subject: a good photo then a corrupt one.
    let existing = before[0].0;
    let form = Form::new()
        .part("image", jpeg_part(lfw_photo("Colin_Powell", 2), "good.jpg"))
        .part("image", jpeg_part(Vec::new(), "empty.jpg"));
    let response = server
        .post_form(&format!("/v1/subjects/{existing}/templates"), form)
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "empty_image").await;

    assert_eq!(gallery_snapshot(&server).await, before);
    assert_eq!(server.service.gallery_templates(), gallery_before);
    let health: Value = server.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["gallery_templates"], gallery_before);
}

#[tokio::test]
async fn enrolment_requires_a_name_and_at_least_one_image() {
    let server = start_server().await;
    let without_name = image_form(lfw_photo("Tony_Blair", 1), "a.jpg");
    assert_error(
        server.post_form("/v1/subjects", without_name).await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    let without_image = Form::new().text("name", "Nobody");
    assert_error(
        server.post_form("/v1/subjects", without_image).await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    assert!(gallery_snapshot(&server).await.is_empty());
}
