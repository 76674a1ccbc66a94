//! What must hold across process lifetimes: data survives reopen, schemas upgrade, newer schemas
//! are refused.

use rusqlite::Connection;
use std::path::Path;
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};
use vigil_store::conformance::{pseudo_random_values, template};
use vigil_store::{
    Enrolment, FaceStore, SqliteStore, StoreError, SubjectRef, LATEST_SCHEMA_VERSION,
};

const SCHEMA_V1_FIXTURE: &str = include_str!("fixtures/schema_v1.sql");

fn write_v1_database(path: &Path) {
    let connection = Connection::open(path).unwrap();
    connection.execute_batch(SCHEMA_V1_FIXTURE).unwrap();
}

#[test]
fn data_survives_close_and_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vigil.db");
    let (receipt, deleted_template) = {
        let store = SqliteStore::open(&path).unwrap();
        let receipt = store
            .enroll(Enrolment {
                subject: SubjectRef::ByName("Ada".into()),
                notes: Some("kept".into()),
                templates: vec![
                    template("m", 1, 64),
                    template("m", 2, 64),
                    template("m", 3, 64),
                ],
                audit: None,
            })
            .unwrap();
        store.create_subject("Grace", None).unwrap();
        assert!(store.delete_template(receipt.template_ids[2]).unwrap());
        let deleted_template = receipt.template_ids[2];
        (receipt, deleted_template)
    };

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_SCHEMA_VERSION);
    let ada = store.subject(receipt.subject_id).unwrap().unwrap();
    assert_eq!(ada.name, "Ada");
    assert_eq!(ada.notes.as_deref(), Some("kept"));
    assert!(store.subject_by_name("Grace").unwrap().is_some());
    assert_eq!(store.count_subjects().unwrap(), 2);
    let loaded = store.templates_for_model(&ModelId::new("m")).unwrap();
    let loaded_ids: Vec<TemplateId> = loaded.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(loaded_ids, receipt.template_ids[..2]);
    assert_eq!(loaded[1].2, template("m", 2, 64).embedding);
    assert!(store.template(deleted_template).unwrap().is_none());
    assert_eq!(
        store.thumbnail(receipt.template_ids[0]).unwrap().unwrap(),
        template("m", 1, 64).thumbnail_jpeg
    );
}

fn fixture_embedding(model: &str, values: &[f32]) -> Embedding {
    Embedding::normalised(ModelId::new(model), values.to_vec()).unwrap()
}

#[test]
fn version_1_database_upgrades_and_keeps_every_row() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("v1.db");
    write_v1_database(&path);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_SCHEMA_VERSION);

    let subjects = store.list_subjects(0, 100).unwrap();
    let names: Vec<&str> = subjects.iter().map(|s| s.subject.name.as_str()).collect();
    assert_eq!(names, ["Ada Lovelace", "Grace Hopper", "No Templates Yet"]);
    let ada = &subjects[0];
    assert_eq!(ada.subject.id, SubjectId(1));
    assert_eq!(ada.subject.notes.as_deref(), Some("mathematician"));
    assert_eq!(ada.subject.created_at_ms, 1_700_000_000_000);
    assert_eq!(ada.template_count, 2);
    assert_eq!(
        subjects[1].models,
        [ModelId::new("arcface_r100"), ModelId::new("w600k_mbf")]
    );
    assert_eq!(subjects[2].template_count, 0);

    let group_photo = "a".repeat(64);
    let first = store.template(TemplateId(1)).unwrap().unwrap();
    assert_eq!(first.info.subject_id, SubjectId(1));
    assert_eq!(first.info.quality, 0.875);
    assert_eq!(first.info.detector, "scrfd_2.5g");
    assert_eq!(first.info.source_sha256, group_photo);
    assert_eq!(first.info.source_name.as_deref(), Some("group.jpg"));
    assert_eq!(first.info.bbox, [10.5, 20.0, 110.5, 140.0]);
    assert_eq!(first.info.created_at_ms, 1_700_000_000_100);
    assert_eq!(
        first.embedding,
        fixture_embedding("w600k_mbf", &[1.0, 0.0, 0.0, 0.0])
    );

    let mbf = store
        .templates_for_model(&ModelId::new("w600k_mbf"))
        .unwrap();
    let expected = [
        (TemplateId(1), SubjectId(1), [1.0, 0.0, 0.0, 0.0]),
        (TemplateId(2), SubjectId(1), [0.5, 0.5, 0.5, 0.5]),
        (TemplateId(3), SubjectId(2), [0.5, -0.5, 0.5, -0.5]),
    ];
    assert_eq!(mbf.len(), expected.len());
    for ((id, subject, embedding), (expected_id, expected_subject, values)) in
        mbf.iter().zip(expected)
    {
        assert_eq!((*id, *subject), (expected_id, expected_subject));
        assert_eq!(embedding.values(), values);
    }
    let arcface = store
        .templates_for_model(&ModelId::new("arcface_r100"))
        .unwrap();
    assert_eq!(arcface.len(), 1);
    assert_eq!(
        arcface[0].0,
        TemplateId(5),
        "the id gap left by a deletion survives"
    );
    assert_eq!(arcface[0].2.values(), [0.0, 1.0]);
    assert_eq!(
        store.templates_of(SubjectId(2)).unwrap()[0].source_sha256,
        group_photo
    );

    for (id, marker) in [(1, 1u8), (2, 2), (3, 3), (5, 5)] {
        let thumbnail = store.thumbnail(TemplateId(id)).unwrap().unwrap();
        assert_eq!(
            thumbnail,
            [0xff, 0xd8, 0xff, marker, 0xff, 0xd9],
            "thumbnail {id}"
        );
    }

    // The upgraded database keeps its invariants for new writes: the stored dimension of a model
    // still binds new enrolments, and new ids continue after the old ones.
    let wrong_dimension = store.enroll(Enrolment {
        subject: SubjectRef::ById(SubjectId(3)),
        notes: None,
        templates: vec![template("w600k_mbf", 9, 8)],
        audit: None,
    });
    assert!(
        matches!(wrong_dimension, Err(StoreError::Invalid(_))),
        "{wrong_dimension:?}"
    );
    let receipt = store
        .enroll(Enrolment {
            subject: SubjectRef::ById(SubjectId(3)),
            notes: None,
            templates: vec![template("w600k_mbf", 9, 4)],
            audit: None,
        })
        .unwrap();
    assert!(receipt.template_ids[0] > TemplateId(5));
    let mut deleted = store.delete_subject(SubjectId(1)).unwrap();
    deleted.sort();
    assert_eq!(deleted, [TemplateId(1), TemplateId(2)]);
    assert!(
        store.template(TemplateId(3)).unwrap().is_some(),
        "shared photo stays for Grace"
    );
}

#[test]
fn version_1_media_rows_are_deduplicated_by_photo() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("v1.db");
    write_v1_database(&path);
    drop(SqliteStore::open(&path).unwrap());

    let connection = Connection::open(&path).unwrap();
    let media: Vec<(String, i64)> = connection
        .prepare("SELECT sha256, first_seen_at_ms FROM media ORDER BY sha256")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        media,
        [
            ("a".repeat(64), 1_700_000_000_100),
            ("b".repeat(64), 1_700_000_000_200),
            ("c".repeat(64), 1_700_000_001_200),
        ]
    );
    let violations: i64 = connection
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(violations, 0);
}

#[test]
fn database_from_a_newer_version_is_refused_and_left_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = LATEST_SCHEMA_VERSION + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();

    match SqliteStore::open(&path) {
        Err(StoreError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (newer, LATEST_SCHEMA_VERSION));
        }
        Err(other) => panic!("expected NewerSchema, got {other}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
    let version: u32 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, newer);
}

#[test]
fn failed_migration_leaves_database_at_previous_version() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("broken.db");
    write_v1_database(&path);
    // A v1 row that v2 cannot hold: the media table requires a 64-character sha256.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE templates SET source_sha256 = 'short' WHERE id = 2",
            [],
        )
        .unwrap();

    let result = SqliteStore::open(&path);
    assert!(
        matches!(result, Err(StoreError::Migration(_))),
        "{:?}",
        result.err()
    );
    let connection = Connection::open(&path).unwrap();
    let version: u32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 1);
    let templates: i64 = connection
        .query_row("SELECT count(*) FROM templates", [], |row| row.get(0))
        .unwrap();
    assert_eq!(templates, 4);
    let media_table: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'media'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(media_table, 0, "the half-applied migration was rolled back");
}

#[test]
fn start_up_load_reads_many_templates_in_id_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let templates: Vec<_> = (0..2_000).map(|seed| template("m", seed, 128)).collect();
    let receipt = store
        .enroll(Enrolment {
            subject: SubjectRef::ByName("Crowd".into()),
            notes: None,
            templates,
            audit: None,
        })
        .unwrap();
    let loaded = store.templates_for_model(&ModelId::new("m")).unwrap();
    let loaded_ids: Vec<TemplateId> = loaded.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(loaded_ids, receipt.template_ids);
    let last = &loaded[1_999].2;
    let expected = Embedding::normalised(ModelId::new("m"), pseudo_random_values(1_999, 128));
    assert_eq!(last, &expected.unwrap());
}
