#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 10) seeded with the project's SQL cases.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-10}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/extract corpus/plan
awk '/^-- (ok|refuse):/{n++; next} {print > ("corpus/extract/case" n ".sql")}' ../p0-core/tests/cases/pg.sql
awk '/^-- (ok|refuse):/{n++; next} {print > ("corpus/extract/mysql" n ".sql")}' ../p0-core/tests/cases/mysql.sql
echo '{"request_id":"abcdefgh1234","requester":"a@b","resource":"pg/app","access":{"permissions":[{"privilege":"SELECT","object":{"type":"table","schema":"public","name":"t"}}]},"expires_at":"2030-01-01T00:00:00Z"}' > corpus/plan/seed.json
for t in extract plan; do
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 -timeout=10
done
