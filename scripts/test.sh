#!/usr/bin/env bash
# Runs every test of p0 on a fresh Debian machine with Rust: installs the database servers,
# checks formatting and lints, runs the unit and integration tests (against real PostgreSQL 15
# and MariaDB servers that the tests start on loopback), the shared extraction corpus, and a
# short fuzz run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
# No incremental caches: a one-shot run gains nothing from them, and they cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk() { printf 'disk (%s): %s\n' "$1" "$(df -h . | awk 'NR==2 {print $4 " free of " $2}')"; }

scripts/setup.sh
# Python tools, in a venv: a real OIDC provider for the login tests, cargo-lambda (the Lambda
# runtime and Invoke APIs on loopback) and moto (Secrets Manager on loopback).
[ -x .venv/bin/pip ] || python3 -m venv .venv
for tool in oidc-provider-mock cargo-lambda moto_server; do
  if [ ! -x ".venv/bin/$tool" ]; then
    .venv/bin/pip install -q oidc-provider-mock cargo-lambda 'moto[server]'
    break
  fi
done
export P0_OIDC_MOCK="$PWD/.venv/bin/oidc-provider-mock"
export P0_CARGO_LAMBDA="$PWD/.venv/bin/cargo-lambda"
export P0_MOTO_SERVER="$PWD/.venv/bin/moto_server"
# A real OpenID provider that offers the device grant (node oidc-provider, OpenID Certified).
if [ ! -f .node/node_modules/oidc-provider/lib/index.js ]; then
  npm install --silent --no-audit --no-fund --prefix .node oidc-provider@8.8.1
fi
export P0_OIDC_PROVIDER_MODULE="$PWD/.node/node_modules/oidc-provider/lib/index.js"
disk "before building"
cargo fmt --all --check
# Layout: no source file over 500 lines, no two modules importing each other.
python3 scripts/layout_check.py
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p p0-cli -p p0-agent -p p0-server --all-targets --locked \
  --features p0-cli/lambda,p0-cli/gcp,p0-cli/azure,p0-agent/lambda -- -D warnings
cargo build --workspace --all-targets --locked
# The SDK without its engines and HTTP client (an embedder that only extracts), and the everyday
# CLI without the server, the agent or the test kit (they come only with its `demo` feature).
cargo build --locked -p p0-core --no-default-features
if cargo tree --locked -p p0-cli -e normal --prefix none | grep -E '^p0-(server|agent|testkit|stack) '; then
  echo "p0-cli's default build pulls in the crates above" >&2
  exit 1
fi
cargo test --workspace --locked -- --test-threads "${P0_TEST_THREADS:-2}"
disk "after the workspace's tests"
# Chaos, quick mode: 100 lifecycles against two server replicas on one PostgreSQL store and an
# agent, one of them killed with SIGKILL and restarted every 0.3-1.5 s; every count must be 0
# (the full run, P0_CHAOS_LIFECYCLES=1000 P0_CHAOS_CONCURRENCY=16, is run by hand).
cargo test --locked -p p0-benches --bench chaos

# The Lambda agent end to end: built first, so `cargo lambda watch` only starts it. The Cloud
# Run agent (the server's Google ID tokens: `gcp`) and the Azure agent behind App Service
# authentication (the server's Entra ID tokens: `azure`) end to end in the same build; the
# Azure agent with function keys needs no feature and ran with the workspace's tests.
cargo build --locked -p p0-agent --features lambda --bin p0-agent-lambda
cargo test --locked -p p0-agent -p p0-server \
  --features p0-agent/lambda,p0-server/lambda,p0-server/gcp,p0-server/azure --lib
cargo test --locked -p p0-cli --features lambda,gcp,azure --test lambda --test cloud_run --test azure_entra

# The examples run against real servers (PostgreSQL, p0-server and agent, Redis) and say what
# they should; the migration example is also checked against PostgreSQL by
# examples/tests/migration_against_postgres.rs.
# Output is captured first: `grep -q` stops reading at the first match, and under pipefail the
# example's write to a closed pipe would fail the run.
# expect_output PATTERN... -- COMMAND...: every PATTERN must be in one of COMMAND's lines.
expect_output() {
  local patterns=()
  while [ "$1" != -- ]; do patterns+=("$1"); shift; done
  shift
  local out pattern
  out="$("$@")"
  for pattern in "${patterns[@]}"; do
    if ! grep -qF -- "$pattern" <<<"$out"; then
      printf '%s: expected a line containing %q, got:\n%s\n' "$*" "$pattern" "$out" >&2
      exit 1
    fi
  done
}
expect_output 'GRANT DELETE ON TABLE "sales"."tmp_import" TO "migrator";' -- \
  cargo run -q --locked -p p0-examples --example migration_grants -- examples/migration.sql
expect_output "server: UPDATE sales.orders SET total = 0 (900s) -> pending_approval" -- \
  cargo run -q --locked -p p0-examples --example custom_router
expect_output "redis: nothing left" -- \
  cargo run -q --locked -p p0-examples --example redis_agent
echo "examples: ok"

# `p0 demo` is behind the CLI's `demo` feature (the everyday CLI compiles no server or agent).
cargo build --locked -p p0-cli --features demo --bin p0
# The README's demo, on both engines: the query's rows, the ephemeral user while the lease lives,
# and nothing left after expiry (the debug build; scripts/demo.sh builds the release binary).
expect_output "(4 rows)" "permission denied for table payroll" "p0r_" "user and role are gone" \
  "password authentication failed" "chain verified (3 entries)" -- target/debug/p0 demo
expect_output "| Linus | 310.25 |" "SELECT command denied" "p0r_" \
  "user and role are gone (0 p0 accounts left)" "Access denied" "chain verified (3 entries)" -- \
  target/debug/p0 demo --engine mysql
echo "demo: ok"
disk "after the demo"

# The shared corpus, measured by the shared tool against a hardened PostgreSQL.
shared="${P0_SHARED:-../shared}"
if [ -f "$shared/tools/pgcheck.py" ]; then
  python3 "$shared/tools/pgcheck.py" --p0 target/debug/p0 --corpus "$shared/corpus/pg-cases" --shared "$shared"
  python3 "$shared/tools/pgcheck.py" --p0 target/debug/p0 --corpus p0-core/tests/corpus/pg-statements --shared "$shared"
  python3 "$shared/tools/pgcheck.py" --p0 target/debug/p0 --corpus p0-core/tests/corpus/pg-implicit --shared "$shared"
else
  echo "pgcheck: $shared/tools/pgcheck.py not found; skipped"
fi
# The MariaDB corpus (routines, views, sequences, triggers, executable comments), measured by
# the shared tool against a throwaway MariaDB.
if [ -f "$shared/tools/mycheck.py" ]; then
  python3 "$shared/tools/mycheck.py" --p0 target/debug/p0 --corpus p0-core/tests/corpus/my-implicit
else
  echo "mycheck: $shared/tools/mycheck.py not found; skipped"
fi

if [ "${P0_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh "${P0_FUZZ_SECONDS:-10}"
fi
disk "at the end"
