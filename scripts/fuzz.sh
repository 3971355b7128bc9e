#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input (tests/fuzz: policy_set, event, state_record) for a given
# time each, one after another. With a nightly toolchain: coverage-guided, with cargo fuzz and
# libFuzzer (cargo-fuzz is installed, pinned, when missing), seeded from policies/,
# tests/fixtures/events/ and tests/fuzz/seeds/, keeping what it finds in target/fuzz/corpus/.
# Without nightly it says so and runs the same targets under proptest instead (tests/fuzz/tests/
# fallback.rs), which is not coverage-guided. A crash fails the script; its input is kept in
# target/fuzz/artifacts/<target>/ and printed.
#
#   scripts/fuzz.sh [--seconds N] [--dev] [TARGET...]
#
# --seconds: per target (default 60). --dev: an unoptimised build, quicker to build and slower to
# run (what CI uses for its brief run). TARGETs: by default all three.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_FUZZ_VERSION=0.13.2

seconds=60
optimised=yes
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --dev) optimised=no; shift ;;
    -*) echo "usage: scripts/fuzz.sh [--seconds N] [--dev] [TARGET...]" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(policy_set event state_record)

work=target/fuzz

# The seed directories of a target.
seeds() {
  case "$1" in
    policy_set)
      # The shipped set whole, as one input: the target splits its input into files at NUL bytes.
      mkdir -p "$work/seeds/policy_set"
      local first=1
      for file in policies/*.yaml; do
        [[ $first == 1 ]] || printf '\0'
        cat "$file"
        first=0
      done > "$work/seeds/policy_set/whole-set"
      echo policies "$work/seeds/policy_set" ;;
    event) echo tests/fixtures/events ;;
    state_record) echo tests/fuzz/seeds/state_record ;;
    *) echo "fuzz: unknown target $1" >&2; exit 2 ;;
  esac
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain, which cargo fuzz (libFuzzer) needs: falling back to the property-based"
  echo "fuzz: run of the same targets (proptest, seeded and mutated, not coverage-guided), ${seconds}s each;"
  echo "fuzz: 'rustup toolchain install nightly' for the coverage-guided run"
  release=()
  [[ $optimised == no ]] || release=(--release)
  CAPSTAN_FUZZ_SECONDS="$seconds" cargo test "${release[@]}" --locked --manifest-path tests/fuzz/Cargo.toml \
    --target-dir "$work" --test fallback -- --nocapture --test-threads 1 "${targets[@]}"
  exit
fi

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

# No sanitizer: the code under test is safe Rust (unsafe_code is forbidden); debug assertions and
# overflow checks are on, so an overflow is a crash.
fuzz=(cargo +nightly fuzz)
profile=(--release)
[[ $optimised == yes ]] || profile=(--dev)
options=(--fuzz-dir tests/fuzz --features libfuzzer --sanitizer none --debug-assertions
  --target-dir "$work" "${profile[@]}")
"${fuzz[@]}" build "${options[@]}"

for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  artifacts="$work/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  log="$work/$target.log"
  read -r -a seed_dirs <<< "$(seeds "$target")"
  echo "fuzz: $target for ${seconds}s (corpus $corpus, seeds ${seed_dirs[*]})"
  status=0
  "${fuzz[@]}" run "${options[@]}" "$target" "$corpus" "${seed_dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -artifact_prefix="$artifacts" -print_final_stats=1 \
    > "$log" 2>&1 || status=$?
  # The last status line (executions, coverage as edges `cov` and features `ft`, corpus size),
  # and the final statistics.
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  if [[ $status != 0 ]]; then
    echo "fuzz: $target FAILED (status $status); the end of its log ($log):"
    tail -n 40 "$log"
    exit 1
  fi
done
