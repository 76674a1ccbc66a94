//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes.

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::forms::{EnrolmentForm, ImageForm, TemplatesForm, VerifyForm};
use crate::routes::system::Health;
use crate::routes::video::CameraView;
use crate::routes::{access, cases, faces, subjects, system, video};
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
        video::list_cameras,
        video::add_camera,
        video::show_camera,
        video::replace_camera,
        video::delete_camera,
        video::enable_camera,
        video::disable_camera,
        video::list_sightings,
        video::show_sighting,
        video::sighting_crop,
        video::sighting_recording,
        video::sighting_clip,
        video::sighting_stream,
        access::login,
        access::logout,
        access::me,
        access::list_users,
        access::create_user,
        access::issue_token,
        access::audit_entries,
        access::audit_verify,
        cases::open_case,
        cases::list_cases,
        cases::close_case,
        cases::search,
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
        CameraView,
        vigil_base::CameraConfig,
        vigil_base::CameraId,
        vigil_base::camera::RtspTransport,
        vigil_base::camera::Polygon,
        vigil_base::camera::RetentionLimits,
        vigil_pipeline::video::SightingView,
        vigil_pipeline::video::SightingCandidateView,
        access::LoginBody,
        access::LoginReply,
        access::Me,
        access::NewUserBody,
        access::NewTokenBody,
        cases::NewCaseBody,
        vigil_pipeline::video::SearchReport,
        vigil_pipeline::video::SearchHit,
    )),
    tags(
        (name = "faces", description = "Detection, 1:1 verification and 1:N identification"),
        (name = "subjects", description = "The enrolled gallery"),
        (name = "system", description = "Health, metrics and this document"),
        (name = "access", description = "Login, users, tokens and the audit log. Every route but /healthz and /v1/login needs `Authorization: Bearer <token or session>`"),
        (name = "cases", description = "Cases (purpose, legal basis, owner, expiry) and the retrospective search that must name an open one"),
        (name = "video", description = "Cameras, sightings, recordings and the live sighting stream"),
    )
)]
pub struct ApiDoc;
