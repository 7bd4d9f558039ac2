//! Every PostgreSQL case of `cases/pg.sql` against a real, hardened PostgreSQL with pagila:
//! sound (a fresh role holding exactly the extracted set runs it), minimal (revoking any one
//! permission makes it fail), and refusals refused with a one-line reason. Each case is a
//! trial of its own — `table_grants::…` (sound and minimal), `column_grants::…` (sound with
//! `--columns`), `refused::…` — against one database started once; the cases take turns on it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::extract::{Catalog, PostgresExtractor};
use p0_core::{ObjectKind, Permission, PermissionExtractor};
use p0_testkit::PgServer;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::cases::Case;
use support::trials::{slug, Suite};

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
        ObjectKind::Function | ObjectKind::Procedure => format!(
            "{} {}.{}({})",
            if o.kind == ObjectKind::Procedure {
                "PROCEDURE"
            } else {
                "FUNCTION"
            },
            ident(o.schema.as_deref().unwrap()),
            ident(&o.name),
            o.signature.as_deref().unwrap_or("")
        ),
        _ => unreachable!(),
    };
    format!("{}{cols} ON {what}", p.privilege)
}

struct Db {
    pg: PgServer,
    admin: sqlx::PgConnection,
}

impl Db {
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

/// The database with pagila, its catalog, and the permission counts for the summary.
struct Corpus {
    /// One case at a time: cases grant, revoke and run statements on shared tables.
    db: tokio::sync::Mutex<Db>,
    catalog: Arc<Catalog>,
    granted: AtomicUsize,
    necessary: AtomicUsize,
}

async fn start() -> Corpus {
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
    Corpus {
        db: tokio::sync::Mutex::new(Db { pg, admin }),
        catalog,
        granted: AtomicUsize::new(0),
        necessary: AtomicUsize::new(0),
    }
}

/// A case to refuse: refused, with a one-line reason.
fn refused(x: &PostgresExtractor, case: &Case) -> Result<(), String> {
    match x.extract(&case.sql) {
        Err(e) if !e.to_string().contains('\n') && !e.to_string().is_empty() => Ok(()),
        Err(e) => Err(format!("{}: refusal is not one line: {e}", case.name)),
        Ok(ex) => Err(format!("{}: not refused: {:?}", case.name, ex.permissions)),
    }
}

/// A case to accept: a fresh role holding exactly the extracted set runs it; with table-level
/// grants (`columns` false) it also fails without any one of them. `i` names the role.
async fn sound_and_minimal(
    c: &Corpus,
    x: &PostgresExtractor,
    i: usize,
    case: &Case,
    columns: bool,
) -> Result<(), String> {
    let ex = x
        .extract(&case.sql)
        .map_err(|e| format!("{}: extraction failed: {e}", case.name))?;
    let mut db = c.db.lock().await;
    if !columns {
        db.run_as("postgres", &case.sql)
            .map_err(|e| format!("{}: case fails as superuser: {e}", case.name))?;
    }
    let mut failures = Vec::new();
    let role = if columns {
        format!("case_{i}_columns")
    } else {
        format!("case_{i}")
    };
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
                c.granted.fetch_add(1, Ordering::SeqCst);
                db.admin(&format!("REVOKE {} FROM {role}", target(p))).await;
                if db.run_as(&role, &case.sql).is_err() {
                    c.necessary.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.push(format!("{}: not minimal: `{p}` is not needed", case.name));
                }
                db.admin(&format!("GRANT {} TO {role}", target(p))).await;
            }
        }
    }
    db.admin(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::new(2, start);
    let cases = support::cases::parse(include_str!("cases/pg.sql"));
    let mut trials = Vec::new();
    // Table-level grants are checked for soundness and minimality; column-level grants
    // (`--columns`) for soundness.
    for columns in [false, true] {
        for (i, case) in cases.iter().cloned().enumerate() {
            if columns && !case.expect_ok {
                continue;
            }
            let group = match (case.expect_ok, columns) {
                (false, _) => "refused",
                (true, false) => "table_grants",
                (true, true) => "column_grants",
            };
            trials.push(suite.trial(
                format!("{group}::{}", slug(&case.name)),
                move |c: Arc<Corpus>| async move {
                    let x = PostgresExtractor::new()
                        .with_catalog(c.catalog.clone())
                        .with_columns(columns);
                    let outcome = if case.expect_ok {
                        sound_and_minimal(&c, &x, i, &case, columns).await
                    } else {
                        refused(&x, &case)
                    };
                    if let Err(failure) = outcome {
                        panic!("{failure}");
                    }
                },
            ));
        }
    }
    let statements = support::cases::statements(&cases);
    suite
        .run_then(&args, trials, |c| {
            println!(
                "pg corpus: {} cases, {statements} statements, {}/{} permissions necessary",
                cases.len(),
                c.necessary.load(Ordering::SeqCst),
                c.granted.load(Ordering::SeqCst),
            );
        })
        .exit();
}
