//! `p0 ls`, `show`, `approve`, `deny`, `revoke`.

use crate::client::Client;
use crate::session::Session;
use p0_core::api::{printable_line, ApproveBody, RequestView};
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
        println!(
            "{} {}: {}",
            v.id,
            printable_line(&v.requester),
            v.status.as_str()
        );
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
    // One row per resource and per request, whatever their text holds.
    let field = |r: &serde_json::Value, k: &str| printable_line(r[k].as_str().unwrap_or(""));
    let resources = resources.as_array().into_iter().flatten().map(|r| {
        vec![
            field(r, "name"),
            field(r, "engine"),
            format!(
                "{}:{}/{}",
                field(r, "host"),
                printable_line(&r["port"].to_string()),
                field(r, "database")
            ),
        ]
    });
    print_table(&["RESOURCE", "ENGINE", "ADDRESS"], resources);
    println!();
    let requests = requests.iter().map(|v| {
        vec![
            v.id.to_string(),
            printable_line(&v.requester),
            v.signed.resource.to_string(),
            v.status.as_str().to_string(),
            v.grant
                .as_ref()
                .map(|g| super::local_time(g.expires_at))
                .unwrap_or_default(),
            printable_line(&v.signed.reason),
        ]
    });
    print_table(
        &[
            "REQUEST",
            "REQUESTER",
            "RESOURCE",
            "STATUS",
            "UNTIL",
            "REASON",
        ],
        requests,
    );
    Ok(ExitCode::SUCCESS)
}

/// Rows under a header, in aligned columns two spaces apart, as `kubectl get` prints them.
fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for line in table.lines() {
        println!("{}", line.trim_end());
    }
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
