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
# One build of everything, the dependencies compiled once with the features the tests need: the
# tests run the evaluator binary it builds, and the steps below run its binaries directly, since
# `cargo run --package` would build them again with another feature set.
cargo build --workspace --all-targets --locked
bin="${CARGO_TARGET_DIR:-target}/debug"

step "emulator (the CBOR bridge, DynamoDB one request at a time, the fault-injecting proxy)"
.venv/bin/python -m unittest discover --start-directory tests/emulator --pattern 'test_*.py'

step "tests (unit, property, integration and end-to-end, against moto)"
scripts/with-emulator.sh cargo nextest run --workspace --lib --bins --tests --locked --no-fail-fast
cargo test --workspace --doc --locked

step "benchmark (brief run; figures are reported, not asserted)"
cargo bench --package capstan-sim --bench decide --locked -- --warm-up-time 1 --measurement-time 2

step "pass benchmark (brief run; figures are reported, not asserted)"
scripts/with-emulator.sh "$bin/capstan-bench-pass" --resources 100 --latency-ms 10 --ticks 1
scripts/with-emulator.sh "$bin/capstan-bench-pass" --resources 100 --latency-ms 10 --ticks 1 \
  --shard-size 40

step "demo (its own checks: the replica created and retired, the partitions grown)"
scripts/with-emulator.sh "$bin/capstan-demo"

step "policies"
"$bin/capstan" validate policies/

step "SAM template"
bash scripts/check-template.sh
