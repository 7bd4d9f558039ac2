//! The hostile-caller suite of the server's API, forged proofs: someone holding bob's sniffed
//! ID token, with no proof, a proof by another key, a genuine proof captured from another
//! call, or one outside the allowed clock skew. Each forgery against each operation (list,
//! show, approve, deny, revoke, audit) is a trial of its own — `<forgery>::<operation>` —
//! against one stack (server, agent, PostgreSQL) started once: each asserts that the answer is
//! the generic 401 that leaks nothing, that nothing changed (the store's requests and audit log
//! byte for byte, the database's p0 users and roles), and that bob's own calls still work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::proof::{self, PROOF_HEADER};
use reqwest::Method;
use std::sync::Arc;
use support::api::{
    bearer, fixture, key_of, now, op_refused, proof_by, user, Fixture, Op, User, OPS,
};
use support::trials::Suite;

/// The stack, and mallory, who holds a login of her own.
struct Forged {
    fx: Fixture,
    mallory: User,
}

async fn start() -> Forged {
    let fx = fixture().await;
    let mallory = user(&fx.stack, "mallory@example.com", &[]);
    Forged { fx, mallory }
}

type Headers = Vec<(&'static str, String)>;

/// A proof sent with bob's token: by default bob's genuine proof of the call.
struct Proof<'a> {
    signer: &'a User,
    key: &'a User,
    method: &'a Method,
    path: &'a str,
    body: &'a [u8],
    token: &'a str,
    iat: i64,
}

fn genuine<'a>(f: &'a Forged, op: &'a Op) -> Proof<'a> {
    let bob = &f.fx.bob;
    Proof {
        signer: bob,
        key: bob,
        method: &op.method,
        path: &op.path,
        body: &op.body,
        token: &bob.token,
        iat: now(),
    }
}

impl Proof<'_> {
    /// Bob's token, the key named, and the proof.
    fn headers(&self, f: &Forged) -> Headers {
        vec![
            bearer(&f.fx.bob),
            key_of(self.key),
            (
                PROOF_HEADER,
                proof_by(
                    self.signer,
                    self.method,
                    self.path,
                    self.body,
                    self.token,
                    self.iat,
                ),
            ),
        ]
    }
}

/// Bob's genuine proof made at `now() + shift`.
fn shifted(f: &Forged, op: &Op, shift: i64) -> Headers {
    Proof {
        iat: now() + shift,
        ..genuine(f, op)
    }
    .headers(f)
}

type Forgery = (&'static str, fn(&Forged, &Op) -> Headers);

/// Every forgery: what it is called, and the headers it sends with an operation.
fn forgeries() -> Vec<Forgery> {
    vec![
        // The bare token, as the agent or a log saw it; and with bob's public key (which is public).
        ("a_sniffed_token_alone", |f, _| vec![bearer(&f.fx.bob)]),
        ("a_sniffed_token_with_its_owners_public_key", |f, _| {
            vec![bearer(&f.fx.bob), key_of(&f.fx.bob)]
        }),
        // Mallory's own key and proof: the token does not commit to her key.
        (
            "a_sniffed_token_with_a_key_and_proof_of_another",
            |f, op| {
                let m = &f.mallory;
                Proof {
                    signer: m,
                    key: m,
                    ..genuine(f, op)
                }
                .headers(f)
            },
        ),
        // Bob's key named, the proof signed by mallory's.
        (
            "a_sniffed_token_with_its_key_and_a_proof_by_another",
            |f, op| {
                Proof {
                    signer: &f.mallory,
                    ..genuine(f, op)
                }
                .headers(f)
            },
        ),
        // Bob's genuine proofs, each for something other than the call it is sent with.
        ("a_captured_proof_for_another_path", |f, op| {
            let other = if op.path == "/v1/audit" {
                "/v1/requests"
            } else {
                "/v1/audit"
            };
            Proof {
                path: other,
                ..genuine(f, op)
            }
            .headers(f)
        }),
        ("a_captured_proof_for_another_method", |f, op| {
            let other = if op.method == Method::GET {
                Method::POST
            } else {
                Method::GET
            };
            Proof {
                method: &other,
                ..genuine(f, op)
            }
            .headers(f)
        }),
        ("a_captured_proof_for_another_body", |f, op| {
            let body = br#"{"digest":"other"}"#;
            Proof {
                body,
                ..genuine(f, op)
            }
            .headers(f)
        }),
        // The same path with another query string.
        ("a_captured_proof_for_another_query_string", |f, op| {
            let path = format!("{}?mine=true", op.path);
            Proof {
                path: &path,
                ..genuine(f, op)
            }
            .headers(f)
        }),
        // A proof made for another token (alice's) of the same key holder's call.
        ("a_captured_proof_for_another_token", |f, op| {
            let token = &f.fx.alice.token;
            Proof {
                token,
                ..genuine(f, op)
            }
            .headers(f)
        }),
        ("a_proof_just_older_than_the_allowed_skew", |f, op| {
            shifted(f, op, -(proof::PROOF_MAX_SKEW_SECS + 5))
        }),
        ("a_proof_an_hour_old", |f, op| shifted(f, op, -3600)),
        ("a_proof_from_beyond_the_allowed_skew_ahead", |f, op| {
            shifted(f, op, proof::PROOF_MAX_SKEW_SECS + 5)
        }),
    ]
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::new(4, start);
    let mut trials = Vec::new();
    for (forgery, forge) in forgeries() {
        for what in OPS {
            trials.push(suite.trial(
                format!("{forgery}::{what}"),
                move |f: Arc<Forged>| async move {
                    op_refused(&f.fx, what, |op| forge(&f, op)).await;
                },
            ));
        }
    }
    suite.run(&args, trials).exit();
}
