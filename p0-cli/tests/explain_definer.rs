//! `p0 explain --database-url` warns about SECURITY DEFINER functions that PUBLIC may execute
//! in a schema the explained query gets USAGE on (the agent refuses such plans by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_testkit::PgServer;
use std::process::{Command, Output};

fn explain(url: &str, sql: &str) -> Output {
    let dir = p0_testkit::private_tempdir("p0-explain.").unwrap();
    Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(["explain", "--json", "--database-url", url, sql])
        .env("P0_CONFIG_DIR", dir.path())
        .output()
        .unwrap()
}

#[test]
fn explain_warns_about_definer_functions_reachable_through_schema_usage() {
    let pg = PgServer::start().unwrap();
    pg.create_hardened_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE public.orders (id int); \
         CREATE FUNCTION public.read_secret(i int) RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'; \
         GRANT EXECUTE ON FUNCTION public.read_secret(int) TO PUBLIC; \
         CREATE SCHEMA quiet; CREATE TABLE quiet.t (id int); \
         CREATE FUNCTION quiet.kept() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';",
    )
    .unwrap();
    let url = pg.url("app");
    let out = explain(&url, "SELECT id FROM orders");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: SECURITY DEFINER function `public.read_secret(integer)`")
            && stderr
                .contains("REVOKE EXECUTE ON FUNCTION public.read_secret(integer) FROM PUBLIC"),
        "{stderr}"
    );
    // The JSON on standard output is unchanged by the warning.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["engine"], "postgres");
    // A schema whose definer functions PUBLIC may not execute gives no warning.
    let out = explain(&url, "SELECT id FROM quiet.t");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn explain_says_which_catalog_object_needs_each_permission() {
    let pg = PgServer::start().unwrap();
    pg.create_hardened_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE public.notes (id int, note text); \
         CREATE TABLE public.items (id int); \
         CREATE FUNCTION public.note_of(i int) RETURNS text LANGUAGE sql STABLE \
           AS 'SELECT note FROM public.notes WHERE id = i'; \
         CREATE VIEW public.v AS SELECT id, public.note_of(id) AS n FROM public.items;",
    )
    .unwrap();
    let out = explain(&pg.url("app"), "SELECT n FROM v");
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let because = |privilege: &str, name: &str| -> Vec<String> {
        json["provenance"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["privilege"] == privilege && p["object"]["name"] == name)
            .map(|p| serde_json::from_value(p["because"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert_eq!(because("SELECT", "v"), ["the statement"], "{json}");
    assert_eq!(because("EXECUTE", "note_of"), ["view `public.v`"], "{json}");
    let notes = because("SELECT", "notes");
    assert!(
        notes.len() == 1 && notes[0].starts_with("body of function `public.note_of(integer)`"),
        "{json}"
    );
    assert_eq!(
        json["provenance"].as_array().unwrap().len(),
        json["permissions"].as_array().unwrap().len()
    );
}
