//! Embed the extractor in another tool: print the GRANTs a migration script's data changes
//! would need, or why the script cannot be run with grants at all. With `--database-url`, the
//! live catalog resolves what the SQL alone cannot (sequences behind defaults, views,
//! functions, the search path).
//!
//!     cargo run -p p0-examples --example migration_grants -- script.sql [ROLE] [--database-url URL]

use p0_core::extract::Catalog;
use p0_core::{PermissionExtractor, PostgresExtractor};
use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    let mut positional = Vec::new();
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--database-url" => url = args.next(),
            _ => positional.push(a),
        }
    }
    let Some(path) = positional.first() else {
        eprintln!("usage: migration_grants SCRIPT.sql [ROLE] [--database-url URL]");
        return ExitCode::from(2);
    };
    let role = positional
        .get(1)
        .cloned()
        .unwrap_or_else(|| "migrator".into());
    let sql = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read `{path}`: {e}");
            return ExitCode::from(1);
        }
    };
    let mut extractor = PostgresExtractor::new().with_database("app");
    if let Some(url) = url {
        match Catalog::load_postgres(&url).await {
            Ok(c) => extractor = extractor.with_catalog(Arc::new(c)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    match extractor.extract(&sql) {
        Ok(x) => {
            for p in x.permissions.iter() {
                // The core's own rendering: every name quoted, nothing built by hand.
                match p0_core::provision::render_grant(&p, &role) {
                    Ok(grant) => println!("{grant};"),
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            for u in &x.unresolved {
                println!("-- not resolved without a live catalog: {u}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::from(1)
        }
    }
}
