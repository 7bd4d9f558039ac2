//! `p0 explain` on hostile SQL: bounded like the agent, one line on stderr, exit code 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

fn explain(engine: &str, sql: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(["explain", "--engine", engine, "--json", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(sql.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sql` is refused on `engine` with exit code 1 and one line naming `why`.
fn refused_naming_the_bound(engine: &str, sql: &str, why: &str) {
    let (code, _, err) = explain(engine, sql);
    assert_eq!(code, 1, "{engine}: {err}");
    assert!(err.contains(why), "{engine}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{engine}: {err}");
}

/// The forty-thousand-term sum: larger than the size bound.
fn forty_thousand_terms() -> String {
    format!("SELECT {}", vec!["1"; 40_000].join("+"))
}

/// A sum small enough to pass the size bound, nested deeper than the depth bound.
fn thirty_two_thousand_terms() -> String {
    format!("SELECT {}", vec!["1"; 32_000].join("+"))
}

fn thirty_thousand_parentheses() -> String {
    format!("SELECT {}1{}", "(".repeat(30_000), ")".repeat(30_000))
}

const TOO_LARGE: &str = "query larger than 65536 bytes";
const TOO_DEEP: &str = "query nesting deeper than 1000 levels";

#[test]
fn the_forty_thousand_term_query_is_refused_naming_the_size_bound_postgres() {
    refused_naming_the_bound("postgres", &forty_thousand_terms(), TOO_LARGE);
}

#[test]
fn the_forty_thousand_term_query_is_refused_naming_the_size_bound_mysql() {
    refused_naming_the_bound("mysql", &forty_thousand_terms(), TOO_LARGE);
}

#[test]
fn a_thirty_two_thousand_term_sum_is_refused_naming_the_depth_bound_postgres() {
    refused_naming_the_bound("postgres", &thirty_two_thousand_terms(), TOO_DEEP);
}

#[test]
fn a_thirty_two_thousand_term_sum_is_refused_naming_the_depth_bound_mysql() {
    refused_naming_the_bound("mysql", &thirty_two_thousand_terms(), TOO_DEEP);
}

#[test]
fn thirty_thousand_nested_parentheses_are_refused_naming_the_depth_bound_postgres() {
    refused_naming_the_bound("postgres", &thirty_thousand_parentheses(), TOO_DEEP);
}

#[test]
fn thirty_thousand_nested_parentheses_are_refused_naming_the_depth_bound_mysql() {
    refused_naming_the_bound("mysql", &thirty_thousand_parentheses(), TOO_DEEP);
}

#[test]
fn locking_reads_are_shown_as_locks() {
    let (code, out, err) = explain("postgres", "SELECT * FROM film FOR NO KEY UPDATE");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["locked"][0]["name"], "film", "{out}");
    let (code, out, err) = explain("mysql", "SELECT * FROM film LOCK IN SHARE MODE");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["locked"][0]["name"], "film", "{out}");
}
