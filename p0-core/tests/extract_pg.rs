//! Every PostgreSQL case of `cases/pg.sql` against a real, hardened PostgreSQL with pagila:
//! sound (a fresh role holding exactly the extracted set runs it), minimal (revoking any one
//! permission makes it fail), and refusals refused with a one-line reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::extract::{Catalog, PostgresExtractor};
use p0_core::{ObjectKind, Permission, PermissionExtractor};
use p0_testkit::PgServer;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn target(p: &Permission) -> String {
    let o = &p.object;
    let cols = p
        .columns
        .as_ref()
        .map(|c| {
            format!(
                " ({})",
                c.iter().map(|x| ident(x)).collect::<Vec<_>>().join(", ")
            )
        })
        .unwrap_or_default();
    let what = match o.kind {
        ObjectKind::Database => format!("DATABASE {}", ident(&o.name)),
        ObjectKind::Schema => format!("SCHEMA {}", ident(&o.name)),
        ObjectKind::Table => format!(
            "TABLE {}.{}",
            ident(o.schema.as_deref().unwrap()),
            ident(&o.name)
        ),
        ObjectKind::Sequence => format!(
            "SEQUENCE {}.{}",
            ident(o.schema.as_deref().unwrap()),
            ident(&o.name)
        ),
        ObjectKind::Function => format!(
            "ROUTINE {}.{}({})",
            ident(o.schema.as_deref().unwrap()),
            ident(&o.name),
            o.signature.as_deref().unwrap_or("")
        ),
        _ => unreachable!(),
    };
    format!("{}{cols} ON {what}", p.privilege)
}

struct Db<'a> {
    pg: &'a PgServer,
    admin: sqlx::PgConnection,
}

impl Db<'_> {
    async fn admin(&mut self, sql: &str) {
        use sqlx::Executor;
        self.admin
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs `sql` as `user` inside a transaction that is rolled back. Ok or the error text.
    fn run_as(&self, user: &str, sql: &str) -> Result<(), String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "pagila",
                "-U",
                user,
            ])
            // The Unix socket (SCRAM, like TCP); CONNECT is still checked.
            .arg("-h")
            .arg(self.pg.socket_dir())
            .arg("-p")
            .arg(self.pg.port.to_string())
            .args(["-c", "BEGIN", "-c", sql, "-c", "ROLLBACK"])
            .env(
                "PGPASSWORD",
                if user == "postgres" {
                    self.pg.password.as_str()
                } else {
                    "case-pw"
                },
            )
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_cases_are_sound_minimal_and_refused() {
    let pg = PgServer::start().unwrap();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    pg.psql("postgres", "CREATE DATABASE pagila").unwrap();
    for f in [
        shared.join("pagila/schema.sql"),
        shared.join("pagila/data.sql"),
        shared.join("pg-cases/setup.sql"),
    ] {
        pg.psql_file("pagila", &f).unwrap();
    }
    pg.psql_file(
        "pagila",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/pg_setup.sql"),
    )
    .unwrap();
    let catalog = Arc::new(Catalog::load_postgres(&pg.url("pagila")).await.unwrap());
    let admin = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url("pagila"))
        .await
        .unwrap();
    let mut db = Db { pg: &pg, admin };

    let cases = support::cases::parse(include_str!("cases/pg.sql"));
    let mut failures = Vec::new();
    let (mut granted, mut necessary) = (0usize, 0usize);
    // Table-level grants are checked for soundness and minimality; column-level grants
    // (`--columns`) for soundness.
    for columns in [false, true] {
        let x = PostgresExtractor::new()
            .with_catalog(catalog.clone())
            .with_columns(columns);
        for (i, case) in cases.iter().enumerate() {
            if columns && !case.expect_ok {
                continue;
            }
            let result = x.extract(&case.sql);
            if !case.expect_ok {
                match result {
                    Err(e) if !e.to_string().contains('\n') && !e.to_string().is_empty() => {}
                    Err(e) => failures.push(format!("{}: refusal is not one line: {e}", case.name)),
                    Ok(ex) => {
                        failures.push(format!("{}: not refused: {:?}", case.name, ex.permissions))
                    }
                }
                continue;
            }
            let ex = match result {
                Ok(ex) => ex,
                Err(e) => {
                    failures.push(format!("{}: extraction failed: {e}", case.name));
                    continue;
                }
            };
            if !columns {
                if let Err(e) = db.run_as("postgres", &case.sql) {
                    failures.push(format!("{}: case fails as superuser: {e}", case.name));
                    continue;
                }
            }
            let role = format!("case_{i}");
            db.admin(&format!("CREATE ROLE {role} LOGIN PASSWORD 'case-pw'"))
                .await;
            let perms: Vec<Permission> = ex.permissions.iter().collect();
            for p in &perms {
                db.admin(&format!("GRANT {} TO {role}", target(p))).await;
            }
            match db.run_as(&role, &case.sql) {
                Err(e) => failures.push(format!(
                    "{}: UNSOUND (columns: {columns}) with {perms:?}: {e}",
                    case.name
                )),
                Ok(()) if columns => {}
                Ok(()) => {
                    for p in &perms {
                        granted += 1;
                        db.admin(&format!("REVOKE {} FROM {role}", target(p))).await;
                        if db.run_as(&role, &case.sql).is_err() {
                            necessary += 1;
                        } else {
                            failures
                                .push(format!("{}: not minimal: `{p}` is not needed", case.name));
                        }
                        db.admin(&format!("GRANT {} TO {role}", target(p))).await;
                    }
                }
            }
            db.admin(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
                .await;
        }
    }
    let statements = support::cases::statements(&cases);
    println!(
        "pg corpus: {} cases, {statements} statements, {necessary}/{granted} permissions necessary",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
