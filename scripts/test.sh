#!/usr/bin/env bash
# Runs every test of p0 on a fresh Debian machine with Rust: installs the database servers,
# builds the workspace, runs the unit and integration tests (against real PostgreSQL 15 and
# MariaDB servers that the tests start on loopback), then the extraction corpus check.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads "${P0_TEST_THREADS:-2}"
