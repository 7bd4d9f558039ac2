//! Every MySQL case of `cases/mysql.sql` against a real MariaDB: sound, minimal, refusals
//! refused with a one-line reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::extract::MySqlExtractor;
use p0_core::{ObjectKind, Permission, PermissionExtractor};
use p0_testkit::MariaDbServer;
use std::process::Command;

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
        ObjectKind::Function => format!(
            "FUNCTION {}.{}",
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

#[test]
fn mysql_cases_are_sound_minimal_and_refused() {
    let db = MariaDbServer::start().unwrap();
    db.sql(include_str!("cases/mysql_setup.sql")).unwrap();
    let x = MySqlExtractor::new(Some("shop".into()));
    let cases = support::cases::parse(include_str!("cases/mysql.sql"));
    let mut failures = Vec::new();
    let (mut granted, mut necessary) = (0usize, 0usize);
    for (i, case) in cases.iter().enumerate() {
        let result = x.extract(&case.sql);
        if !case.expect_ok {
            match result {
                Err(e) if !e.to_string().contains('\n') => {}
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
        if let Err(e) = run_as(&db, "root", &db.password, Some("shop"), &case.sql) {
            failures.push(format!("{}: case fails as root: {e}", case.name));
            continue;
        }
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
                    granted += 1;
                    db.sql(&format!("REVOKE {} FROM '{user}'@'%'", target(p)))
                        .unwrap();
                    if run_as(&db, &user, "case-pw", dbname, &case.sql).is_err() {
                        necessary += 1;
                    } else {
                        failures.push(format!("{}: not minimal: `{p}` is not needed", case.name));
                    }
                    db.sql(&format!("GRANT {} TO '{user}'@'%'", target(p)))
                        .unwrap();
                }
            }
        }
        db.sql(&format!("DROP USER '{user}'@'%'")).unwrap();
    }
    let statements = support::cases::statements(&cases);
    println!("mysql corpus: {} cases, {statements} statements, {necessary}/{granted} permissions necessary", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
