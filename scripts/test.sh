#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit and property tests, the emulator
# bridge's own test, integration and end-to-end tests against moto, and the SAM template checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "tools"
bash scripts/bootstrap.sh
. scripts/env.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked
# The end-to-end tests run the evaluator under `cargo lambda watch`, which builds it alone.
cargo build --package capstan-evaluator --locked

step "emulator (the CBOR bridge, DynamoDB one request at a time, the fault-injecting proxy)"
.venv/bin/python -m unittest discover --start-directory tests/emulator --pattern 'test_*.py'

step "tests (unit, property, integration and end-to-end, against moto)"
scripts/with-emulator.sh cargo nextest run --workspace --lib --bins --tests --locked --no-fail-fast
cargo test --workspace --doc --locked

step "benchmark (brief run; figures are reported, not asserted)"
cargo bench --package capstan-sim --bench decide --locked -- --warm-up-time 1 --measurement-time 2

step "pass benchmark (brief run; figures are reported, not asserted)"
scripts/with-emulator.sh cargo run --quiet --locked --package capstan-tests --bin capstan-bench-pass -- \
  --resources 100 --latency-ms 10 --ticks 1
scripts/with-emulator.sh cargo run --quiet --locked --package capstan-tests --bin capstan-bench-pass -- \
  --resources 100 --latency-ms 10 --ticks 1 --shard-size 40

step "demo (its own checks: the replica created and retired, the partitions grown)"
scripts/with-emulator.sh cargo run --quiet --locked --package capstan-tests --bin capstan-demo

step "policies"
cargo run --quiet --package capstan --locked -- validate policies/

step "SAM template"
bash scripts/check-template.sh
