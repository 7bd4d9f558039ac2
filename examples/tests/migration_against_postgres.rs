//! The migration example against a real, hardened PostgreSQL: the GRANTs it prints, resolved
//! against the live catalog, are enough for a fresh role to run the migration — and without
//! them the same role cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_testkit::PgServer;
use std::process::Command;

/// The example's binary, built by `cargo test` next to this test's own.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[test]
fn printed_grants_are_enough_to_run_the_migration() {
    let pg = PgServer::start().unwrap();
    pg.create_hardened_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE SCHEMA sales;
         CREATE TABLE sales.orders (id serial PRIMARY KEY, total numeric(10,3));
         CREATE TABLE sales.audit_log (id serial PRIMARY KEY, note text);
         CREATE TABLE sales.tmp_import (x int);
         INSERT INTO sales.orders (total) VALUES (1.234), (5.678);
         INSERT INTO sales.tmp_import VALUES (1);
         CREATE ROLE migrator LOGIN PASSWORD 'migrator-pw-0123456789';",
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/migration.sql");
    let migrate = || pg.psql_file_as("migrator", "migrator-pw-0123456789", "app", script);
    assert!(
        migrate().is_err(),
        "the hardened database let a bare role migrate"
    );

    let out = Command::new(example("migration_grants"))
        .args([script, "migrator", "--database-url", &pg.url("app")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grants = String::from_utf8(out.stdout).unwrap();
    assert!(
        grants.contains(r#"GRANT USAGE ON SEQUENCE "sales"."audit_log_id_seq" TO "migrator";"#),
        "the live catalog resolves the sequence behind the default:\n{grants}"
    );
    assert!(!grants.contains("not resolved"), "{grants}");
    pg.psql("app", &grants).unwrap();
    migrate().unwrap();
    let left = pg
        .psql("app", "SELECT count(*) FROM sales.tmp_import")
        .unwrap();
    assert_eq!(left.trim(), "0");
}
