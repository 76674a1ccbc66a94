//! Enrolment and deletion are written with their audit entry in one transaction: no change
//! without its entry, no entry without its change.

use vigil_audit::{Actor, AuditAction, AuditFilter, NewAuditEntry, Outcome, Target};
use vigil_store::conformance::template;
use vigil_store::{Enrolment, FaceStore, SqliteStore, SubjectRef};

fn entry(user: &str, action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: user.into(),
        },
        action,
        target: Target {
            kind: "subject".into(),
            id: "Ada".into(),
        },
        case_ref: None,
        reason: "test".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

fn logged(store: &SqliteStore, action: AuditAction) -> Vec<vigil_audit::AuditRecord> {
    store
        .with_connection(|connection| {
            vigil_audit::entries(
                connection,
                &AuditFilter {
                    action: Some(action),
                    ..AuditFilter::default()
                },
            )
        })
        .unwrap()
}

#[test]
fn an_enrolment_or_deletion_whose_entry_cannot_be_written_does_not_happen() {
    let store = SqliteStore::open_in_memory().unwrap();
    // A blank actor is refused by the log, so the enrolment must roll back with it.
    let refused = store.enroll(Enrolment {
        subject: SubjectRef::ByName("Ada".into()),
        notes: None,
        templates: vec![template("m", 1, 8)],
        audit: Some(entry(" ", AuditAction::Enrol)),
    });
    assert!(refused.is_err());
    assert_eq!(store.count_subjects().unwrap(), 0);
    assert!(logged(&store, AuditAction::Enrol).is_empty());

    let receipt = store
        .enroll(Enrolment {
            subject: SubjectRef::ByName("Ada".into()),
            notes: None,
            templates: vec![template("m", 1, 8), template("m", 2, 8)],
            audit: Some(entry("alice", AuditAction::Enrol)),
        })
        .unwrap();
    let enrolled = logged(&store, AuditAction::Enrol);
    assert_eq!(enrolled.len(), 1);
    assert_eq!(enrolled[0].request["subject_id"], receipt.subject_id.0);
    assert_eq!(
        enrolled[0].request["template_ids"],
        serde_json::json!(receipt.template_ids.iter().map(|t| t.0).collect::<Vec<_>>())
    );

    // Deleting a template or the subject: refused entry, nothing deleted; valid entry, both.
    assert!(store
        .delete_template_audited(
            receipt.template_ids[0],
            Some(&entry(" ", AuditAction::Delete))
        )
        .is_err());
    assert_eq!(store.templates_of(receipt.subject_id).unwrap().len(), 2);
    assert!(store
        .delete_template_audited(
            receipt.template_ids[0],
            Some(&entry("bob", AuditAction::Delete))
        )
        .unwrap());
    assert!(store
        .delete_subject_audited(receipt.subject_id, Some(&entry(" ", AuditAction::Delete)))
        .is_err());
    assert_eq!(store.count_subjects().unwrap(), 1);
    store
        .delete_subject_audited(receipt.subject_id, Some(&entry("bob", AuditAction::Delete)))
        .unwrap();
    assert_eq!(store.count_subjects().unwrap(), 0);
    let deleted = logged(&store, AuditAction::Delete);
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[1].request["templates_removed"], 1);
}

/// A full disk is said as such when the write that fails is the audit entry (issue 13 §3): the
/// API answers 507 `storage_full` for an audited read it cannot account for, not a generic 500.
/// The database is capped at its size (`max_page_count`), so growing it fails with SQLITE_FULL.
#[test]
fn an_audit_entry_that_does_not_fit_is_storage_full() {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(directory.path().join("vigil.db")).unwrap();
    store.with_connection(|connection| {
        let pages: i64 = connection
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        connection
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .unwrap();
    });
    let mut search = entry("ivy", AuditAction::Search);
    search.probe_image = Some(vec![0x5A; 64 * 1024]);
    match store.audit(&search) {
        Err(vigil_store::StoreError::StorageFull(detail)) => {
            assert!(detail.contains("audit log"), "{detail}")
        }
        other => panic!("expected storage full, got {other:?}"),
    }
    assert!(logged(&store, AuditAction::Search).is_empty());
}
