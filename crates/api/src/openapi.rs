//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes.

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::forms::{EnrolmentForm, ImageForm, TemplatesForm, VerifyForm};
use crate::routes::system::Health;
use crate::routes::{faces, subjects, system};
use utoipa::OpenApi;
use vigil_pipeline::{
    Candidate, DetectionReport, EnrolledImage, EnrolmentReport, FaceReport, IdentifiedFace,
    IdentifyReport, QualityReport, SubjectDetail, SubjectView, TemplateView, VerifyReport,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vigil",
        description = "Accountable face search: every score comes with its calibrated false-match rate. \
                       Errors are `{\"error\":{\"code\",\"message\"}}` with a stable `code`."
    ),
    paths(
        system::healthz,
        system::metrics,
        system::openapi,
        faces::detect,
        faces::verify,
        faces::identify,
        subjects::list_subjects,
        subjects::create_subject,
        subjects::show_subject,
        subjects::add_templates,
        subjects::delete_subject,
        subjects::delete_template,
        subjects::template_thumbnail,
    ),
    components(schemas(
        Health,
        ErrorBody,
        ErrorDetail,
        ImageForm,
        VerifyForm,
        EnrolmentForm,
        TemplatesForm,
        DetectionReport,
        FaceReport,
        QualityReport,
        VerifyReport,
        IdentifyReport,
        IdentifiedFace,
        Candidate,
        SubjectView,
        SubjectDetail,
        TemplateView,
        EnrolmentReport,
        EnrolledImage,
    )),
    tags(
        (name = "faces", description = "Detection, 1:1 verification and 1:N identification"),
        (name = "subjects", description = "The enrolled gallery"),
        (name = "system", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;
