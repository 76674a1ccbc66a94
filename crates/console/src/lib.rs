//! The operator console: a browser application over the JSON API, embedded in the binary.
//!
//! The console is a handful of hand-written ES modules, a stylesheet and a string catalogue,
//! compiled into the binary with `include_bytes!`: no second server, no CDN, no build step, so it
//! works offline and what runs in the browser is exactly what is in this repository. It holds no
//! data and makes no decisions: every screen calls the API with the user's session, and the API
//! refuses what the user's roles do not allow; the console only leaves out what a role cannot use.
//!
//! Every answer carries a content security policy without inline scripts or styles (`'self'`
//! only), so an injected string cannot run even if a screen forgot to treat it as text; the
//! screens put user-supplied strings in the page as text nodes only.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// What every console answer is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; \
     media-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The embedded files: path under `/console/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/api.js"),
    ),
    (
        "screens.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/screens.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dom.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
    (
        "i18n/en.json",
        "application/json",
        include_bytes!("../assets/i18n/en.json"),
    ),
];

/// `/` (to the console) and `/console/…`. Public: the assets hold no data.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { asset("index.html") }))
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
}

fn asset(path: &str) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == path) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    let mut response = (*bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Assets change with the binary; revalidating is cheap and never shows a stale console.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The string catalogue, for tests and tools: every key the console uses must be in it.
pub fn catalogue() -> serde_json::Value {
    let (_, _, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == "i18n/en.json")
        .copied()
        .unwrap_or(("", "", b"{}"));
    serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn scripts() -> String {
        ASSETS
            .iter()
            .filter(|(name, _, _)| name.ends_with(".js"))
            .map(|(_, _, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn every_asset_is_served_with_the_policy_and_no_inline_script() {
        let app: Router = router();
        for (name, content_type, _) in ASSETS {
            let response = app
                .clone()
                .oneshot(
                    Request::get(format!("/console/{name}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], *content_type);
            assert_eq!(
                response.headers()[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
        }
        let index = String::from_utf8_lossy(ASSETS[0].2);
        // scripts only by src, no inline handlers or styles
        assert!(
            !index.contains("<script>") && !index.contains("onclick") && !index.contains("style=")
        );
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    }

    #[test]
    fn screens_never_write_html_from_strings() {
        let scripts = scripts();
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!scripts.contains(forbidden), "the console uses {forbidden}");
        }
    }

    #[test]
    fn every_string_the_screens_use_is_in_the_catalogue() {
        let catalogue = catalogue();
        let scripts = scripts();
        let mut missing = Vec::new();
        for (index, _) in scripts.match_indices("t(\"") {
            // `t(` itself, not the end of another name such as `split(`
            let before = scripts[..index].chars().next_back().unwrap_or(' ');
            if before.is_alphanumeric() || before == '_' || before == '.' {
                continue;
            }
            let rest = &scripts[index + 3..];
            let key = &rest[..rest.find('"').unwrap_or(0)];
            if catalogue.get(key).is_none() {
                missing.push(key.to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "keys missing from i18n/en.json: {missing:?}"
        );
    }
}
