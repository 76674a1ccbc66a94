//! Templates: embeddings, metadata, thumbnails, models kept apart.

use super::{enrol, template};
use crate::face_store::FaceStore;
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};

fn bits(embedding: &Embedding) -> Vec<u32> {
    embedding
        .values()
        .iter()
        .map(|value| value.to_bits())
        .collect()
}

pub fn templates_for_model_keeps_models_apart(store: &dyn FaceStore) {
    let ada = enrol(
        store,
        "Ada",
        vec![template("arcface", 1, 16), template("mobile", 2, 8)],
    );
    let grace = enrol(
        store,
        "Grace",
        vec![template("mobile", 3, 8), template("arcface", 4, 16)],
    );

    let arcface = store.templates_for_model(&ModelId::new("arcface")).unwrap();
    let expected = vec![
        (ada.template_ids[0], ada.subject_id),
        (grace.template_ids[1], grace.subject_id),
    ];
    let found: Vec<(TemplateId, SubjectId)> = arcface
        .iter()
        .map(|(template, subject, _)| (*template, *subject))
        .collect();
    assert_eq!(found, expected);
    for (_, _, embedding) in &arcface {
        assert_eq!(embedding.model(), &ModelId::new("arcface"));
        assert_eq!(embedding.dimension(), 16);
    }

    let mobile = store.templates_for_model(&ModelId::new("mobile")).unwrap();
    assert_eq!(mobile.len(), 2);
    assert!(mobile
        .iter()
        .all(|(_, _, e)| e.model() == &ModelId::new("mobile")));
    assert_eq!(store.template_count(&ModelId::new("arcface")).unwrap(), 2);
    assert_eq!(store.template_count(&ModelId::new("mobile")).unwrap(), 2);
    assert_eq!(store.template_count(&ModelId::new("unknown")).unwrap(), 0);
}

pub fn embeddings_round_trip_bit_exact(store: &dyn FaceStore) {
    let templates: Vec<_> = (10..20)
        .map(|seed| template("arcface", seed, 512))
        .collect();
    let originals: Vec<Embedding> = templates.iter().map(|t| t.embedding.clone()).collect();
    let receipt = enrol(store, "Ada", templates);

    for (id, original) in receipt.template_ids.iter().zip(&originals) {
        let record = store.template(*id).unwrap().unwrap();
        assert_eq!(
            bits(&record.embedding),
            bits(original),
            "template {id} via template()"
        );
        assert_eq!(record.embedding.model(), original.model());
        assert_eq!(record.info.dimension, 512);
    }
    let loaded = store.templates_for_model(&ModelId::new("arcface")).unwrap();
    assert_eq!(loaded.len(), originals.len());
    for ((id, subject, embedding), original) in loaded.iter().zip(&originals) {
        assert_eq!(*subject, receipt.subject_id);
        assert_eq!(
            bits(embedding),
            bits(original),
            "template {id} via templates_for_model()"
        );
    }
}

pub fn template_metadata_round_trips(store: &dyn FaceStore) {
    let mut enrolled = template("m", 7, 8);
    enrolled.quality = 0.123_456_79;
    enrolled.bbox = [-3.25, 0.1, 1919.999, 1080.5];
    let mut unnamed = template("m", 8, 8);
    unnamed.source_name = None;
    let receipt = enrol(store, "Ada", vec![enrolled.clone(), unnamed]);

    let infos = store.templates_of(receipt.subject_id).unwrap();
    let info = &infos[0];
    assert_eq!(info.id, receipt.template_ids[0]);
    assert_eq!(info.subject_id, receipt.subject_id);
    assert_eq!(info.model, ModelId::new("m"));
    assert_eq!(info.dimension, 8);
    assert_eq!(info.quality.to_bits(), enrolled.quality.to_bits());
    assert_eq!(info.detector, enrolled.detector);
    assert_eq!(info.source_sha256, enrolled.source_sha256);
    assert_eq!(info.source_name, enrolled.source_name);
    let bbox_bits = |bbox: [f32; 4]| bbox.map(f32::to_bits);
    assert_eq!(bbox_bits(info.bbox), bbox_bits(enrolled.bbox));
    assert!(info.created_at_ms > 0);
    assert_eq!(infos[1].source_name, None);

    let record = store.template(info.id).unwrap().unwrap();
    assert_eq!(&record.info, info);
}

pub fn thumbnail_round_trips_byte_for_byte(store: &dyn FaceStore) {
    let mut every_byte = template("m", 1, 8);
    every_byte.thumbnail_jpeg = (0..=255u8).cycle().take(70_000).collect();
    let receipt = enrol(store, "Ada", vec![every_byte.clone(), template("m", 2, 8)]);
    assert_eq!(
        store.thumbnail(receipt.template_ids[0]).unwrap().unwrap(),
        every_byte.thumbnail_jpeg
    );
    assert_eq!(
        store.thumbnail(receipt.template_ids[1]).unwrap().unwrap(),
        template("m", 2, 8).thumbnail_jpeg
    );
}

pub fn delete_template_removes_only_that_template(store: &dyn FaceStore) {
    let receipt = enrol(store, "Ada", vec![template("m", 1, 8), template("m", 2, 8)]);
    let [first, second] = [receipt.template_ids[0], receipt.template_ids[1]];

    assert!(store.delete_template(first).unwrap());
    assert!(
        !store.delete_template(first).unwrap(),
        "deleting twice reports absence"
    );
    assert!(store.template(first).unwrap().is_none());
    assert!(store.thumbnail(first).unwrap().is_none());
    assert!(store.template(second).unwrap().is_some());
    assert!(store.thumbnail(second).unwrap().is_some());
    let ids: Vec<TemplateId> = store
        .templates_of(receipt.subject_id)
        .unwrap()
        .iter()
        .map(|info| info.id)
        .collect();
    assert_eq!(ids, vec![second]);

    // The subject outlives its last template and can be enrolled again.
    assert!(store.delete_template(second).unwrap());
    assert!(store.subject(receipt.subject_id).unwrap().is_some());
    assert!(store.templates_of(receipt.subject_id).unwrap().is_empty());
    assert_eq!(store.template_count(&ModelId::new("m")).unwrap(), 0);
    let again = enrol(store, "Ada", vec![template("m", 1, 8)]);
    assert_eq!(again.subject_id, receipt.subject_id);
    assert!(!again.subject_created);
}

pub fn photo_shared_by_two_subjects_survives_deleting_one(store: &dyn FaceStore) {
    // A group photo: two faces from one image, enrolled as two people.
    let mut grace_face = template("m", 2, 8);
    grace_face.source_sha256 = template("m", 1, 8).source_sha256;
    let ada = enrol(store, "Ada", vec![template("m", 1, 8)]);
    let grace = enrol(store, "Grace", vec![grace_face.clone()]);

    store.delete_subject(ada.subject_id).unwrap();
    let remaining = store.templates_of(grace.subject_id).unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].source_sha256, grace_face.source_sha256);

    // And the photo can be used again after every template from it is gone.
    assert!(store.delete_template(grace.template_ids[0]).unwrap());
    enrol(store, "Ada", vec![template("m", 1, 8)]);
}

pub fn schema_version_is_positive(store: &dyn FaceStore) {
    assert!(store.schema_version().unwrap() >= 1);
}
