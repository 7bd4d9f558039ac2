//! What a wait looks like where people see it: on a terminal (a pseudo-terminal from
//! util-linux `script`), a spinner that says what the request waits for and for how long; off a
//! terminal (a pipe, CI's log) plain lines and no control characters; under `-q` nothing but
//! the outcome. Each ends at the timeout with how to resume.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_stack::{Stack, DEMO_RULES};
use support::cli::text;
use support::flow::User;

const WRITE: &str = "UPDATE sales.orders SET total = total WHERE id = 1";

/// The shell words of `p0 psql` for a write nobody approves, waiting at most 3 s.
fn waiting_args(stack: &Stack, quiet: bool) -> Vec<String> {
    let mut args: Vec<String> = vec![env!("CARGO_BIN_EXE_p0").into()];
    // p0's own -q comes before the client's name: after it, -q is psql's.
    if quiet {
        args.push("-q".into());
    }
    args.extend(
        [
            "psql",
            "-d",
            &stack.resource,
            "-c",
            WRITE,
            "--reason",
            "r",
            "--timeout",
            "3s",
        ]
        .map(String::from),
    );
    args
}

/// Runs `args` on a pseudo-terminal; everything the terminal received.
fn on_a_terminal(user: &User, args: &[String]) -> (Option<i32>, String) {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        .env("P0_CONFIG_DIR", user.path())
        .env("TERM", "xterm")
        .env_remove("P0_SERVER")
        .output()
        .unwrap();
    (out.status.code(), text(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_spins_on_a_terminal_and_prints_plain_lines_elsewhere() {
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);

    let (code, seen) = on_a_terminal(&alice, &waiting_args(&stack, false));
    assert_eq!(code, Some(4), "{seen}");
    // indicatif's spinner frames are Braille patterns.
    let spinning = |c: char| ('\u{2800}'..='\u{28ff}').contains(&c);
    assert!(seen.chars().any(spinning), "no spinner: {seen:?}");
    assert!(seen.contains("waits for approval ("), "{seen:?}");
    assert!(seen.contains("--resume"), "{seen:?}");

    // Off a terminal: the same wait, in lines a log keeps.
    let args = waiting_args(&stack, false);
    let out = alice
        .cmd(&args[1..].iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("waits for approval") && said.contains("--resume"),
        "{said}"
    );
    assert!(
        !said
            .chars()
            .any(|c| spinning(c) || c == '\r' || c == '\u{1b}'),
        "{said:?}"
    );

    // -q on a terminal: no spinner, the outcome still said.
    let (code, seen) = on_a_terminal(&alice, &waiting_args(&stack, true));
    assert_eq!(code, Some(4), "{seen}");
    assert!(!seen.chars().any(spinning), "{seen:?}");
    assert!(seen.contains("--resume"), "{seen:?}");
}
