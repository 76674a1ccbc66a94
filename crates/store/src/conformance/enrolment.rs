//! Enrolment: one transaction, all or nothing.

use super::{enrol, template};
use crate::error::StoreError;
use crate::face_store::FaceStore;
use crate::records::{Enrolment, SubjectRef};
use vigil_base::{ModelId, SubjectId};

/// Asserts the store holds no subjects and no templates of `models`.
fn assert_empty(store: &dyn FaceStore, models: &[&str]) {
    assert_eq!(store.count_subjects().unwrap(), 0, "no subject may survive");
    assert!(store.list_subjects(0, 100).unwrap().is_empty());
    for model in models {
        let model = ModelId::new(*model);
        assert_eq!(
            store.template_count(&model).unwrap(),
            0,
            "no template may survive"
        );
        assert!(store.templates_for_model(&model).unwrap().is_empty());
    }
}

pub fn enrolment_creates_subject_and_returns_template_ids_in_order(store: &dyn FaceStore) {
    let receipt = enrol(
        store,
        "Ada",
        vec![
            template("m", 1, 8),
            template("m", 2, 8),
            template("m", 3, 8),
        ],
    );
    assert!(receipt.subject_created);
    assert_eq!(receipt.template_ids.len(), 3);
    let subject = store.subject(receipt.subject_id).unwrap().unwrap();
    assert_eq!(subject.name, "Ada");
    let stored = store.templates_of(receipt.subject_id).unwrap();
    let stored_ids: Vec<_> = stored.iter().map(|info| info.id).collect();
    assert_eq!(stored_ids, receipt.template_ids);
    // The receipt's order is the enrolment's order: template i came from photo i.
    for (seed, info) in (1u64..).zip(&stored) {
        assert_eq!(info.source_sha256, format!("{seed:064x}"));
        assert_eq!(info.subject_id, receipt.subject_id);
    }
}

pub fn enrolment_by_trimmed_name_reuses_existing_subject(store: &dyn FaceStore) {
    let first = enrol(store, "Grace Hopper", vec![template("m", 1, 8)]);
    let second = enrol(store, "  Grace Hopper\t", vec![template("m", 2, 8)]);
    assert!(first.subject_created);
    assert!(!second.subject_created);
    assert_eq!(first.subject_id, second.subject_id);
    assert_eq!(store.count_subjects().unwrap(), 1);
    assert_eq!(store.templates_of(first.subject_id).unwrap().len(), 2);

    let by_id = store
        .enroll(Enrolment {
            subject: SubjectRef::ById(first.subject_id),
            notes: None,
            templates: vec![template("m", 3, 8)],
            audit: None,
        })
        .unwrap();
    assert!(!by_id.subject_created);
    assert_eq!(store.templates_of(first.subject_id).unwrap().len(), 3);
}

pub fn enrolment_with_mismatched_dimensions_stores_nothing(store: &dyn FaceStore) {
    let result = store.enroll(Enrolment {
        subject: SubjectRef::ByName("Ada".into()),
        notes: Some("should not survive".into()),
        templates: vec![template("m", 1, 8), template("m", 2, 16)],
        audit: None,
    });
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_empty(store, &["m"]);
    assert!(store.subject_by_name("Ada").unwrap().is_none());
}

pub fn enrolment_disagreeing_with_stored_dimension_stores_nothing(store: &dyn FaceStore) {
    let existing = enrol(store, "Ada", vec![template("m", 1, 8)]);
    let result = store.enroll(Enrolment {
        subject: SubjectRef::ByName("Grace".into()),
        notes: None,
        templates: vec![template("other", 2, 16), template("m", 3, 16)],
        audit: None,
    });
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert!(store.subject_by_name("Grace").unwrap().is_none());
    assert_eq!(store.count_subjects().unwrap(), 1);
    assert_eq!(store.template_count(&ModelId::new("other")).unwrap(), 0);
    assert_eq!(store.template_count(&ModelId::new("m")).unwrap(), 1);
    assert_eq!(store.templates_of(existing.subject_id).unwrap().len(), 1);
}

pub fn enrolment_with_one_invalid_template_stores_nothing(store: &dyn FaceStore) {
    let mut bad_sha = template("m", 2, 8);
    bad_sha.source_sha256 = "not-a-sha".into();
    let mut empty_thumbnail = template("m", 3, 8);
    empty_thumbnail.thumbnail_jpeg.clear();
    let mut infinite_quality = template("m", 4, 8);
    infinite_quality.quality = f32::INFINITY;
    for bad in [bad_sha, empty_thumbnail, infinite_quality] {
        let result = store.enroll(Enrolment {
            subject: SubjectRef::ByName("Ada".into()),
            notes: None,
            templates: vec![template("m", 1, 8), bad],
            audit: None,
        });
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
        assert_empty(store, &["m"]);
    }
}

pub fn enrolment_without_templates_is_invalid(store: &dyn FaceStore) {
    let result = store.enroll(Enrolment {
        subject: SubjectRef::ByName("Ada".into()),
        notes: None,
        templates: Vec::new(),
        audit: None,
    });
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_empty(store, &[]);
}

pub fn enrolment_by_unknown_id_is_not_found(store: &dyn FaceStore) {
    let result = store.enroll(Enrolment {
        subject: SubjectRef::ById(SubjectId(4242)),
        notes: None,
        templates: vec![template("m", 1, 8)],
        audit: None,
    });
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    assert_empty(store, &["m"]);
}

pub fn enrolment_notes_apply_only_when_creating_the_subject(store: &dyn FaceStore) {
    let created = store
        .enroll(Enrolment {
            subject: SubjectRef::ByName("Ada".into()),
            notes: Some("  first notes ".into()),
            templates: vec![template("m", 1, 8)],
            audit: None,
        })
        .unwrap();
    store
        .enroll(Enrolment {
            subject: SubjectRef::ByName("Ada".into()),
            notes: Some("ignored".into()),
            templates: vec![template("m", 2, 8)],
            audit: None,
        })
        .unwrap();
    let subject = store.subject(created.subject_id).unwrap().unwrap();
    assert_eq!(subject.notes.as_deref(), Some("first notes"));
}
