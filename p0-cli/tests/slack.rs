//! Approving from Slack, end to end against a stand-in for Slack's Web API on loopback: a
//! request that needs approval is posted as an interactive message showing what is asked;
//! clicks arrive as Slack signs them; badly signed, stale or altered calls are refused; the
//! requester cannot approve their own request, nor an unconfirmed e-mail approve anything;
//! the approver's click approves exactly what the message showed, the message says so, and
//! the requester's waiting CLI gets its credentials and runs the write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_stack::slack::{sign, SlackApi};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::process::Stdio;
use support::cli::text;
use support::flow::{wait_until, User};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TOKEN: &str = "xoxb-test-token";

/// Sends a click as Slack does: form-encoded `payload`, signed at `ts` with `secret`.
async fn click(
    stack: &Stack,
    payload: &serde_json::Value,
    ts: i64,
    secret: &str,
    tamper: bool,
) -> u16 {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let signature = sign(secret, ts, &body);
    let sent = if tamper {
        body.replace("p0_deny", "p0_approve")
    } else {
        body
    };
    reqwest::Client::new()
        .post(format!("{}/slack/interactions", stack.server_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature)
        .body(sent)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn payload(api: &SlackApi, user: &str, action: &str, value: &str, n: u32) -> serde_json::Value {
    serde_json::json!({
        "type": "block_actions",
        "user": { "id": user },
        "actions": [ { "action_id": action, "value": value, "type": "button" } ],
        "response_url": api.response_url(n),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approver_approves_from_slack_and_the_requester_gets_credentials() {
    let api = SlackApi::start(
        TOKEN,
        &[
            ("UBOB", "bob@example.com", true),
            ("UALICE", "alice@example.com", true),
            ("UMALLORY", "dave@example.com", false),
        ],
    )
    .await
    .unwrap();
    let mut stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    stack.set_server_extra(&format!(
        "[slack]\nsigning_secret = \"{SECRET}\"\nbot_token = \"{TOKEN}\"\nchannel = \"C0P0\"\napi_url = \"{}\"\n[slack.groups]\ndba = [\"bob@example.com\", \"dave@example.com\", \"alice@example.com\"]\n",
        api.url
    ));
    stack.stop_server();
    stack.start_server().await.unwrap();

    // Alice asks for a write: it needs a DBA; her CLI waits.
    let alice = User::login(&stack, "alice@example.com", &[]);
    let sql = "UPDATE sales.orders SET total = total WHERE id = 1";
    let waiting = alice
        .cmd(&[
            "psql",
            "-d",
            RESOURCE,
            "-c",
            sql,
            "--reason",
            "fix the totals",
            "--duration",
            "60s",
            "-X",
            "-q",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the Slack message", 30, || !api.messages().is_empty()).await;
    let message = api.messages()[0].clone();
    assert_eq!(message["channel"], "C0P0");
    let shown = message["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    for part in [
        "alice@example.com",
        RESOURCE,
        "fix the totals",
        sql,
        "UPDATE",
        "sales",
        "anything else needs a DBA",
    ] {
        assert!(shown.contains(part), "`{part}` not in the message: {shown}");
    }
    let buttons = &message["blocks"][1]["elements"];
    assert_eq!(buttons[0]["action_id"], "p0_approve");
    assert_eq!(buttons[1]["action_id"], "p0_deny");
    let value = buttons[0]["value"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();

    // Calls Slack did not sign, or not now, or not like this, are refused.
    let bob_approves = payload(&api, "UBOB", "p0_approve", &value, 1);
    assert_eq!(
        click(&stack, &bob_approves, now, "not-the-secret", false).await,
        401
    );
    assert_eq!(
        click(&stack, &bob_approves, now - 600, SECRET, false).await,
        401
    );
    let bob_denies = payload(&api, "UBOB", "p0_deny", &value, 1);
    assert_eq!(click(&stack, &bob_denies, now, SECRET, true).await, 401);
    assert!(api.responses().is_empty(), "{:?}", api.responses());

    // Signed clicks that the rules refuse: answered to the clicking user only.
    let refusals = [
        (
            payload(&api, "UALICE", "p0_approve", &value, 2),
            "own request",
        ),
        (
            payload(&api, "UMALLORY", "p0_approve", &value, 3),
            "not confirmed",
        ),
        (
            payload(
                &api,
                "UBOB",
                "p0_approve",
                &format!("{} 0000", value.split(' ').next().unwrap()),
                4,
            ),
            "",
        ),
    ];
    for (i, (p, why)) in refusals.iter().enumerate() {
        assert_eq!(click(&stack, p, now, SECRET, false).await, 200);
        wait_until("the refusal", 10, || api.responses().len() > i).await;
        let r = &api.responses()[i];
        assert_eq!(r["replace_original"], false, "{r}");
        let t = r["text"].as_str().unwrap();
        assert!(
            t.starts_with("p0 refused: ") && t.contains(why),
            "{why}: {t}"
        );
    }
    assert!(
        !alice.p0(&["ls", "--json"]).stdout.is_empty()
            && text(&alice.p0(&["ls"])).contains("pending"),
        "the request is still pending"
    );

    // Bob approves what the message showed: the message says so, Alice's write runs.
    assert_eq!(click(&stack, &bob_approves, now, SECRET, false).await, 200);
    wait_until("the outcome", 10, || api.responses().len() > 3).await;
    let outcome = &api.responses()[3];
    assert_eq!(outcome["replace_original"], true, "{outcome}");
    assert_eq!(outcome["text"], "Approved by bob@example.com", "{outcome}");
    assert!(outcome["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["type"] != "actions"));
    let done = tokio::task::spawn_blocking(move || waiting.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(done.status.success(), "{}", text(&done));
    // The audit log says who approved, and through what.
    let log = String::from_utf8(alice.p0(&["audit", "--json"]).stdout).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&log).unwrap();
    let approved = entries
        .as_array()
        .or_else(|| entries["entries"].as_array())
        .unwrap()
        .iter()
        .find(|e| e["action"] == "request.approved")
        .unwrap_or_else(|| panic!("no approval in {log}"))
        .clone();
    assert_eq!(approved["actor"], "bob@example.com", "{approved}");
    assert!(
        approved["detail"].to_string().contains("slack"),
        "{approved}"
    );
}
