//! `p0 ls`, `show`, `approve`, `deny`, `revoke`.

use crate::client::Client;
use crate::session::Session;
use p0_core::api::{ApproveBody, RequestView};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Every request, not just mine.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The request id.
    id: String,
    /// Print the request as it stands after the decision, as JSON (the shape of `p0 show
    /// --json`); what `approve` shows before approving goes to stderr.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The request id.
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A client for the logged-in user, refreshing an ID token about to expire first.
pub(super) async fn client() -> anyhow::Result<Client> {
    let session = Session::open()?;
    super::oidc::refresh_if_needed(&session).await?;
    let (server, token, key, public) = session.load()?;
    Client::new(&server, token, &key, &public)
}

/// The request `id`, as the server shows it to the caller.
async fn fetch(c: &Client, id: &str) -> anyhow::Result<RequestView> {
    let id = p0_core::RequestId::new(id.to_string())?;
    c.get(&format!("/v1/requests/{id}")).await
}

/// `p0 show ID`: everything an approval of the request is bound to.
pub async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let v = fetch(&client().await?, &args.id).await?;
    if args.json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print!("{}", super::show::render(&v));
    }
    Ok(ExitCode::SUCCESS)
}

/// `p0 approve ID`: prints what is approved, and approves exactly that — the digest sent is
/// computed here from what was printed, so the server cannot count this approval for
/// anything else.
pub async fn approve(args: IdArgs) -> anyhow::Result<ExitCode> {
    let c = client().await?;
    let v = fetch(&c, &args.id).await?;
    let digest = v.approval_digest();
    if args.json {
        eprint!("{}", super::show::render(&v));
    } else {
        print!("{}", super::show::render(&v));
    }
    if v.digest != digest {
        anyhow::bail!(
            "the server's digest of request `{}` is not that of what it shows; not approving",
            v.id
        );
    }
    let body = serde_json::to_value(ApproveBody { digest })?;
    let v: RequestView = c
        .post(&format!("/v1/requests/{}/approve", v.id), &body)
        .await?;
    decided(&v, args.json)
}

/// The outcome of a decision: one line, or the request as JSON.
fn decided(v: &RequestView, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(v)?);
    } else {
        println!("{} {}: {}", v.id, v.requester, v.status.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let c = client().await?;
    let resources: serde_json::Value = c.get("/v1/resources").await?;
    let requests: Vec<RequestView> = c.get(&format!("/v1/requests?mine={}", !args.all)).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"resources": resources, "requests": requests})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("RESOURCES");
    for r in resources.as_array().into_iter().flatten() {
        println!(
            "  {}  {}  {}:{}/{}",
            r["name"].as_str().unwrap_or(""),
            r["engine"].as_str().unwrap_or(""),
            r["host"].as_str().unwrap_or(""),
            r["port"],
            r["database"].as_str().unwrap_or("")
        );
    }
    println!("REQUESTS");
    for v in requests {
        let until = v
            .grant
            .as_ref()
            .map(|g| format!(" until {}", super::local_time(g.expires_at)))
            .unwrap_or_default();
        println!(
            "  {}  {}  {}  {}{until}  {}",
            v.id,
            v.requester,
            v.signed.resource,
            v.status.as_str(),
            v.signed.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `p0 deny ID`, `p0 revoke ID`.
pub async fn decide(args: IdArgs, verb: &str) -> anyhow::Result<ExitCode> {
    let id = p0_core::RequestId::new(args.id)?;
    let v: RequestView = client()
        .await?
        .post(&format!("/v1/requests/{id}/{verb}"), &serde_json::json!({}))
        .await?;
    decided(&v, args.json)
}
