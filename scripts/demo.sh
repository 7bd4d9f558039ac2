#!/usr/bin/env bash
# Runs `p0 demo` on a fresh Debian machine with Rust: installs PostgreSQL if missing, builds
# the CLI, and runs a full request against a throwaway database. Extra arguments go to
# `p0 demo` (e.g. --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --release -p p0-cli --features demo
exec target/release/p0 demo "$@"
