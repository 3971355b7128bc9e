#!/usr/bin/env bash
# Runs a command against the AWS emulator: moto with the CloudWatch CBOR bridge (tests/emulator/server.py)
# on a free 127.0.0.1 port. Exports CAPSTAN_AWS_ENDPOINT, AWS_REGION and test credentials for the command,
# stops the server afterwards and exits with the command's status. Run scripts/bootstrap.sh once first.
#
#   scripts/with-emulator.sh cargo test -p capstan-tests --test suite cloudwatch_bridge::
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARG...]" >&2
  exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
if [[ ! -x "$python" ]]; then
  echo "with-emulator: $python not found: run scripts/bootstrap.sh first" >&2
  exit 1
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/capstan-emulator.XXXXXX")"
log="$workdir/server.log"
port_file="$workdir/port"
server_pid=""

# shellcheck disable=SC2317 # run by the EXIT trap
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail_with_log() {
  echo "with-emulator: $1; emulator log:" >&2
  cat "$log" >&2
  exit 1
}

# True when an HTTP server answers on 127.0.0.1:$1.
answers() {
  local status_line=""
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /moto-api/config HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  read -r -t 5 status_line <&3 || true
  exec 3<&-
  [[ "$status_line" == HTTP/* ]]
}

"$python" "$repo/tests/emulator/server.py" --port 0 --port-file "$port_file" >"$log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 30))
until [[ -s "$port_file" ]] && answers "$(cat "$port_file")"; do
  kill -0 "$server_pid" 2>/dev/null || fail_with_log "the emulator exited before answering"
  ((SECONDS < deadline)) || fail_with_log "the emulator did not answer within 30 s"
  sleep 0.2
done

port="$(cat "$port_file")"
export CAPSTAN_AWS_ENDPOINT="http://127.0.0.1:$port"
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
unset AWS_SESSION_TOKEN AWS_PROFILE

status=0
"$@" || status=$?
if ((status != 0)); then
  echo "with-emulator: '$*' exited with status $status; emulator log:" >&2
  cat "$log" >&2
fi
exit "$status"
