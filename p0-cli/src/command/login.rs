//! `p0 login`: a fresh key pair, and an ID token whose nonce commits to it.

use crate::session::Session;
use anyhow::bail;
use p0_core::api::printable_line;
use p0_core::seal::key_fingerprint;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log in as USER with the development issuer of `p0 demo` / `p0-server --dangerous-dev-issuer`.
    #[arg(long, value_name = "USER")]
    dev: Option<String>,
    /// The OIDC issuer (authorization code + PKCE on a loopback redirect).
    #[arg(long, env = "P0_ISSUER", conflicts_with = "dev")]
    issuer: Option<String>,
    /// The OIDC client id registered for p0.
    #[arg(long, env = "P0_CLIENT_ID", default_value = "p0")]
    client_id: String,
    /// The client secret, for issuers that register p0 as a confidential client.
    #[arg(long, env = "P0_CLIENT_SECRET")]
    client_secret: Option<String>,
    /// Use the device authorization grant (no browser on this machine).
    #[arg(long)]
    device: bool,
    /// Groups to claim (development issuer only).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The p0 server.
    #[arg(long, env = "P0_SERVER", default_value = "http://127.0.0.1:7080")]
    server: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let session = Session::open()?;
    if let Some(issuer) = &args.issuer {
        let token = super::oidc::login(
            &session,
            &args.server,
            issuer,
            &args.client_id,
            args.client_secret.as_deref(),
            args.device,
        )
        .await?;
        let who = super::oidc::claim(token.expose_secret(), "email")
            .or_else(|| super::oidc::claim(token.expose_secret(), "sub"));
        println!(
            "logged in to {} as {}",
            args.server,
            printable_line(&who.unwrap_or_default())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(user) = args.dev else {
        bail!("say how to log in: --issuer URL (OIDC) or --dev USER (development issuer)");
    };
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
    session.save_login(server, &token, &kp)?;
    Ok(token)
}

#[derive(Debug, clap::Args)]
pub struct WhoamiArgs {
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `p0 whoami`: who this login is, where, until when, with which key.
pub async fn whoami(args: WhoamiArgs) -> anyhow::Result<ExitCode> {
    let session = Session::open()?;
    let (server, token, _, public) = session.load()?;
    let t = token.expose_secret();
    let claim = |c: &str| super::oidc::claim(t, c);
    let name = claim("email").or_else(|| claim("sub")).unwrap_or_default();
    let exp = claim("exp")
        .and_then(|e| e.parse::<i64>().ok())
        .and_then(|e| chrono::DateTime::from_timestamp(e, 0));
    let key = key_fingerprint(public.as_bytes())?;
    let expired = exp.is_some_and(|e| e <= chrono::Utc::now());
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "name": name,
                "issuer": claim("iss"),
                "server": server,
                "token_expires_at": exp.map(|e| e.to_rfc3339()),
                "expired": expired,
                "key": key,
            })
        );
    } else {
        // The issuer's claims are its text: shown, not obeyed, on the terminal.
        println!("{}", printable_line(&name));
        println!("  server  {server}");
        println!(
            "  issuer  {}",
            printable_line(&claim("iss").unwrap_or_default())
        );
        match exp {
            Some(e) if expired => println!(
                "  token   expired at {} (run `p0 login`)",
                super::local_time(e)
            ),
            Some(e) => println!("  token   valid until {}", super::local_time(e)),
            None => {}
        }
        println!("  key     {key}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `p0 logout`: forgets the token and the refresh token; keys stay until the grants sealed
/// to them expire.
pub async fn logout() -> anyhow::Result<ExitCode> {
    let session = Session::open()?;
    if session.logout()? {
        println!("logged out");
    } else {
        println!("not logged in");
    }
    Ok(ExitCode::SUCCESS)
}
