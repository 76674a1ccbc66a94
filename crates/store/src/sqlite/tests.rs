//! SQLite-specific behaviour the trait cannot see: media rows, pragmas.

use super::*;
use crate::conformance::{enrol, template};

fn media_rows(store: &SqliteStore) -> Vec<String> {
    let connection = store.connection.lock();
    let mut statement = connection
        .prepare("SELECT sha256 FROM media ORDER BY sha256")
        .unwrap();
    let rows = statement.query_map([], |row| row.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn one_photo_enrolled_twice_is_one_media_row() {
    let store = SqliteStore::open_in_memory().unwrap();
    let photo = template("m", 1, 8).source_sha256;
    enrol(
        &store,
        "Ada",
        vec![template("m", 1, 8), template("m", 1, 8)],
    );
    enrol(&store, "Grace", vec![template("m", 1, 8)]);
    assert_eq!(media_rows(&store), vec![photo]);
}

#[test]
fn media_row_goes_with_the_last_template_from_that_photo() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ada = enrol(
        &store,
        "Ada",
        vec![template("m", 1, 8), template("m", 2, 8)],
    );
    let grace = enrol(&store, "Grace", vec![template("m", 2, 8)]);

    store.delete_subject(ada.subject_id).unwrap();
    assert_eq!(media_rows(&store), vec![template("m", 2, 8).source_sha256]);
    store.delete_template(grace.template_ids[0]).unwrap();
    assert!(media_rows(&store).is_empty());
}

#[test]
fn failed_enrolment_leaves_no_media_row() {
    let store = SqliteStore::open_in_memory().unwrap();
    let result = store.enroll(Enrolment {
        subject: SubjectRef::ByName("Ada".into()),
        notes: None,
        templates: vec![template("m", 1, 8), template("m", 2, 16)],
        audit: None,
    });
    assert!(matches!(result, Err(StoreError::Invalid(_))));
    assert!(media_rows(&store).is_empty());
}

#[test]
fn on_disk_store_uses_wal_and_enforces_foreign_keys() {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(directory.path().join("nested/dir/vigil.db")).unwrap();
    let connection = store.connection.lock();
    let journal_mode: String = connection
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let foreign_keys: i64 = connection
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert_eq!(foreign_keys, 1);
    // A template pointing at no subject must be refused by the database itself.
    let orphan = connection.execute(
        "INSERT INTO templates (subject_id, model, dimension, embedding, quality, detector, \
         source_media, bbox_x1, bbox_y1, bbox_x2, bbox_y2, created_at_ms) \
         VALUES (999, 'm', 1, x'0000803f', 1, 'd', 'x', 0, 0, 1, 1, 0)",
        [],
    );
    assert!(orphan.is_err());
}
