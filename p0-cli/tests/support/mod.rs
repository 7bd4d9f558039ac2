//! What the CLI's test binaries share. Each binary uses a part of it.
#![allow(dead_code)]

pub mod agent;
pub mod api;
pub mod cli;
pub mod flow;
pub mod mitm;
pub mod oidc;
pub mod platform;
pub mod proxy;
/// The libtest-mimic harness: one file for the core's suites and the CLI's.
#[path = "../../../p0-core/tests/support/trials.rs"]
pub mod trials;
