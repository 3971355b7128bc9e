#!/usr/bin/env bash
# Installs the project's tools: the Python tools pinned in scripts/requirements.txt into <repo>/.venv,
# and cargo-nextest. Idempotent: the venv is rebuilt only when the requirements file changes.
set -euo pipefail

NEXTEST_VERSION=0.9.143

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
requirements="$repo/scripts/requirements.txt"
stamp="$venv/.requirements.sha256"

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
  echo "bootstrap: .venv matches scripts/requirements.txt"
else
  echo "bootstrap: creating .venv and installing scripts/requirements.txt"
  python3 -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$requirements"
  echo "$wanted" > "$stamp"
fi

if cargo nextest --version >/dev/null 2>&1; then
  echo "bootstrap: $(cargo nextest --version | head -n 1) present"
else
  echo "bootstrap: installing cargo-nextest $NEXTEST_VERSION"
  cargo install --locked "cargo-nextest@$NEXTEST_VERSION"
fi
