#!/usr/bin/env bash
# Runs every test of p0 on a fresh Debian machine with Rust: installs the database servers,
# checks formatting and lints, runs the unit and integration tests (against real PostgreSQL 15
# and MariaDB servers that the tests start on loopback), the shared extraction corpus, and a
# short fuzz run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# A real OIDC provider for the login tests.
if [ ! -x .venv/bin/oidc-provider-mock ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q oidc-provider-mock
fi
export P0_OIDC_MOCK="$PWD/.venv/bin/oidc-provider-mock"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads "${P0_TEST_THREADS:-2}"

# The examples run and say what they should.
cargo run -q --locked -p p0-examples --example migration_grants -- examples/migration.sql | grep -q "GRANT DELETE ON TABLE sales.tmp_import TO migrator;"
cargo run -q --locked -p p0-examples --example custom_router | grep -q "pii.people (900s) -> needs approval"
echo "examples: ok"

# The shared corpus, measured by the shared tool against a hardened PostgreSQL.
shared="${P0_SHARED:-../shared}"
if [ -f "$shared/tools/pgcheck.py" ]; then
  python3 "$shared/tools/pgcheck.py" --p0 target/debug/p0 --corpus "$shared/corpus/pg-cases" --shared "$shared"
else
  echo "pgcheck: $shared/tools/pgcheck.py not found; skipped"
fi

if [ "${P0_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh "${P0_FUZZ_SECONDS:-10}"
fi
