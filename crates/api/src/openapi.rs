//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes.

use crate::access::{Auditing, CASE_SCOPED_ROUTES, ROUTE_PERMISSIONS};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::forms::{EnrolmentForm, ImageForm, TemplatesForm, VerifyForm, WatchEntryForm};
use crate::routes::system::Health;
use crate::routes::video::CameraView;
use crate::routes::{access, cases, faces, misuse, reports, subjects, system, video, watchlists};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::Required;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi};
use vigil_pipeline::{
    Candidate, DetectionReport, EnrolledImage, EnrolmentReport, FaceReport, IdentifiedFace,
    IdentifyReport, QualityReport, SubjectDetail, SubjectView, TemplateView, VerifyReport,
};

#[derive(OpenApi)]
#[openapi(
    modifiers(&SharedFailures),
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
        video::live_picture,
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
        crate::routes::evidence::export_evidence,
        cases::search,
        watchlists::create_watchlist,
        watchlists::list_watchlists,
        watchlists::add_entry,
        watchlists::remove_entry,
        watchlists::list_alerts,
        watchlists::show_alert,
        watchlists::alert_enrolled_photo,
        watchlists::review_alert,
        watchlists::alert_stream,
        watchlists::create_webhook,
        watchlists::list_webhooks,
        watchlists::webhook_deliveries,
        misuse::list_alerts,
        misuse::activity,
        misuse::scan,
        misuse::acknowledge,
        reports::subject_access_report,
    ),
    components(schemas(
        Health,
        ErrorBody,
        ErrorDetail,
        ImageForm,
        VerifyForm,
        EnrolmentForm,
        TemplatesForm,
        WatchEntryForm,
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
        vigil_pipeline::video::CameraAnalysisView,
        vigil_pipeline::video::SightingCandidateView,
        access::LoginBody,
        access::LoginReply,
        access::Me,
        access::NewUserBody,
        access::NewTokenBody,
        cases::NewCaseBody,
        watchlists::NewWatchlistBody,
        watchlists::AlertView,
        watchlists::ReviewBody,
        watchlists::NewWebhookBody,
        watchlists::WebhookView,
        misuse::AcknowledgeBody,
        reports::ReportForm,
        vigil_pipeline::video::SearchReport,
        vigil_pipeline::video::SearchHit,
    )),
    tags(
        (name = "faces", description = "Detection, 1:1 verification and 1:N identification"),
        (name = "subjects", description = "The enrolled gallery"),
        (name = "system", description = "Health, metrics and this document"),
        (name = "access", description = "Login, users, tokens and the audit log. Every route but /healthz and /v1/login needs `Authorization: Bearer <token or session>`"),
        (name = "cases", description = "Cases (purpose, legal basis, owner, expiry) and the retrospective search that must name an open one"),
        (name = "watchlists", description = "Watchlists (entries need legal basis, case, responsible person, expiry), alerts and their two-reviewer confirmation"),
        (name = "video", description = "Cameras, sightings, recordings and the live sighting stream"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON, as `GET /v1/openapi.json` serves it.
pub fn document_json() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json()
}

/// Routes anyone may call: no credentials, so no 401 or 403.
const PUBLIC_PATHS: &[&str] = &["/healthz", "/v1/login"];

/// Documents on every operation the failures the shared machinery gives, whatever the handler:
/// the guard (401, 403), the concurrency limits (429, 503), path, query and body extraction
/// (400, 404 on an unknown id, 413, 415) and faults (500). A generated client then knows every
/// status it can meet, and each carries the one error shape. Responses a handler documents
/// itself are kept.
struct SharedFailures;

impl Modify for SharedFailures {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`vgt_…`) or a session from /v1/login"))
                    .build(),
            ),
        );
        for schema in components.schemas.values_mut() {
            drop_object_defaults(schema);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = PUBLIC_PATHS.contains(&path.as_str());
            for (method, operation) in operations_with_methods(item) {
                document_case_headers(operation, method, path);
                document_binary_contents(operation);
                // audited reads write too: any protected route can meet a full disk
                document_shared_failures(operation, public, !public);
            }
        }
    }
}

/// A struct-level `#[serde(default)]` gives every field a default, nested structs included; a
/// default on a property that refers to another schema is not valid for generators such as
/// openapi-python-client ("ModelProperty cannot have a default value"), which then drop the
/// whole schema. The nested schema's own field defaults say the same thing, so these go.
fn drop_object_defaults(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    for property in object.properties.values_mut() {
        match property {
            RefOr::T(Schema::OneOf(one_of)) => one_of.default = None,
            RefOr::T(Schema::AllOf(all_of)) => all_of.default = None,
            RefOr::T(Schema::AnyOf(any_of)) => any_of.default = None,
            _ => {}
        }
    }
}

fn operations_with_methods(
    item: &mut PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("PATCH", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

/// The case and reason headers each route needs, read from the access guard's own tables, so
/// the document cannot drift from what the guard enforces.
fn document_case_headers(operation: &mut Operation, method: &str, path: &str) {
    let auditing = ROUTE_PERMISSIONS
        .iter()
        .find(|(m, r, _, _)| *m == method && *r == path)
        .map(|(_, _, _, auditing)| *auditing);
    let case_scoped = CASE_SCOPED_ROUTES
        .iter()
        .any(|(m, r, _)| *m == method && *r == path);
    let (case, reason) = match auditing {
        Some(Auditing::CaseBound(_)) => (Some(true), Some(true)),
        Some(Auditing::CaseChecked(_)) => (Some(true), Some(false)),
        Some(Auditing::ReasonBound(_)) => (None, Some(true)),
        Some(Auditing::Entry(_)) => (case_scoped.then_some(false), Some(false)),
        _ => (case_scoped.then_some(false), None),
    };
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    if let Some(required) = case {
        let description = if case_scoped && !required {
            "Reference of an open case the caller owns or belongs to; required of callers \
             without a monitoring role, who see only what the case holds"
        } else {
            "Reference of an open case the caller owns or belongs to"
        };
        parameters.push(header_parameter("X-Vigil-Case", required, description));
    }
    if let Some(required) = reason {
        parameters.push(header_parameter(
            "X-Vigil-Reason",
            required,
            "Why, in words; kept in the audit log with the call",
        ));
    }
}

fn header_parameter(name: &str, required: bool, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        ))
        .build()
}

/// Images and video are bytes on the wire: `string`/`binary` is what generators turn into a
/// file, where `Vec<u8>` would read as an array of integers.
fn document_binary_contents(operation: &mut Operation) {
    let binary = || {
        Some(RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                .build(),
        )))
    };
    let is_binary = |content_type: &str| {
        content_type.starts_with("image/")
            || content_type.starts_with("video/")
            || content_type == "application/octet-stream"
            || content_type == "application/x-tar"
    };
    if let Some(body) = operation.request_body.as_mut() {
        for (content_type, content) in body.content.iter_mut() {
            if is_binary(content_type) {
                content.schema = binary();
            }
        }
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            for (content_type, content) in response.content.iter_mut() {
                if is_binary(content_type) {
                    content.schema = binary();
                }
            }
        }
    }
}

fn document_shared_failures(operation: &mut Operation, public: bool, writes: bool) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_path_parameter = parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let has_input = !parameters.is_empty() || operation.request_body.is_some();
    let has_body = operation.request_body.is_some();
    let mut failures: Vec<(&str, &str)> = Vec::new();
    if has_input {
        failures.push(("400", "bad_request: a malformed path, query or body"));
    }
    if !public {
        failures.push((
            "401",
            "unauthenticated: no, unknown, expired or revoked credentials",
        ));
        failures.push((
            "403",
            "forbidden: the caller's roles lack the route's permission",
        ));
        operation.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
    if has_path_parameter {
        failures.push(("404", "not_found: no such resource"));
    }
    if has_body {
        failures.push((
            "413",
            "payload_too_large: the body exceeds server.max_upload_bytes",
        ));
        failures.push((
            "415",
            "unsupported_media_type: a content type the route does not accept",
        ));
    }
    failures.push((
        "429",
        "throttled: too many requests or failed logins from this client",
    ));
    failures.push((
        "500",
        "internal: a fault of the server; details go to its log",
    ));
    if writes {
        failures.push((
            "507",
            "storage_full: the data disk is full; nothing stored was damaged",
        ));
    }
    failures.push((
        "503",
        "overloaded: the server is at its in-flight request limit",
    ));
    for (status, description) in failures {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_string(), RefOr::T(response));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn every_operation(document: &mut utoipa::openapi::OpenApi) -> Vec<(String, Operation)> {
        let mut found = Vec::new();
        for (path, item) in document.paths.paths.iter_mut() {
            for (_, operation) in operations_with_methods(item) {
                found.push((path.clone(), operation.clone()));
            }
        }
        found
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut document = ApiDoc::openapi();
        let mut seen = HashSet::new();
        for (path, operation) in every_operation(&mut document) {
            let id = operation.operation_id.unwrap_or_default();
            assert!(!id.is_empty(), "{path} has no operation id");
            assert!(
                seen.insert(id.clone()),
                "operation id {id} is not unique ({path})"
            );
        }
    }

    #[test]
    fn every_protected_operation_documents_the_guards_refusals_and_every_input_a_bad_request() {
        let mut document = ApiDoc::openapi();
        for (path, operation) in every_operation(&mut document) {
            let statuses = &operation.responses.responses;
            let public = PUBLIC_PATHS.contains(&path.as_str());
            assert_eq!(operation.security.is_some(), !public, "{path}");
            if !public {
                for status in ["401", "403", "429", "503"] {
                    assert!(statuses.contains_key(status), "{path} lacks {status}");
                }
            }
            assert!(statuses.contains_key("500"), "{path}");
            if operation.request_body.is_some() {
                for status in ["400", "413", "415"] {
                    assert!(statuses.contains_key(status), "{path} lacks {status}");
                }
            }
        }
    }
}
