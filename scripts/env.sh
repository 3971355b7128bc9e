# shellcheck shell=bash
# Source this file (". scripts/env.sh") to use the tools that scripts/bootstrap.sh installed.
_capstan_venv_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin"
case ":$PATH:" in
  *":$_capstan_venv_bin:"*) ;;
  *) export PATH="$_capstan_venv_bin:$PATH" ;;
esac
unset _capstan_venv_bin
export SAM_CLI_TELEMETRY=0
