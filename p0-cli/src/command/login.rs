//! `p0 login`: a fresh key pair, and an ID token whose nonce commits to it.

use crate::session::Session;
use anyhow::bail;
use p0_core::seal::key_fingerprint;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log in as USER with the development issuer of `p0 demo` / `p0-server --dangerous-dev-issuer`.
    #[arg(long, value_name = "USER")]
    dev: Option<String>,
    /// Groups to claim (development issuer only).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The p0 server.
    #[arg(long, env = "P0_SERVER", default_value = "http://127.0.0.1:7080")]
    server: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(user) = args.dev else {
        bail!("only `p0 login --dev USER` is available in this build; OIDC issuers come with the zero-trust work");
    };
    let session = Session::open()?;
    let token = dev_login(&session, &args.server, &user, &args.groups).await?;
    let _ = token;
    println!("logged in to {} as {user}", args.server);
    Ok(ExitCode::SUCCESS)
}

/// Logs in with the development issuer; saves key, token and server in `session`.
pub async fn dev_login(
    session: &Session,
    server: &str,
    user: &str,
    groups: &[String],
) -> anyhow::Result<p0_core::Token> {
    let kp = session.new_key()?;
    let nonce = key_fingerprint(kp.public_pem.as_bytes())?;
    let resp = reqwest::Client::new()
        .post(format!("{}/dev/token", server.trim_end_matches('/')))
        .json(&serde_json::json!({"user": user, "groups": groups, "nonce": nonce}))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the p0 server: {}", e.without_url()))?;
    if !resp.status().is_success() {
        bail!(
            "the server has no development issuer (HTTP {})",
            resp.status()
        );
    }
    let body: serde_json::Value = resp.json().await?;
    let token = body["id_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no id_token in the answer"))?;
    let token = p0_core::Token::new(token.to_string());
    session.save_login(server, &token)?;
    Ok(token)
}
