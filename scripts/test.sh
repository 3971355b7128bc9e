#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit and property tests, the emulator
# bridge's own test, integration and end-to-end tests against moto, and the SAM template checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each step is announced, and timed: the times are printed together at the end.
times=()
step_name=""
step_started=$SECONDS
step() {
  end_step
  step_name="$*"
  step_started=$SECONDS
  printf '\n== %s\n' "$step_name"
}
end_step() {
  if [[ -n "$step_name" ]]; then
    times+=("$(printf '%5d s  %s' $((SECONDS - step_started)) "$step_name")")
  fi
}
print_times() {
  end_step
  printf '\n== step times\n'
  printf '%s\n' "${times[@]}"
  printf '%5d s  in all\n' "$SECONDS"
}
trap print_times EXIT

step "tools"
bash scripts/bootstrap.sh
. scripts/env.sh

step "format and lints"
cargo fmt --all --check
cargo fmt --manifest-path tests/fuzz/Cargo.toml --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo machete

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

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

step "fuzz (brief: 15 s a target, unoptimised build; the fallback without nightly)"
bash scripts/fuzz.sh --seconds 15 --dev

step "SAM template"
bash scripts/check-template.sh
