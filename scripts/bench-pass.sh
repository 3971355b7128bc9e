#!/usr/bin/env bash
# The pass benchmark (tests/bench_pass.rs): the real evaluator, run as Lambda runs it, ticking
# over resources in the emulator through the fault-injecting proxy (tests/emulator/proxy.py).
# Builds what the run needs, then runs it under scripts/with-emulator.sh with the arguments given.
#
#   scripts/bench-pass.sh --resources 1000 --latency-ms 20 --changing 50
#   scripts/bench-pass.sh --resources 200 --fail-before 0.2 --fail-after 0.1 --ticks 3
#   scripts/bench-pass.sh --cold-start --policies 1000
#
# Figures are printed, not asserted; docs/testing.md says what each one means.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

release=false
cold_start=false
policies=1000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --release) release=true ;;
    --cold-start) cold_start=true ;;
    --policies) policies="${args[i + 1]:-}" ;;
  esac
done
# The benchmark and the debug evaluator come from the workspace's one build, as scripts/test.sh
# builds it.
bench="${CARGO_TARGET_DIR:-target}/debug/capstan-bench-pass"
cargo build --quiet --locked --workspace --all-targets

if [[ "$cold_start" == true ]]; then
  # The cold start's set is packaged into the release evaluator, as a deployment packages its
  # own; the repository's set is packaged again afterwards.
  set_dir="$(mktemp -d)"
  trap 'rm -rf "$set_dir"; cargo build --quiet --locked --release --package capstan-evaluator' EXIT
  "$bench" --write-policies "$set_dir" --policies "$policies"
  CAPSTAN_POLICIES="$set_dir" cargo build --quiet --locked --release --package capstan-evaluator
  cargo build --quiet --locked --release --package capstan-tests --bin capstan-hello-lambda
  "$bench" "$@" --policy-dir "$set_dir"
  exit
fi

if [[ "$release" == true ]]; then
  cargo build --quiet --locked --release --package capstan-evaluator
fi
exec scripts/with-emulator.sh "$bench" "$@"
