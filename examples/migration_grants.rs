//! Embed the extractor in another tool: print the GRANTs a migration script's data changes
//! would need, or why the script cannot be run with grants at all.
//!
//!     cargo run -p p0-examples --example migration_grants -- script.sql [ROLE]

use p0_core::{ObjectKind, PermissionExtractor, PostgresExtractor};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: migration_grants SCRIPT.sql [ROLE]");
        return ExitCode::from(2);
    };
    let role = args.next().unwrap_or_else(|| "migrator".into());
    let sql = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read `{path}`: {e}");
            return ExitCode::from(1);
        }
    };
    match PostgresExtractor::new().with_database("app").extract(&sql) {
        Ok(x) => {
            for p in x.permissions.iter() {
                let o = &p.object;
                let target = match o.kind {
                    ObjectKind::Database => format!("DATABASE {}", o.name),
                    ObjectKind::Schema => format!("SCHEMA {}", o.name),
                    ObjectKind::Sequence => {
                        format!("SEQUENCE {}.{}", o.schema.as_deref().unwrap_or(""), o.name)
                    }
                    ObjectKind::Function => {
                        format!("FUNCTION {}.{}", o.schema.as_deref().unwrap_or(""), o.name)
                    }
                    _ => format!("TABLE {}.{}", o.schema.as_deref().unwrap_or(""), o.name),
                };
                println!("GRANT {} ON {target} TO {role};", p.privilege);
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
