#!/usr/bin/env bash
# Installs the project's tools: the Python tools pinned in scripts/requirements.txt into <repo>/.venv,
# checkov (scripts/requirements-checkov.txt) into <repo>/.tools/checkov, the IAM policy lint
# (scripts/requirements-iam-lint.txt) into <repo>/.tools/iam-lint, the CDK app's npm packages
# (infra/package-lock.json) into infra/node_modules, and cargo-nextest and cargo-machete. Idempotent:
# each is reinstalled only when its pin changes.
#
# Usage: scripts/bootstrap.sh [--demo]
#   --demo   only what the demo needs: <repo>/.venv
set -euo pipefail

demo_only=false
case "${1:-}" in
  "") ;;
  --demo) demo_only=true ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

NEXTEST_VERSION=0.9.143
MACHETE_VERSION=0.9.2

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
requirements="$repo/scripts/requirements.txt"

# Makes the venv $1 from the pinned requirements file $2, unless it already matches that file.
python_tools() {
  local venv="$1" requirements="$2"
  local stamp="$venv/.requirements.sha256" wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
    echo "bootstrap: ${venv#"$repo"/} matches ${requirements#"$repo"/}"
  else
    echo "bootstrap: creating ${venv#"$repo"/} and installing ${requirements#"$repo"/}"
    python3 -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$requirements"
    echo "$wanted" > "$stamp"
  fi
}

python_tools "$venv" "$requirements"
if [[ "$demo_only" == true ]]; then
  exit 0
fi
# checkov pins boto3/botocore versions that do not resolve together with aws-sam-cli and moto.
python_tools "$repo/.tools/checkov" "$repo/scripts/requirements-checkov.txt"
# The IAM policy lint, likewise on its own: its boto3 and botocore pins are independent of the two above.
python_tools "$repo/.tools/iam-lint" "$repo/scripts/requirements-iam-lint.txt"

# The CDK app's packages, exactly as infra/package-lock.json pins them.
lockfile="$repo/infra/package-lock.json"
npm_stamp="$repo/infra/node_modules/.package-lock.sha256"
wanted="$(sha256sum "$lockfile" | cut -d' ' -f1)"
if [[ -f "$npm_stamp" && "$(cat "$npm_stamp")" == "$wanted" ]]; then
  echo "bootstrap: infra/node_modules matches infra/package-lock.json"
else
  echo "bootstrap: npm ci in infra/"
  (cd "$repo/infra" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$wanted" > "$npm_stamp"
fi

# Installs the cargo subcommand $1 at version $2 (crate $3, by default cargo-$1) unless it is there.
cargo_tool() {
  local command="$1" version="$2" crate="${3:-cargo-$1}"
  if cargo "$command" --version >/dev/null 2>&1; then
    echo "bootstrap: $(cargo "$command" --version | head -n 1) present"
  else
    echo "bootstrap: installing $crate $version"
    cargo install --locked "$crate@$version"
  fi
}

cargo_tool nextest "$NEXTEST_VERSION"
# Finds dependencies a manifest declares and its crate never uses.
cargo_tool machete "$MACHETE_VERSION"
