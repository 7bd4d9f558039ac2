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
# Output is captured first: `grep -q` stops reading at the first match, and under pipefail the
# example's write to a closed pipe would fail the run.
expect_output() {
  local pattern="$1"; shift
  local out
  out="$("$@")"
  if ! grep -qF -- "$pattern" <<<"$out"; then
    printf 'example %s: expected a line containing %q, got:\n%s\n' "$*" "$pattern" "$out" >&2
    exit 1
  fi
}
expect_output "GRANT DELETE ON TABLE sales.tmp_import TO migrator;" \
  cargo run -q --locked -p p0-examples --example migration_grants -- examples/migration.sql
expect_output "pii.people (900s) -> needs approval" \
  cargo run -q --locked -p p0-examples --example custom_router
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
