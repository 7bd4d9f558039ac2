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

#[test]
fn the_forty_thousand_term_query_gets_one_line_naming_the_bound() {
    for engine in ["postgres", "mysql"] {
        for (sql, why) in [
            (
                format!("SELECT {}", vec!["1"; 40_000].join("+")),
                "query larger than 65536 bytes",
            ),
            (
                format!("SELECT {}", vec!["1"; 32_000].join("+")),
                "query nesting deeper than 1000 levels",
            ),
            (
                format!("SELECT {}1{}", "(".repeat(30_000), ")".repeat(30_000)),
                "query nesting deeper than 1000 levels",
            ),
        ] {
            let (code, _, err) = explain(engine, &sql);
            assert_eq!(code, 1, "{engine}: {err}");
            assert!(err.contains(why), "{engine}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{engine}: {err}");
        }
    }
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
