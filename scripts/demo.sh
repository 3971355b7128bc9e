#!/usr/bin/env bash
# The demo: installs the tools, starts the AWS emulator, and runs the real evaluator Lambda
# (under `cargo lambda watch`) against it, one simulated minute per tick: a CPU spike, a flash sale,
# and a read replica created ahead of the sale and retired after it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
. scripts/env.sh
cargo build --quiet --locked --package capstan-evaluator --package capstan-tests --bin capstan-demo
scripts/with-emulator.sh cargo run --quiet --locked --package capstan-tests --bin capstan-demo
