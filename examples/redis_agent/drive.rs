//! Plays everything around the custom agent, for real: Debian's `redis-server` on loopback, an
//! identity issuer (p0's development issuer, served over HTTP), and the p0 server and CLI —
//! an ID token committing to a fresh key, a signed request, the HMAC-authenticated call —
//! then uses the credentials against Redis and revokes them.

use crate::server::RedisServer;
use crate::{serve_agent, RedisBackend, RedisProvisioner};
use p0_core::api::{hmac_sign, ProvisionCall, ProvisionResult, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use p0_core::seal::key_fingerprint;
use p0_core::SignedRequest;
use p0_core::{
    Access, DangerousDevIssuer, DatabaseProvisioner, Intent, KeyPair, PermissionExtractor,
};
use p0_core::{PostgresExtractor, ProvisionPlan, RequestId, ResourceId, RoleName};
use std::sync::Arc;

/// Serves the development issuer's discovery document and JWKS.
async fn serve_issuer() -> anyhow::Result<Arc<DangerousDevIssuer>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dev = Arc::new(DangerousDevIssuer::new(format!(
        "http://{}",
        listener.local_addr()?
    ))?);
    let (d, j) = (dev.discovery(), dev.jwks().clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(|| async move { axum::Json(d) }),
        )
        .route("/jwks", axum::routing::get(|| async move { axum::Json(j) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(dev)
}

/// What the p0 server does: an HMAC-authenticated POST to the agent.
async fn call(
    agent: &str,
    secret: &str,
    path: &str,
    body: &impl serde::Serialize,
) -> anyhow::Result<serde_json::Value> {
    let body = serde_json::to_vec(body)?;
    let ts = chrono::Utc::now().timestamp();
    let r = reqwest::Client::new()
        .post(format!("http://{agent}{path}"))
        .header(HMAC_TIME_HEADER, ts.to_string())
        .header(
            HMAC_SIG_HEADER,
            hmac_sign(secret.as_bytes(), ts, path, &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let (ok, v) = (
        r.status().is_success(),
        r.json::<serde_json::Value>().await?,
    );
    anyhow::ensure!(ok, "agent refused: {}", v["message"]);
    Ok(v)
}

pub async fn run() -> anyhow::Result<()> {
    let admin_password = RequestId::generate().to_string();
    let server = RedisServer::start(&admin_password).await?;
    let (port, admin_url) = (server.port, server.url());
    let dev = serve_issuer().await?;
    let resource = ResourceId::new("redis/cache")?;
    let mut guard = p0_core::GuardPolicy::for_database("cache", "default");
    guard.role_allowlist = vec![RoleName::new("cache_reader")?];
    let config = p0_agent::AgentConfig::from_toml(&format!(
        "resource = \"{resource}\"\nissuer = \"{}\"\naudience = \"p0\"\nhmac_secret = \"{}\"\n[connect]\nhost = \"127.0.0.1\"\nport = {port}\n[guard]\ndatabases = [\"cache\"]\nservice_user = \"default\"\n",
        dev.issuer(),
        RequestId::generate()
    ))?;
    let roles = vec![("cache_reader".to_string(), "~cache:* +@read -@dangerous")];
    let backend = RedisBackend::connect(&admin_url, roles).await?;
    let provisioner = Arc::new(RedisProvisioner::new(backend, guard));
    let agent = serve_agent(&config, provisioner.clone()).await?.to_string();
    let secret = config.hmac_secret.clone().unwrap_or_default();
    let admin = redis::Client::open(admin_url.as_str())?;
    let mut con = admin.get_multiplexed_async_connection().await?;
    redis::cmd("MSET")
        .arg(&["cache:greeting", "hello", "billing:card", "4111"][..])
        .query_async::<()>(&mut con)
        .await?;

    // Two requests by alice: a role, and a query whose permissions map to key patterns.
    let sql = "SELECT * FROM cache";
    let needed = PostgresExtractor::new().extract(sql)?.permissions;
    for intent in [
        Intent::Role(RoleName::new("cache_reader")?),
        Intent::Query(sql.into()),
    ] {
        let keys = KeyPair::generate()?;
        let token = dev.issue(
            "alice@example.com",
            &[],
            &key_fingerprint(keys.public_pem.as_bytes())?,
            "p0",
        )?;
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: resource.clone(),
            intent: intent.clone(),
            reason: "example".into(),
            duration_secs: 600,
            issued_at: chrono::Utc::now().timestamp(),
        };
        let access = match &intent {
            Intent::Role(r) => Access::Role(r.clone()),
            Intent::Query(_) => Access::Permissions(needed.clone()),
        };
        let plan = ProvisionPlan {
            request_id: signed.request_id.clone(),
            requester: "alice@example.com".into(),
            resource: resource.clone(),
            access,
            expires_at: chrono::Utc::now() + chrono::TimeDelta::seconds(600),
        };
        let signature = signed.sign(&keys.private_pem)?;
        let body = ProvisionCall {
            plan,
            id_token: token.expose_secret().into(),
            public_key: keys.public_pem.clone(),
            signed,
            signature,
            pickup_proof: None,
        };
        let r: ProvisionResult =
            serde_json::from_value(call(&agent, &secret, "/v1/provision", &body).await?)?;
        // The sealed grant: the password with where to use it, signed by the agent.
        let grant = p0_core::grant::open(&keys.private_pem, &r.sealed_password)?;
        grant.check_for(&body.signed.request_id, &resource, chrono::Utc::now())?;
        let (password, port) = (grant.password.expose_secret(), grant.target.port);
        anyhow::ensure!(port == server.port, "the grant names another port");
        let user = r.username.as_str();
        let managed = provisioner.list_managed().await?;
        let until = managed
            .iter()
            .find(|a| a.name == user)
            .and_then(|a| a.expires_at);
        let asked = match &intent {
            Intent::Role(r) => format!("role {r}"),
            Intent::Query(q) => format!("query `{q}`"),
        };
        let until = until.map(|t| t.to_rfc3339()).unwrap_or_default();
        println!("redis: {asked} -> user {user} until {until}");

        let mut as_user = redis::Client::open(server.url_as(user, password))?
            .get_multiplexed_async_connection()
            .await?;
        let hello: String = redis::cmd("GET")
            .arg("cache:greeting")
            .query_async(&mut as_user)
            .await?;
        println!("redis: {user} reads cache:greeting = {hello}");
        for (what, cmd) in [
            (
                "write",
                redis::cmd("SET").arg("cache:greeting").arg("x").clone(),
            ),
            (
                "read billing",
                redis::cmd("GET").arg("billing:card").clone(),
            ),
        ] {
            let e = cmd
                .query_async::<redis::Value>(&mut as_user)
                .await
                .err()
                .map(|e| e.code().unwrap_or("").to_string());
            anyhow::ensure!(
                e.as_deref() == Some("NOPERM"),
                "{what} was not refused: {e:?}"
            );
            println!("redis: {user} {what} refused: NOPERM");
        }
        call(
            &agent,
            &secret,
            "/v1/revoke",
            &serde_json::json!({"username": user}),
        )
        .await?;
        let gone = redis::Client::open(server.url_as(user, password))?
            .get_multiplexed_async_connection()
            .await;
        anyhow::ensure!(gone.is_err(), "the revoked user could still log in");
        println!("redis: after revoke, {user} cannot log in");
    }
    // The agent refuses to touch what p0 did not create, even under p0's prefix.
    redis::cmd("ACL")
        .arg(&["SETUSER", "p0_intruder", "on", "nopass", "+@all"][..])
        .query_async::<()>(&mut con)
        .await?;
    let body = serde_json::json!({"username": "p0_intruder"});
    let refused = call(&agent, &secret, "/v1/revoke", &body).await;
    let refused = refused.err().map(|e| e.to_string()).unwrap_or_default();
    println!("redis: revoke p0_intruder -> {refused}");
    let still: Option<redis::Value> = redis::cmd("ACL")
        .arg("GETUSER")
        .arg("p0_intruder")
        .query_async(&mut con)
        .await?;
    anyhow::ensure!(
        refused.contains("not a user managed by p0") && still.is_some(),
        "p0_intruder was touched"
    );
    anyhow::ensure!(
        provisioner.list_managed().await?.is_empty(),
        "managed users left"
    );
    println!("redis: nothing left");
    Ok(())
}
