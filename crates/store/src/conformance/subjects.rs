//! Subjects: names, updates, deletes, listing.

use super::{enrol, template};
use crate::error::StoreError;
use crate::face_store::FaceStore;
use crate::records::MAX_SUBJECT_NAME_CHARS;
use vigil_base::{ModelId, SubjectId, TemplateId};

pub fn subject_names_are_trimmed_and_unique(store: &dyn FaceStore) {
    let created = store.create_subject("  Ada Lovelace  ", None).unwrap();
    assert_eq!(created.name, "Ada Lovelace");
    assert!(created.created_at_ms > 0);
    assert_eq!(store.subject(created.id).unwrap().unwrap(), created);
    assert_eq!(
        store.subject_by_name(" Ada Lovelace\n").unwrap().unwrap(),
        created
    );

    let duplicate = store.create_subject("Ada Lovelace\t", Some("again".into()));
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
    assert_eq!(store.count_subjects().unwrap(), 1);
    assert_eq!(store.subject(created.id).unwrap().unwrap().notes, None);
}

pub fn invalid_subject_names_are_refused(store: &dyn FaceStore) {
    let too_long = "x".repeat(MAX_SUBJECT_NAME_CHARS + 1);
    for name in ["", "   ", "\t\n", too_long.as_str(), "line\nbreak"] {
        let result = store.create_subject(name, None);
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{name:?}: {result:?}"
        );
    }
    assert_eq!(store.count_subjects().unwrap(), 0);
    let longest = "x".repeat(MAX_SUBJECT_NAME_CHARS);
    assert_eq!(store.create_subject(&longest, None).unwrap().name, longest);
}

pub fn update_subject_changes_only_given_fields(store: &dyn FaceStore) {
    let original = store
        .create_subject("Ada", Some("mathematician".into()))
        .unwrap();

    let renamed = store
        .update_subject(original.id, Some(" Ada L. "), None)
        .unwrap();
    assert_eq!(renamed.name, "Ada L.");
    assert_eq!(renamed.notes.as_deref(), Some("mathematician"));
    assert_eq!(renamed.created_at_ms, original.created_at_ms);
    assert_eq!(store.subject(original.id).unwrap().unwrap(), renamed);
    assert!(store.subject_by_name("Ada").unwrap().is_none());

    let renoted = store
        .update_subject(original.id, None, Some("poet".into()))
        .unwrap();
    assert_eq!(renoted.name, "Ada L.");
    assert_eq!(renoted.notes.as_deref(), Some("poet"));

    let cleared = store
        .update_subject(original.id, None, Some("  ".into()))
        .unwrap();
    assert_eq!(cleared.notes, None);
    assert_eq!(store.subject(original.id).unwrap().unwrap().notes, None);

    let missing = store.update_subject(SubjectId(original.id.0 + 100), Some("X"), None);
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let blank = store.update_subject(original.id, Some(" "), None);
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");
}

pub fn rename_to_taken_name_conflicts_and_changes_nothing(store: &dyn FaceStore) {
    let ada = store.create_subject("Ada", None).unwrap();
    let grace = store.create_subject("Grace", None).unwrap();
    let result = store.update_subject(grace.id, Some("Ada"), Some("new notes".into()));
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.subject(grace.id).unwrap().unwrap(), grace);
    assert_eq!(store.subject(ada.id).unwrap().unwrap(), ada);
    // Renaming a subject to its own name is not a conflict.
    assert_eq!(
        store.update_subject(ada.id, Some("Ada"), None).unwrap(),
        ada
    );
}

pub fn delete_subject_cascades_and_returns_its_template_ids(store: &dyn FaceStore) {
    let ada = enrol(
        store,
        "Ada",
        vec![
            template("m", 1, 8),
            template("m", 2, 8),
            template("n", 3, 4),
        ],
    );
    let grace = enrol(store, "Grace", vec![template("m", 4, 8)]);

    let mut deleted = store.delete_subject(ada.subject_id).unwrap();
    deleted.sort();
    assert_eq!(deleted, ada.template_ids);

    assert!(store.subject(ada.subject_id).unwrap().is_none());
    assert!(store.subject_by_name("Ada").unwrap().is_none());
    for id in &ada.template_ids {
        assert!(
            store.template(*id).unwrap().is_none(),
            "template {id} outlived its subject"
        );
        assert!(
            store.thumbnail(*id).unwrap().is_none(),
            "thumbnail {id} outlived its subject"
        );
    }
    let remaining: Vec<TemplateId> = store
        .templates_for_model(&ModelId::new("m"))
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(remaining, grace.template_ids);
    assert_eq!(store.template_count(&ModelId::new("n")).unwrap(), 0);
    assert_eq!(store.templates_of(grace.subject_id).unwrap().len(), 1);
    assert_eq!(store.count_subjects().unwrap(), 1);

    let again = store.delete_subject(ada.subject_id);
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    // The name is free again, and a new subject with it starts empty.
    let returned = enrol(store, "Ada", vec![template("m", 5, 8)]);
    assert!(returned.subject_created);
    assert_eq!(store.templates_of(returned.subject_id).unwrap().len(), 1);
}

pub fn list_subjects_pages_in_creation_order_with_summaries(store: &dyn FaceStore) {
    let names = ["s0", "s1", "s2", "s3", "s4"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(store.create_subject(name, None).unwrap().id);
    }
    enrol(
        store,
        "s1",
        vec![
            template("b", 1, 4),
            template("a", 2, 8),
            template("b", 3, 4),
        ],
    );

    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let page = store.list_subjects(offset, 2).unwrap();
        assert_eq!(page.len(), if offset == 4 { 1 } else { 2 });
        seen.extend(page);
    }
    let seen_ids: Vec<SubjectId> = seen.iter().map(|summary| summary.subject.id).collect();
    assert_eq!(seen_ids, ids);
    assert_eq!(seen[1].template_count, 3);
    assert_eq!(seen[1].models, vec![ModelId::new("a"), ModelId::new("b")]);
    assert_eq!(seen[0].template_count, 0);
    assert!(seen[0].models.is_empty());

    assert!(store.list_subjects(5, 10).unwrap().is_empty());
    assert!(store.list_subjects(0, 0).unwrap().is_empty());
    assert_eq!(store.list_subjects(0, u64::MAX).unwrap().len(), 5);
    assert!(store.list_subjects(u64::MAX, u64::MAX).unwrap().is_empty());
    assert_eq!(store.count_subjects().unwrap(), 5);
}

pub fn missing_ids_read_as_none_or_not_found(store: &dyn FaceStore) {
    assert!(store.subject(SubjectId(1)).unwrap().is_none());
    assert!(store.subject_by_name("nobody").unwrap().is_none());
    assert!(store.template(TemplateId(1)).unwrap().is_none());
    assert!(store.thumbnail(TemplateId(1)).unwrap().is_none());
    assert!(!store.delete_template(TemplateId(1)).unwrap());
    let templates = store.templates_of(SubjectId(1));
    assert!(
        matches!(templates, Err(StoreError::NotFound(_))),
        "{templates:?}"
    );
    assert!(store
        .templates_for_model(&ModelId::new("m"))
        .unwrap()
        .is_empty());
    assert_eq!(store.template_count(&ModelId::new("m")).unwrap(), 0);
}
