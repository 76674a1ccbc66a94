//! The persistence seam. SQLite implements it today; PostgreSQL will implement it later and must
//! pass the same `conformance` suite.

use crate::error::StoreError;
use crate::records::{
    Enrolment, EnrolmentReceipt, Subject, SubjectSummary, TemplateInfo, TemplateRecord,
};
use vigil_audit::NewAuditEntry;
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};

/// Subjects, their face templates and the templates' media. Object safe, so the service holds a
/// `Box<dyn FaceStore>` chosen by configuration.
pub trait FaceStore: Send + Sync {
    /// Adds templates to a subject in one transaction, creating the subject when `ByName` names
    /// none. Either everything is stored or nothing is: a template that fails validation (or
    /// whose dimension differs from existing templates of its model) leaves the store unchanged,
    /// including not creating the subject. Zero templates is `Invalid`.
    fn enroll(&self, enrolment: Enrolment) -> Result<EnrolmentReceipt, StoreError>;

    /// Creates a subject with no templates. A name already in use is `Conflict`.
    fn create_subject(&self, name: &str, notes: Option<String>) -> Result<Subject, StoreError>;

    fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError>;

    /// Looks a subject up by name; the name is trimmed first, as at creation.
    fn subject_by_name(&self, name: &str) -> Result<Option<Subject>, StoreError>;

    /// Subjects in ascending id order (creation order), `limit` at most, after skipping `offset`.
    fn list_subjects(&self, offset: u64, limit: u64) -> Result<Vec<SubjectSummary>, StoreError>;

    /// Renames and/or changes notes; `None` leaves a field as it is, blank notes clear them.
    /// Returns the updated subject. `NotFound` if absent, `Conflict` if the new name is taken.
    fn update_subject(
        &self,
        id: SubjectId,
        name: Option<&str>,
        notes: Option<String>,
    ) -> Result<Subject, StoreError>;

    /// Deletes a subject and all its templates, returning the template ids so the caller can drop
    /// them from the search index. `NotFound` if absent; `Conflict`, naming the entry and its
    /// case, while a watchlist entry not yet removed holds the subject.
    fn delete_subject(&self, id: SubjectId) -> Result<Vec<TemplateId>, StoreError> {
        self.delete_subject_audited(id, None)
    }

    /// As `delete_subject`, writing `audit` in the same transaction: no deletion without its
    /// entry, no entry without its deletion.
    fn delete_subject_audited(
        &self,
        id: SubjectId,
        audit: Option<&NewAuditEntry>,
    ) -> Result<Vec<TemplateId>, StoreError>;

    fn count_subjects(&self) -> Result<u64, StoreError>;

    /// A subject's templates in ascending id order. `NotFound` if the subject is absent.
    fn templates_of(&self, subject: SubjectId) -> Result<Vec<TemplateInfo>, StoreError>;

    fn template(&self, id: TemplateId) -> Result<Option<TemplateRecord>, StoreError>;

    /// The template's JPEG face crop, byte for byte as enrolled.
    fn thumbnail(&self, template: TemplateId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes one template; false if there was none. The subject stays, even with no templates.
    fn delete_template(&self, id: TemplateId) -> Result<bool, StoreError> {
        self.delete_template_audited(id, None)
    }

    /// As `delete_template`, writing `audit` in the same transaction (only if it deleted).
    fn delete_template_audited(
        &self,
        id: TemplateId,
        audit: Option<&NewAuditEntry>,
    ) -> Result<bool, StoreError>;

    /// Every template of one model, in ascending id order, for building the in-memory index at
    /// start-up. Templates of other models are never returned.
    fn templates_for_model(
        &self,
        model: &ModelId,
    ) -> Result<Vec<(TemplateId, SubjectId, Embedding)>, StoreError>;

    fn template_count(&self, model: &ModelId) -> Result<u64, StoreError>;

    /// The schema version of the underlying database (after migrations ran at open).
    fn schema_version(&self) -> Result<u32, StoreError>;
}
