#!/usr/bin/env bash
# The demo: installs the tools, starts the AWS emulator, and runs capstan against it, one
# simulated minute at a time, in two sections. First the real evaluator Lambda (its binary run as
# Lambda runs it, against a Runtime API of the demo's own): a CPU spike, a flash sale, and a read
# replica created ahead of the sale and retired after it. Then Kafka: consumers held at their topic's partitions while their lag
# grows, the topic's partitions grown for them, and the cluster's brokers grown as they run hot,
# by the runner in process. No emulator implements MSK's topic and broker-count operations, so
# that section's Kafka client is mocked in process (aws-smithy-mocks); everything else is moto.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh --demo
. scripts/env.sh
# One build of the evaluator and the demo, sharing their dependencies; the demo runs the
# evaluator binary it built.
cargo build --quiet --locked --package capstan-tests --package capstan-evaluator \
  --bin capstan-demo --bin evaluator
scripts/with-emulator.sh "${CARGO_TARGET_DIR:-target}/debug/capstan-demo"
