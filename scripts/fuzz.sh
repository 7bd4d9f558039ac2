#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 10) seeded with the project's SQL cases.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-10}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/extract corpus/extract_deep corpus/plan
awk '/^-- (ok|refuse):/{n++; next} {print > ("corpus/extract/case" n ".sql")}' ../p0-core/tests/cases/pg.sql
awk '/^-- (ok|refuse):/{n++; next} {print > ("corpus/extract/mysql" n ".sql")}' ../p0-core/tests/cases/mysql.sql
echo '{"request_id":"abcdefgh1234","requester":"a@b","resource":"pg/app","access":{"permissions":[{"privilege":"SELECT","object":{"type":"table","schema":"public","name":"t"}}]},"expires_at":"2030-01-01T00:00:00Z"}' > corpus/plan/seed.json
# extract_deep reads a recipe (head, piece, close, tail, 16-bit count): seeds for the chains
# that overflowed the agent (issue 13), e.g. `SELECT ` + 40,000 x `1+` + `1`.
seed() { printf "$1" > "corpus/extract_deep/$2"; }
seed '\x00\x01\x00\x00\x40\x9c' plus-40000
seed '\x01\x02\x00\x01\x30\x75' and-30000
seed '\x00\x04\x00\x03\x30\x75' concat-30000
seed '\x00\x09\x01\x00\x30\x75' parens-30000
seed '\x02\x11\x00\x05\xe8\x03' joins-1000
seed '\x08\x10\x00\x04\x30\x75' union-30000
for t in extract extract_deep plan; do
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 -timeout=10
done
