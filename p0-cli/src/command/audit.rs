//! `p0 audit`: the audit log, filtered by who, resource, request and time, and verified as a
//! whole (the hash chain, and the head this machine verified before).

use crate::session::Session;
use anyhow::Context;
use chrono::{DateTime, Utc};
use p0_core::api::printable_line;
use p0_core::audit::{verify_since, AuditEntry, Checkpoint};
use std::collections::HashMap;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Check the hash chain; exit 1 if any entry was edited or removed.
    #[arg(long)]
    verify: bool,
    /// JSON on stdout: the entries shown (an array); with --verify, an object with the
    /// verification and the entries (`intact`, `entries`, `head`, `shown`).
    #[arg(long)]
    json: bool,
    /// Only entries by this person (or `system`).
    #[arg(long)]
    user: Option<String>,
    /// Only entries about requests on this resource.
    #[arg(long, short = 'd')]
    resource: Option<String>,
    /// Only entries about this request.
    #[arg(long)]
    request: Option<String>,
    /// Only entries at or after this time: RFC 3339, or a span ago (`2h`, `1d`).
    #[arg(long)]
    since: Option<String>,
    /// Only entries before this time: RFC 3339, or a span ago.
    #[arg(long)]
    until: Option<String>,
}

/// A moment from RFC 3339 or a span before now.
fn moment(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let span = p0_core::rules::parse_duration(text)
        .with_context(|| format!("`{text}` is neither an RFC 3339 time nor a span such as 2h"))?;
    Ok(Utc::now() - chrono::Duration::from_std(span)?)
}

/// The resource of each request, from its `request.created` entry.
fn resources(log: &[AuditEntry]) -> HashMap<&str, String> {
    log.iter()
        .filter(|e| e.action == "request.created")
        .filter_map(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            Some((
                e.request_id.as_deref()?,
                detail["resource"].as_str()?.to_string(),
            ))
        })
        .collect()
}

pub async fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = super::manage::client().await?;
    let server = client.base_url().to_string();
    let log: Vec<AuditEntry> = client.get("/v1/audit").await?;
    let (since, until) = (
        args.since.as_deref().map(moment).transpose()?,
        args.until.as_deref().map(moment).transpose()?,
    );
    let filtered = args.user.is_some()
        || args.resource.is_some()
        || args.request.is_some()
        || since.is_some()
        || until.is_some();
    let of = resources(&log);
    let shown: Vec<&AuditEntry> = log
        .iter()
        .filter(|e| args.user.as_ref().is_none_or(|u| &e.actor == u))
        .filter(|e| {
            args.request
                .as_ref()
                .is_none_or(|r| e.request_id.as_ref() == Some(r))
        })
        .filter(|e| {
            args.resource
                .as_ref()
                .is_none_or(|r| e.request_id.as_deref().and_then(|id| of.get(id)) == Some(r))
        })
        .filter(|e| since.is_none_or(|t| e.at >= t) && until.is_none_or(|t| e.at < t))
        .collect();
    // The chain is verified over the whole log, whatever is shown.
    let verified = if args.verify {
        Some(verify(&server, &log))
    } else {
        None
    };
    if args.json {
        match verified {
            None => println!("{}", serde_json::to_string(&shown)?),
            Some(Ok(ref head)) => println!(
                "{}",
                serde_json::json!({"intact": true, "entries": log.len(), "head": head, "shown": shown})
            ),
            Some(Err(ref e)) => println!(
                "{}",
                serde_json::json!({"intact": false, "entries": log.len(), "error": e.to_string()})
            ),
        }
    } else if !args.verify || filtered {
        for e in &shown {
            println!(
                "{:>5} {} {:<24} {:<20} {} {}",
                e.seq,
                super::local_time(e.at),
                printable_line(&e.actor),
                printable_line(&e.action),
                printable_line(e.request_id.as_deref().unwrap_or("-")),
                printable_line(&e.detail)
            );
        }
    }
    if !args.json {
        match &verified {
            Some(Ok(Some(head))) => println!(
                "audit log intact: {} entries, head {} (kept; later runs check it is still there)",
                log.len(),
                head.hash
            ),
            Some(Ok(None)) => println!("audit log intact: 0 entries"),
            _ => {}
        }
    }
    match verified {
        Some(Err(e)) => Err(e),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The heads of the audit logs this user verified before, by server URL.
const CHECKPOINTS: &str = "audit-checkpoints.json";

/// Checks the chain, and that the log still holds the head verified last time from this
/// machine — which the chain alone cannot show when entries are cut from its end or the whole
/// log is rewritten. The new head is kept only when everything holds.
fn verify(server: &str, log: &[AuditEntry]) -> anyhow::Result<Option<Checkpoint>> {
    let session = Session::open()?;
    let mut seen: HashMap<String, Checkpoint> = session.load_json(CHECKPOINTS).unwrap_or_default();
    let head = verify_since(log, seen.get(server))
        .map_err(|why| anyhow::anyhow!("audit log broken: {why}"))?;
    if let Some(head) = &head {
        seen.insert(server.to_string(), head.clone());
        session.save_json(CHECKPOINTS, &seen)?;
    }
    Ok(head)
}
