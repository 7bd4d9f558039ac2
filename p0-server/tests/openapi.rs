//! The OpenAPI description the server serves names every route the router has, and every
//! path it names answers (no route of the description is missing from the router, or the
//! other way round); readiness says what is not ready.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

/// `/v1/requests/{id}/approve` → its methods, from the router's own source.
fn routes_in_source() -> Vec<String> {
    let source = include_str!("../src/routes/mod.rs");
    let mut paths: Vec<String> = source
        .split(".route(\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        // The development issuer's routes exist only with --dangerous-dev-issuer.
        .filter(|p| !p.starts_with("/dev/"))
        .collect();
    let console = include_str!("../src/console/web.rs");
    paths.extend(
        console
            .split(".route(\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .filter(|p| p == "/console"),
    );
    paths
}

async fn app() -> axum::Router {
    let store = p0_server::store::open("sqlite::memory:").await.unwrap();
    let config = p0_server::ServerConfig::from_toml(
        &format!(
            "listen = \"127.0.0.1:0\"\nstore = \"sqlite::memory:\"\nissuer = \"http://issuer.test\"\naudience = \"p0\"\nrules = \"-\"\n\
             [[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\nhost = \"db\"\nport = 5432\ndatabase = \"app\"\n\
             agent_url = \"{}\"\nagent_secret = \"s\"\n",
            p0_testkit::explain_only_agent().unwrap()
        ),
    )
    .unwrap();
    let rules = p0_core::RulesRouter::from_toml("").unwrap();
    let verifier = p0_core::JwksVerifier::new("http://issuer.test", "p0").unwrap();
    let state = p0_server::AppState::new(
        &config,
        store,
        std::sync::Arc::new(rules),
        std::sync::Arc::new(verifier),
        None,
    )
    .unwrap();
    p0_server::build_router(state)
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
    let r = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_description_and_the_router_name_the_same_routes() {
    let app = app().await;
    let (status, doc) = get(&app, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let described: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    for route in routes_in_source() {
        assert!(
            described.contains(&route),
            "`{route}` is served but not described"
        );
    }
    for path in &described {
        assert!(
            routes_in_source().contains(path),
            "`{path}` is described but not served"
        );
        // Every described path is a route (any answer but the router's own 404).
        let (_, body) = get(&app, &path.replace("{id}", "0123456789abcdef")).await;
        assert_ne!(body["message"], "no such endpoint", "{path}");
    }
}

#[tokio::test]
async fn readiness_names_what_is_not_ready() {
    let app = app().await;
    // The stand-in agent answers explain only: its health is a 404, so not ready.
    let (status, body) = get(&app, "/v1/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["store"], "ok");
    assert_eq!(body["agents"]["pg/app"], "unreachable");
    assert_eq!(get(&app, "/v1/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_its_request_id() {
    let app = app().await;
    let id_of =
        |r: &axum::response::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    let call = |id: Option<&str>| {
        let mut req = Request::get("/v1/health");
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let made = call(None).await.unwrap();
    assert_eq!(id_of(&made).len(), 16);
    assert_eq!(id_of(&call(Some("lb-7f3a.1")).await.unwrap()), "lb-7f3a.1");
    let replaced = call(Some("x;rm -rf")).await.unwrap();
    assert_ne!(id_of(&replaced), "x;rm -rf");
    // The router's own 404 carries one too.
    let missing = app
        .clone()
        .oneshot(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(id_of(&missing).len(), 16);
}
