//! `p0 psql`, `p0 exec`, `p0 request`: ask, wait, open the password, run the client.

use super::args::{refuse_local_files, split_client_args, split_psql_args, Common, MYSQL};
use super::clients;
use crate::client::{not_granted, Client, Outcome};
use crate::connect::{
    database_url, mysql_args, mysql_defaults, open_grant, pg_env, Opened, CLIENT_ENV_REMOVE,
};
use crate::relay::Relay;
use crate::session::Session;
use anyhow::{bail, Context};
use p0_core::api::GrantView;
use p0_core::grant::{ConnectTarget, TlsExpectation};
use p0_core::rules::parse_duration;
use p0_core::{Intent, ResourceId, RoleName};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    #[command(flatten)]
    common: Common,
    /// The SQL to be allowed to run.
    #[arg(long = "sql", short = 'c')]
    sql: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    common: Common,
    /// The SQL to be allowed to run.
    #[arg(long = "sql", short = 'c')]
    sql: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct MysqlArgs {
    /// mysql's own arguments plus `-D RESOURCE`, `--reason R`, `--duration D`, `--role R`,
    /// `--no-wait`; the SQL comes from `-e`, which is passed on to mysql too.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PsqlArgs {
    /// psql's own arguments plus `-d RESOURCE`, `--reason R`, `--duration D`, `--role R`,
    /// `--no-wait`; the SQL comes from `-c` or `-f`, which are passed on to psql too.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// A grant that answers the request made here, opened.
struct Granted {
    grant: GrantView,
    opened: Opened,
    /// What the query request needs, as the server says (`None` for a role): only decides
    /// whether the client selects the sealed database, which the grant may not cover.
    permissions: Option<p0_core::PermissionSet>,
}

async fn obtain(common: &Common, sql: Option<String>) -> anyhow::Result<Result<Granted, ExitCode>> {
    let session = Session::open()?;
    super::oidc::refresh_if_needed(&session).await?;
    let (server, token, key, public) = session.load()?;
    let timeout = parse_duration(&common.timeout)?;
    let client = Client::new(&server, token, &key, &public)?;
    let request_id = p0_core::RequestId::generate();
    let (outcome, asked) = match &common.resume {
        Some(id) => (client.resume(id, !common.no_wait, timeout).await?, None),
        None => {
            if common.resource.is_empty() {
                bail!("name the resource with -d RESOURCE");
            }
            let resource = ResourceId::new(common.resource.clone())?;
            let intent = match (&common.role, sql) {
                (Some(r), _) => Intent::Role(RoleName::new(r.clone())?),
                (None, Some(s)) if !s.trim().is_empty() => Intent::Query(s),
                _ => bail!("say what you need: SQL with -c/-f, or --role ROLE"),
            };
            let duration = parse_duration(&common.duration)?;
            // A query may be served by a live lease of ours that covers it (`--new`: never).
            let reuse = !common.new && matches!(intent, Intent::Query(_));
            let outcome = client
                .request(
                    request_id.clone(),
                    reuse,
                    &key,
                    &public,
                    &resource,
                    intent.clone(),
                    &common.reason,
                    duration,
                    !common.no_wait,
                    timeout,
                )
                .await?;
            (outcome, Some((resource, intent)))
        }
    };
    // The server answered a new query with a live lease: one made from this login for this
    // resource (checked before anything is remembered), active, with its grant.
    let reused = match (&asked, &outcome) {
        (Some((resource, _)), Outcome::Granted(view, _)) if view.id != request_id => {
            if recorded_resource(&session, &view.id).as_ref() != Some(resource)
                || view.signed.resource != *resource
                || view.signed.request_id != view.id
            {
                bail!("refusing the grant: the server answered with a lease not made here for `{resource}`");
            }
            crate::note!(
                "p0: reusing your lease {} (it covers this query; until {}); --new asks for a new one",
                view.id,
                view.grant.as_ref().map(|g| super::local_time(g.expires_at)).unwrap_or_default()
            );
            true
        }
        _ => false,
    };
    // Remember where each request made here is for: a resumed grant must be for the same
    // resource, whatever the server says later.
    if let (false, Some((resource, _)), Some(v)) = (reused, &asked, outcome_view(&outcome)) {
        if v.id != request_id {
            bail!("refusing the answer: the server answered for another request than the one made");
        }
        remember_request(&session, &v.id, resource)?;
    }
    let (view, grant) = match outcome {
        Outcome::Granted(view, grant) => (view, grant),
        other => return Ok(Err(not_granted(&other)?)),
    };
    // The server's answer is hostile input: it must be the request made here (or resumed),
    // and the sealed grant must answer exactly that request.
    let (id, resource) = match (&common.resume, asked) {
        (Some(id), _) => {
            if view.id.as_str() != id || view.signed.request_id != view.id {
                bail!("refusing the grant: the server answered for another request than `{id}`");
            }
            let expected = match recorded_resource(&session, &view.id) {
                Some(r) => r,
                None if !common.resource.is_empty() => ResourceId::new(common.resource.clone())?,
                None => bail!(
                    "request `{id}` was not made from this login: name its resource with -d RESOURCE"
                ),
            };
            if view.signed.resource != expected {
                bail!(
                    "refusing the grant: the server says request `{id}` is for `{}`, not `{expected}`",
                    view.signed.resource
                );
            }
            (view.id.clone(), expected)
        }
        (None, Some((resource, _))) if reused => (view.id.clone(), resource),
        (None, Some((resource, intent))) => {
            if view.signed.resource != resource
                || view.signed.intent != intent
                || view.signed.request_id != view.id
            {
                bail!(
                    "refusing the grant: the server answered for another request than the one made"
                );
            }
            (view.id.clone(), resource)
        }
        (None, None) => bail!("no request"),
    };
    if let Some(cut) = shortened(&view).filter(|_| !reused) {
        crate::note!("p0: {cut}");
    }
    let opened = open_grant(&session, &server, &session.keys(), &id, &resource, &grant)?;
    Ok(Ok(Granted {
        grant,
        opened,
        permissions: view.permissions,
    }))
}

/// What the user is told when the lease is shorter than they asked: the rule that granted it
/// allows less.
fn shortened(view: &p0_core::api::RequestView) -> Option<String> {
    use p0_core::route::Decision;
    let max = match &view.decision {
        Some(Decision::Approve { max_duration } | Decision::NeedsApproval { max_duration, .. }) => {
            max_duration.as_secs()
        }
        _ => return None,
    };
    let asked = view.signed.duration_secs;
    (asked > max).then(|| {
        let rule = view
            .rule
            .as_deref()
            .map(|r| format!("the rule `{}`", p0_core::api::printable_line(r)))
            .unwrap_or_else(|| "the rule".into());
        format!(
            "{rule} allows at most {}: the lease is {}, not the {} asked",
            super::show::human_secs(max),
            super::show::human_secs(max),
            super::show::human_secs(asked),
        )
    })
}

/// The requests made from this login, by id, with their resource (the latest 500).
const REQUESTS: &str = "requests.json";

fn outcome_view(o: &Outcome) -> Option<&p0_core::api::RequestView> {
    match o {
        Outcome::Granted(v, _) | Outcome::Denied(v) | Outcome::Waiting(v) | Outcome::Failed(v) => {
            Some(v)
        }
    }
}

fn remember_request(
    session: &Session,
    id: &p0_core::RequestId,
    resource: &ResourceId,
) -> anyhow::Result<()> {
    let mut known: Vec<(String, String)> = session.load_json(REQUESTS).unwrap_or_default();
    known.retain(|(i, _)| i != id.as_str());
    known.push((id.to_string(), resource.to_string()));
    let skip = known.len().saturating_sub(500);
    session.save_json(REQUESTS, &known[skip..].to_vec())
}

fn recorded_resource(session: &Session, id: &p0_core::RequestId) -> Option<ResourceId> {
    let known: Vec<(String, String)> = session.load_json(REQUESTS).ok()?;
    let (_, r) = known.into_iter().find(|(i, _)| i == id.as_str())?;
    ResourceId::new(r).ok()
}

/// Where the client connects: the sealed target itself when TLS is verified, else the relay
/// on loopback, which cuts the connection if the server asks for a readable password.
pub(crate) async fn route(target: &ConnectTarget) -> anyhow::Result<(String, u16, Option<Relay>)> {
    match target.tls {
        TlsExpectation::VerifyFull { .. } => Ok((target.host.clone(), target.port, None)),
        _ => {
            let relay = Relay::start(target.engine, target.host.clone(), target.port).await?;
            Ok(("127.0.0.1".into(), relay.port, Some(relay)))
        }
    }
}

/// Runs the client to its end and reports a relay refusal, if one happened.
async fn run_client(
    mut cmd: tokio::process::Command,
    what: &str,
    relay: Option<Relay>,
) -> anyhow::Result<ExitCode> {
    let status = cmd
        .kill_on_drop(true)
        .status()
        .await
        .with_context(|| format!("running {what} (is it installed?)"))?;
    if let Some(why) = relay.as_ref().and_then(Relay::refusal) {
        // The reason may quote what the database sent (a plugin name): shown, not obeyed.
        eprintln!("p0: refused: {}", p0_core::api::printable_line(&why));
        return Ok(ExitCode::from(1));
    }
    Ok(clients::exit_code_of(status))
}

pub async fn request(args: RequestArgs) -> anyhow::Result<ExitCode> {
    match obtain(&args.common, args.sql).await? {
        Ok(g) => {
            let t = &g.opened.target;
            println!(
                "granted: user {} on {}:{}/{} until {} (run `p0 psql` or `p0 exec` to use it)",
                g.grant.username,
                t.host,
                t.port,
                p0_core::api::printable_line(&t.database),
                super::local_time(t.expires_at)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

pub async fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let g = match obtain(&args.common, args.sql).await? {
        Ok(g) => g,
        Err(code) => return Ok(code),
    };
    let (target, password) = (&g.opened.target, &g.opened.password);
    let (host, port, relay) = route(target).await?;
    let mut cmd = tokio::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    for v in CLIENT_ENV_REMOVE {
        cmd.env_remove(v);
    }
    // libpq's variables name the CA for PostgreSQL; the URL carries it for either engine. With
    // verified TLS the MySQL password goes only into the URL: MYSQL_PWD would reach clients
    // that read no CA from the environment and would not verify the server.
    let (env, ca) = pg_env(&host, port, target, password)?;
    match (target.engine, &target.tls) {
        // Through the relay: the mysql client's own variables are safe to set.
        (p0_core::Engine::MySql, TlsExpectation::Off) => {
            cmd.env("MYSQL_HOST", &host)
                .env("MYSQL_TCP_PORT", port.to_string())
                .env("MYSQL_PWD", password.expose_secret());
        }
        (p0_core::Engine::MySql, _) => {}
        _ => {
            cmd.envs(env);
        }
    }
    cmd.env(
        "DATABASE_URL",
        database_url(&host, port, target, password, &ca)?,
    );
    run_client(cmd, &format!("`{}`", args.command[0]), relay).await
}

pub async fn psql(args: PsqlArgs) -> anyhow::Result<ExitCode> {
    let (common, sql, pass) = split_psql_args(&args.args)?;
    let psql = clients::find(&["psql"], "PostgreSQL's client (postgresql-client)")?;
    let asks = sql.is_some() || common.role.is_some() || common.resume.is_some();
    if let Some(code) = clients::without_database(psql, &pass, asks).await? {
        return Ok(code);
    }
    let g = match obtain(&common, sql).await? {
        Ok(g) => g,
        Err(code) => return Ok(code),
    };
    let (target, password) = (&g.opened.target, &g.opened.password);
    let (host, port, relay) = route(target).await?;
    let (env, _ca) = pg_env(&host, port, target, password)?;
    let mut cmd = tokio::process::Command::new(psql);
    for v in CLIENT_ENV_REMOVE {
        cmd.env_remove(v);
    }
    cmd.args(&pass).envs(env);
    run_client(cmd, "psql", relay).await
}

pub async fn mysql(args: MysqlArgs) -> anyhow::Result<ExitCode> {
    let (common, sql, pass) = split_client_args(&args.args, &MYSQL)?;
    refuse_local_files(&pass)?;
    let client = clients::find(&["mysql", "mariadb"], "a MySQL or MariaDB client")?;
    let asks = sql.is_some() || common.role.is_some() || common.resume.is_some();
    if let Some(code) = clients::without_database(client, &pass, asks).await? {
        return Ok(code);
    }
    let g = match obtain(&common, sql).await? {
        Ok(g) => g,
        Err(code) => return Ok(code),
    };
    let (target, password) = (&g.opened.target, &g.opened.password);
    let (host, port, relay) = route(target).await?;
    // The password reaches the client in a 0600 file that is removed when the client exits,
    // never on its command line or in its environment.
    let (defaults, ca) = mysql_defaults(&host, port, target, password)?;
    let mut cmd = tokio::process::Command::new(client);
    for v in CLIENT_ENV_REMOVE {
        cmd.env_remove(v);
    }
    // The password in the 0600 file; where to connect and how also on the command line, which
    // beats any option file read after ours.
    cmd.arg(format!(
        "--defaults-extra-file={}",
        defaults.path().display()
    ))
    .args(mysql_args(
        &host,
        port,
        target,
        &ca,
        selects_database(g.permissions.as_ref(), &target.database),
    ))
    .args(&pass);
    run_client(cmd, client, relay).await
}

/// Whether the MySQL client should select the sealed database: unless the query's set has
/// nothing in it (a user with no privilege in a database is refused at connect when it is
/// selected; the query then names its tables with their database).
fn selects_database(set: Option<&p0_core::PermissionSet>, database: &str) -> bool {
    let Some(set) = set else {
        return true;
    };
    set.iter().any(|p| {
        p.object.schema.as_deref() == Some(database)
            || (p.object.kind == p0_core::ObjectKind::Database && p.object.name == database)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mysql_client_selects_the_database_only_when_the_set_has_something_in_it() {
        use p0_core::{ObjectRef, Permission, PermissionSet, Privilege};
        let mut other = PermissionSet::default();
        other.insert(Permission::new(
            Privilege::Select,
            ObjectRef::table("other", "audit"),
        ));
        assert!(!selects_database(Some(&other), "app"));
        let mut both = other.clone();
        both.insert(Permission::new(
            Privilege::Select,
            ObjectRef::table("app", "orders"),
        ));
        assert!(selects_database(Some(&both), "app"));
        // A role: what it covers is the agent's to know; the database is selected.
        assert!(selects_database(None, "app"));
    }
}
