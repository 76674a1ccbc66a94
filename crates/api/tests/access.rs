//! Access rules over HTTP: every route but /healthz and /v1/login needs credentials (401),
//! each route's permission is checked against the caller's roles (403), searches need a case
//! reference and reason, and what was done is in the hash-chained audit log.

mod support;

use reqwest::{Method, StatusCode};
use support::{image_form, lfw_photo, start_server, TEST_CASE};
use vigil_api::access::{Requirement, PUBLIC_ROUTES, ROUTE_PERMISSIONS};
use vigil_auth::Role;

fn concrete(route: &str) -> String {
    route.replace("{id}", "1")
}

#[tokio::test]
async fn every_route_needs_credentials_and_the_right_role() {
    let server = start_server().await;
    for (method, route, requirement, _) in ROUTE_PERMISSIONS {
        let method: Method = method.parse().unwrap();
        let url = server.url(&concrete(route));
        let anonymous = server
            .anonymous
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {route} without a token"
        );
        let forged = server
            .anonymous
            .request(method.clone(), &url)
            .bearer_auth("vgl_not-a-real-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            forged.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {route} with a forged token"
        );
        if let Requirement::Permission(permission) = requirement {
            // Roles lacking the permission, holding as much else as one account may.
            let mut lacking: Vec<Role> = Vec::new();
            for role in Role::ALL {
                let separated = vigil_auth::SEPARATED_ROLES.iter().any(|(a, b, _)| {
                    (*a == role && lacking.contains(b)) || (*b == role && lacking.contains(a))
                });
                if !role.permissions().contains(permission) && !separated {
                    lacking.push(role);
                }
            }
            let client = server.client_with_roles(
                &format!(
                    "lacks-{}",
                    route.replace(['/', '{', '}', '.'], "-") + method.as_str()
                )
                .to_lowercase(),
                &lacking,
            );
            let refused = client.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(
                refused.status(),
                StatusCode::FORBIDDEN,
                "{method} {route} as {lacking:?}"
            );
            let body: serde_json::Value = refused.json().await.unwrap();
            assert_eq!(body["error"]["code"], "forbidden");
        }
    }
    for (method, route) in PUBLIC_ROUTES {
        let method: Method = method.parse().unwrap();
        let response = server
            .anonymous
            .request(method, server.url(route))
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{route} is public"
        );
    }
}

#[tokio::test]
async fn the_route_table_covers_every_documented_route() {
    let document: serde_json::Value =
        serde_json::to_value(<vigil_api::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let listed = ROUTE_PERMISSIONS
                .iter()
                .any(|(m, r, _, _)| *m == method && r == path)
                || PUBLIC_ROUTES.iter().any(|(m, r)| *m == method && r == path);
            assert!(listed, "{method} {path} has no access rule");
        }
    }
}

#[tokio::test]
async fn admins_and_auditors_cannot_search_faces() {
    let server = start_server().await;
    for role in [Role::Admin, Role::Auditor, Role::Operator, Role::Reviewer] {
        let client = server.client_with_roles(&format!("only-{}", role.as_str()), &[role]);
        let response = client
            .post(server.url("/v1/identify"))
            .multipart(image_form(lfw_photo("Tony_Blair", 1), "probe.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role:?}");
    }
}

#[tokio::test]
async fn a_search_without_case_and_reason_is_refused_and_one_with_them_is_audited_with_its_probe() {
    let server = start_server().await;
    let investigator = server.client_with_roles("investigator", &[Role::Investigator]);
    let token_only = server.client_with_roles("auditor", &[Role::Auditor]);
    let probe = lfw_photo("Tony_Blair", 1);

    let bare_token = server.token_with_roles("investigator2", &[Role::Investigator]);
    let refused = server
        .anonymous
        .post(server.url("/v1/identify"))
        .bearer_auth(&bare_token)
        .multipart(image_form(probe.clone(), "probe.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "case_required");

    let searched = investigator
        .post(server.url("/v1/identify"))
        .multipart(image_form(probe.clone(), "probe.jpg"))
        .send()
        .await
        .unwrap();
    assert!(searched.status().is_success(), "{}", searched.status());

    let entries: serde_json::Value = token_only
        .get(server.url("/v1/audit?action=identify"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = entries.as_array().unwrap();
    // The refused attempt is logged too (misuse detection counts them), then the search.
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0]["actor"]["user_name"], "investigator2");
    assert_eq!(entries[0]["outcome"]["kind"], "refused");
    assert_eq!(entries[0]["outcome"]["detail"], "case_required");
    let entry = &entries[1];
    assert_eq!(entry["actor"]["user_name"], "investigator");
    assert_eq!(entry["case_ref"], TEST_CASE);
    // The photo itself is kept, not the multipart envelope around it.
    use sha2::Digest;
    assert_eq!(
        entry["probe_sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&probe))
    );
    assert_eq!(entry["outcome"]["kind"], "success");

    let report: serde_json::Value = token_only
        .get(server.url("/v1/audit/verify"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
    assert!(report["entries_checked"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn users_log_in_with_a_password_and_get_a_session() {
    let server = start_server().await;
    let created = server
        .admin
        .post(server.url("/v1/users"))
        .json(&serde_json::json!({
            "name": "reviewer1",
            "roles": ["reviewer"],
            "password": "correct horse battery staple",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let wrong = server
        .anonymous
        .post(server.url("/v1/login"))
        .json(&serde_json::json!({"name": "reviewer1", "password": "wrong password!!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let login = server
        .anonymous
        .post(server.url("/v1/login"))
        .json(&serde_json::json!({"name": "reviewer1", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let session = login.json::<serde_json::Value>().await.unwrap()["session"]
        .as_str()
        .unwrap()
        .to_string();
    let me: serde_json::Value = server
        .anonymous
        .get(server.url("/v1/me"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "reviewer1");
    let logout = server
        .anonymous
        .post(server.url("/v1/logout"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = server
        .anonymous
        .get(server.url("/v1/me"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}
