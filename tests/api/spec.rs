use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;

fn served_yaml() -> serde_json::Value {
    serde_yaml::from_str(roster::api::SPEC_YAML).expect("openapi.yaml parses")
}

#[tokio::test]
async fn the_hand_maintained_spec_is_served_as_yaml_and_json() {
    let app = TestApp::spawn().await;
    let yaml = app
        .anonymous(Method::GET, "/openapi.yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.status(), StatusCode::OK);
    assert_eq!(yaml.text().await.unwrap(), roster::api::SPEC_YAML);
    let json: serde_json::Value = app
        .anonymous(Method::GET, "/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json, served_yaml());
}

#[tokio::test]
async fn the_spec_uses_a_relative_server_so_try_it_out_works_on_any_host() {
    let spec = served_yaml();
    assert_eq!(spec["servers"][0]["url"], "/");
}

#[tokio::test]
async fn swagger_ui_is_served_offline_with_the_hand_maintained_spec() {
    let app = TestApp::spawn().await;
    let response = app.anonymous(Method::GET, "/docs").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"));
    assert!(
        html.contains("listmonk-compatible Lists and Subscribers API"),
        "shows openapi.yaml"
    );
    assert!(!html.contains("<script src=\"http"), "no CDN");
    assert!(
        html.contains("validatorUrl: null"),
        "no call to the online validator"
    );
    assert!(
        html.contains("<link rel=\"icon\" href=\"data:,\">"),
        "no favicon request"
    );
    assert!(
        !html.contains("<link rel=\"stylesheet\" href=\"http"),
        "no CDN"
    );
}

#[tokio::test]
async fn documents_carry_an_etag_security_headers_and_revalidate_with_304() {
    let app = TestApp::spawn().await;
    for path in ["/docs", "/openapi.yaml", "/openapi.json"] {
        let response = app.anonymous(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let again = app
            .anonymous(Method::GET, path)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let docs = app.anonymous(Method::GET, "/docs").send().await.unwrap();
    let policy = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    // Swagger UI's two inline scripts are allowed by hash, and nothing else may run.
    assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
    assert!(!policy.contains("unsafe-eval") && !policy.contains("script-src 'unsafe-inline'"));
}
