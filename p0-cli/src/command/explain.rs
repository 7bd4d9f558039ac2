//! `p0 explain`: the permission set a piece of SQL needs.

use anyhow::{bail, Context};
use p0_core::extract::{Catalog, MySqlExtractor, PostgresExtractor};
use p0_core::{Engine, PermissionExtractor};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SQL dialect.
    #[arg(long, default_value = "postgres")]
    engine: Engine,
    /// Resolve names against this live database (views, sequences behind defaults, function
    /// and procedure bodies, search_path). Only the catalog is read.
    #[arg(long, env = "P0_DATABASE_URL")]
    database_url: Option<String>,
    /// The database name for CONNECT (PostgreSQL) or of unqualified tables (MySQL) when no URL
    /// is given.
    #[arg(long)]
    database: Option<String>,
    /// Column-level grants where they are smaller than table grants.
    #[arg(long)]
    columns: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Read the SQL from a file (`-` for standard input).
    #[arg(short = 'f', long = "file", conflicts_with = "sql")]
    file: Option<String>,
    /// The SQL (one or more statements).
    sql: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sql = match (&args.sql, &args.file) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) if f == "-" => {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        }
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading `{f}`"))?,
        (None, None) => bail!("no SQL given: pass it as an argument or with -f FILE"),
    };
    let sql = strip_psql_meta(&sql);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let extraction = match args.engine {
        Engine::Postgres => {
            let mut x = PostgresExtractor::new()
                .with_columns(args.columns)
                .with_provenance(true);
            if let Some(url) = &args.database_url {
                let catalog = rt
                    .block_on(Catalog::load_postgres(url))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                x = x.with_catalog(Arc::new(catalog));
            } else if let Some(db) = &args.database {
                x = x.with_database(db);
            }
            x.extract(&sql)
        }
        Engine::MySql => {
            let db = args
                .database
                .clone()
                .or_else(|| args.database_url.as_deref().and_then(url_database));
            let mut x = MySqlExtractor::new(db)
                .with_columns(args.columns)
                .with_provenance(true);
            if let Some(url) = &args.database_url {
                let catalog = rt
                    .block_on(Catalog::load_mysql(url, args.database.as_deref()))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                x = x.with_catalog(Arc::new(catalog));
            }
            x.extract(&sql)
        }
        _ => bail!("unsupported engine"),
    };
    let extraction = extraction.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let (Engine::Postgres, Some(url)) = (args.engine, &args.database_url) {
        warn_reachable_definers(&rt, url, &extraction.permissions);
    }
    if args.json {
        let mut out = serde_json::json!({
            "engine": args.engine,
            "permissions": extraction.permissions,
            "unresolved": extraction.unresolved,
        });
        if !extraction.locked.is_empty() {
            out["locked"] = serde_json::json!(extraction.locked);
        }
        out["provenance"] = serde_json::json!(extraction.provenance);
        println!("{out}");
    } else {
        // Names come from the SQL and, with a live catalog, from the database: shown, one line
        // each, never acting on the terminal.
        use p0_core::api::printable_line as line;
        for p in extraction.permissions.iter() {
            // What needs it, when that is more than the statement itself.
            let because = extraction
                .provenance
                .iter()
                .find(|v| v.privilege == p.privilege && v.object == p.object)
                .map(|v| &v.because)
                .filter(|b| b.iter().any(|x| x != "the statement"));
            match because {
                Some(b) => println!("{}    -- for {}", line(&p.to_string()), line(&b.join("; "))),
                None => println!("{}", line(&p.to_string())),
            }
        }
        for u in &extraction.unresolved {
            println!("unresolved: {}", line(&u.to_string()));
        }
        for o in &extraction.locked {
            println!(
                "locks rows of: {}",
                line(
                    &o.schema
                        .as_deref()
                        .map_or_else(|| o.name.clone(), |s| format!("{s}.{}", o.name))
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// With a live catalog: SECURITY DEFINER functions that PUBLIC may execute in a schema the
/// set grants USAGE on, which the agent refuses unless its configuration names them. On
/// standard error, so `--json` output stays as it is.
fn warn_reachable_definers(rt: &tokio::runtime::Runtime, url: &str, set: &p0_core::PermissionSet) {
    let schemas: Vec<String> = set
        .iter()
        .filter(|p| {
            p.privilege == p0_core::Privilege::Usage && p.object.kind == p0_core::ObjectKind::Schema
        })
        .map(|p| p.object.name.clone())
        .collect();
    match rt.block_on(p0_core::provision::reachable_definer_functions_at(
        url, &schemas,
    )) {
        Ok(found) => {
            for f in found {
                let f = p0_core::api::printable_line(&f.to_string());
                eprintln!(
                    "warning: SECURITY DEFINER function `{f}` is executable by PUBLIC: USAGE on its schema lets the user run it as its owner; \
                     the agent refuses this unless `guard.allow_definer_functions` names it (fix: `REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC`)"
                );
            }
        }
        Err(e) => eprintln!(
            "warning: could not look for SECURITY DEFINER functions: {}",
            p0_core::api::printable_line(&e.to_string())
        ),
    }
}

/// psql meta-commands (`\set`, `\echo`, ...) are not SQL: drop lines that start with one.
fn strip_psql_meta(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn url_database(url: &str) -> Option<String> {
    let path = url.split("://").nth(1)?.split_once('/')?.1;
    let db = path.split('?').next()?;
    (!db.is_empty()).then(|| db.to_string())
}
