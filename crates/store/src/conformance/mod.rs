//! The behaviour every `FaceStore` implementation must show. SQLite runs it in
//! `tests/sqlite_conformance.rs`; a PostgreSQL store will run the same `run_all`.
//!
//! Each check gets a fresh, empty store from `make_store` and panics on a violation.

mod enrolment;
mod subjects;
mod templates;

use crate::face_store::FaceStore;
use crate::records::{Enrolment, EnrolmentReceipt, NewTemplate, SubjectRef};
use vigil_base::{Embedding, ModelId};

type Check = fn(&dyn FaceStore);

/// Every check, by the behaviour it protects.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "enrolment_creates_subject_and_returns_template_ids_in_order",
        enrolment::enrolment_creates_subject_and_returns_template_ids_in_order,
    ),
    (
        "enrolment_by_trimmed_name_reuses_existing_subject",
        enrolment::enrolment_by_trimmed_name_reuses_existing_subject,
    ),
    (
        "enrolment_with_mismatched_dimensions_stores_nothing",
        enrolment::enrolment_with_mismatched_dimensions_stores_nothing,
    ),
    (
        "enrolment_disagreeing_with_stored_dimension_stores_nothing",
        enrolment::enrolment_disagreeing_with_stored_dimension_stores_nothing,
    ),
    (
        "enrolment_with_one_invalid_template_stores_nothing",
        enrolment::enrolment_with_one_invalid_template_stores_nothing,
    ),
    (
        "enrolment_without_templates_is_invalid",
        enrolment::enrolment_without_templates_is_invalid,
    ),
    (
        "enrolment_by_unknown_id_is_not_found",
        enrolment::enrolment_by_unknown_id_is_not_found,
    ),
    (
        "enrolment_notes_apply_only_when_creating_the_subject",
        enrolment::enrolment_notes_apply_only_when_creating_the_subject,
    ),
    (
        "subject_names_are_trimmed_and_unique",
        subjects::subject_names_are_trimmed_and_unique,
    ),
    (
        "invalid_subject_names_are_refused",
        subjects::invalid_subject_names_are_refused,
    ),
    (
        "update_subject_changes_only_given_fields",
        subjects::update_subject_changes_only_given_fields,
    ),
    (
        "rename_to_taken_name_conflicts_and_changes_nothing",
        subjects::rename_to_taken_name_conflicts_and_changes_nothing,
    ),
    (
        "delete_subject_cascades_and_returns_its_template_ids",
        subjects::delete_subject_cascades_and_returns_its_template_ids,
    ),
    (
        "list_subjects_pages_in_creation_order_with_summaries",
        subjects::list_subjects_pages_in_creation_order_with_summaries,
    ),
    (
        "missing_ids_read_as_none_or_not_found",
        subjects::missing_ids_read_as_none_or_not_found,
    ),
    (
        "templates_for_model_keeps_models_apart",
        templates::templates_for_model_keeps_models_apart,
    ),
    (
        "embeddings_round_trip_bit_exact",
        templates::embeddings_round_trip_bit_exact,
    ),
    (
        "template_metadata_round_trips",
        templates::template_metadata_round_trips,
    ),
    (
        "thumbnail_round_trips_byte_for_byte",
        templates::thumbnail_round_trips_byte_for_byte,
    ),
    (
        "delete_template_removes_only_that_template",
        templates::delete_template_removes_only_that_template,
    ),
    (
        "photo_shared_by_two_subjects_survives_deleting_one",
        templates::photo_shared_by_two_subjects_survives_deleting_one,
    ),
    (
        "schema_version_is_positive",
        templates::schema_version_is_positive,
    ),
];

/// Runs every check in `CHECKS`, each against a fresh store from `make_store`.
pub fn run_all(make_store: &dyn Fn() -> Box<dyn FaceStore>) {
    for (name, check) in CHECKS {
        // Printed so a failing assertion is attributed to its check in the test output.
        eprintln!("conformance check: {name}");
        let store = make_store();
        check(store.as_ref());
    }
}

/// A deterministic, well-spread vector: the checks must be reproducible without a rand crate.
pub fn pseudo_random_values(seed: u64, dimension: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dimension)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn embedding(model: &str, seed: u64, dimension: usize) -> Embedding {
    Embedding::normalised(ModelId::new(model), pseudo_random_values(seed, dimension))
        .expect("pseudo-random vectors are finite and non-zero")
}

/// A valid template whose fields all derive from `seed`, so round trips can be compared.
pub fn template(model: &str, seed: u64, dimension: usize) -> NewTemplate {
    NewTemplate {
        embedding: embedding(model, seed, dimension),
        quality: 0.5 + (seed % 50) as f32 / 100.0,
        detector: "scrfd_2.5g".into(),
        source_sha256: format!("{seed:064x}"),
        source_name: Some(format!("photo-{seed}.jpg")),
        thumbnail_jpeg: vec![0xFF, 0xD8, 0xFF, (seed % 256) as u8, 0xFF, 0xD9],
        bbox: [seed as f32, 2.5, 100.25 + seed as f32, 120.75],
    }
}

pub fn enrol(store: &dyn FaceStore, name: &str, templates: Vec<NewTemplate>) -> EnrolmentReceipt {
    store
        .enroll(Enrolment {
            subject: SubjectRef::ByName(name.into()),
            notes: None,
            templates,
            audit: None,
        })
        .expect("a valid enrolment succeeds")
}
