//! Every MySQL case of `cases/mysql.sql` against a real MariaDB: sound, minimal, refusals
//! refused with a one-line reason, both from the text alone and against the server's live
//! catalog (as the agent and `p0 explain --database-url` extract). Each case is a trial of its
//! own — `sound_and_minimal::…`, `refused::…`, `with_catalog::…` — against one server started
//! once; the cases take turns on it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::extract::{Catalog, MySqlExtractor};
use p0_core::{ObjectKind, Permission, PermissionExtractor};
use p0_testkit::MariaDbServer;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::cases::Case;
use support::trials::{slug, Suite};

fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
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
        ObjectKind::Table => format!("{}.{}", ident(o.schema.as_deref().unwrap()), ident(&o.name)),
        ObjectKind::Function | ObjectKind::Procedure => format!(
            "{} {}.{}",
            if o.kind == ObjectKind::Procedure {
                "PROCEDURE"
            } else {
                "FUNCTION"
            },
            ident(o.schema.as_deref().unwrap()),
            ident(&o.name)
        ),
        ObjectKind::Database => format!("{}.*", ident(&o.name)),
        _ => unreachable!("{p:?}"),
    };
    format!("{}{cols} ON {what}", p.privilege)
}

fn run_as(
    db: &MariaDbServer,
    user: &str,
    password: &str,
    database: Option<&str>,
    sql: &str,
) -> Result<(), String> {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-N", "-B", "-u", user])
        .arg(format!("-P{}", db.port))
        .env("MYSQL_PWD", password);
    if let Some(d) = database {
        cmd.arg("-D").arg(d);
    }
    let out = cmd
        .arg("-e")
        .arg(format!("START TRANSACTION; {sql}; ROLLBACK"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The server with the `shop` schema, and the permission counts for the summary.
struct Corpus {
    /// One case at a time: cases grant, revoke and run statements on shared tables.
    db: Mutex<MariaDbServer>,
    /// The server's catalog, read once after the setup.
    catalog: Arc<Catalog>,
    granted: AtomicUsize,
    necessary: AtomicUsize,
}

async fn start() -> Corpus {
    let db = MariaDbServer::start().unwrap();
    db.sql(include_str!("cases/mysql_setup.sql")).unwrap();
    let catalog = Catalog::load_mysql(&db.url("shop"), None).await.unwrap();
    Corpus {
        catalog: Arc::new(catalog),
        db: Mutex::new(db),
        granted: AtomicUsize::new(0),
        necessary: AtomicUsize::new(0),
    }
}

/// A case to refuse: refused, with a one-line reason.
fn refused(x: &MySqlExtractor, case: &Case) -> Result<(), String> {
    match x.extract(&case.sql) {
        Err(e) if !e.to_string().contains('\n') => Ok(()),
        Err(e) => Err(format!("{}: refusal is not one line: {e}", case.name)),
        Ok(ex) => Err(format!("{}: not refused: {:?}", case.name, ex.permissions)),
    }
}

/// A case to accept: a fresh user holding exactly the extracted set runs it, and fails
/// without any one of them. `i` names the user.
fn sound_and_minimal(c: &Corpus, x: &MySqlExtractor, i: usize, case: &Case) -> Result<(), String> {
    let ex = x
        .extract(&case.sql)
        .map_err(|e| format!("{}: extraction failed: {e}", case.name))?;
    // A case that panicked does not stop the others.
    let db = c.db.lock().unwrap_or_else(|e| e.into_inner());
    run_as(&db, "root", &db.password, Some("shop"), &case.sql)
        .map_err(|e| format!("{}: case fails as root: {e}", case.name))?;
    let mut failures = Vec::new();
    let user = format!("case_{i}");
    db.sql(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'case-pw'"))
        .unwrap();
    let perms: Vec<Permission> = ex.permissions.iter().collect();
    let uses_shop = perms
        .iter()
        .any(|p| p.object.schema.as_deref() == Some("shop"));
    let dbname = uses_shop.then_some("shop");
    for p in &perms {
        db.sql(&format!("GRANT {} TO '{user}'@'%'", target(p)))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
    match run_as(&db, &user, "case-pw", dbname, &case.sql) {
        Err(e) => failures.push(format!("{}: UNSOUND with {perms:?}: {e}", case.name)),
        Ok(()) => {
            for p in &perms {
                c.granted.fetch_add(1, Ordering::SeqCst);
                db.sql(&format!("REVOKE {} FROM '{user}'@'%'", target(p)))
                    .unwrap();
                if run_as(&db, &user, "case-pw", dbname, &case.sql).is_err() {
                    c.necessary.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.push(format!("{}: not minimal: `{p}` is not needed", case.name));
                }
                db.sql(&format!("GRANT {} TO '{user}'@'%'", target(p)))
                    .unwrap();
            }
        }
    }
    db.sql(&format!("DROP USER '{user}'@'%'")).unwrap();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::new(2, start);
    let cases = support::cases::parse(include_str!("cases/mysql.sql"));
    let with_catalog = cases.iter().cloned().map(|case| (true, case));
    let trials = cases
        .iter()
        .cloned()
        .map(|case| (false, case))
        .chain(with_catalog)
        .enumerate()
        .map(|(i, (catalog, case))| {
            let group = match (catalog, case.expect_ok) {
                (true, _) => "with_catalog",
                (false, true) => "sound_and_minimal",
                (false, false) => "refused",
            };
            suite.trial(
                format!("{group}::{}", slug(&case.name)),
                move |c: Arc<Corpus>| async move {
                    let mut x = MySqlExtractor::new(Some("shop".into()));
                    if catalog {
                        x = x.with_catalog(c.catalog.clone());
                    }
                    let outcome = if case.expect_ok {
                        sound_and_minimal(&c, &x, i, &case)
                    } else {
                        refused(&x, &case)
                    };
                    if let Err(failure) = outcome {
                        panic!("{failure}");
                    }
                },
            )
        })
        .collect();
    let statements = support::cases::statements(&cases);
    suite
        .run_then(&args, trials, |c| {
            println!(
                "mysql corpus: {} cases, {statements} statements, {}/{} permissions necessary",
                cases.len(),
                c.necessary.load(Ordering::SeqCst),
                c.granted.load(Ordering::SeqCst),
            );
        })
        .exit();
}
