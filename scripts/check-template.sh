#!/usr/bin/env bash
# Checks the infrastructure code offline, printing each step; exits non-zero on the first failure:
#   1. template.yaml: `sam validate --lint`, `cfn-lint`, and `checkov` on the template and on its SAM
#      transform (tests/infra/sam_template.py); every skipped checkov check has its reason beside it;
#   2. tests/infra/test_template.py: what the schedules and the alarm-sync custom resource send;
#   3. tests/infra/test_stack_in_moto.py: the transformed template as a stack in moto, and
#      tests/infra/test_stack_set_in_moto.py: the stack set template (docs/deploy.md, many accounts and
#      regions) linted and as a stack set in two accounts and two regions of moto (both under
#      scripts/with-emulator.sh);
#   4. infra/ (CDK): `cdk synth` with cdk-nag's AwsSolutions checks, without bundling (the functions
#      are built by step 6), then tests/infra/test_drift.py: the CDK and SAM templates agree, and
#      tests/infra/test_cdk_stages.py: a stage per account and Region gets its own policies and settings;
#   5. IAM, in both templates: tests/infra/test_iam.py (every AWS operation the functions' code calls is
#      allowed to its role, and nothing else is), and tests/infra/lint_iam.py (parliament and the tag
#      conditions, against the Service Authorization Reference; every suppression has its reason);
#   6. `sam build --parallel` of both functions, and a check that each bootstrap is an aarch64 ELF.
#
# Usage: scripts/check-template.sh [--lint-only]
#   --lint-only   skip `sam build` (the rest took 2 minutes on a loaded 2-core machine)
#
# The build runs `cargo lambda build --release --arm64 --bin <function>` for both functions, in
# parallel, into the workspace's target/ (here aws-lambda-builders' cargo-lambda workflow compiled into
# <repo>/target even with CARGO_TARGET_DIR set elsewhere). cargo-lambda adds panic=abort and
# target-cpu=neoverse-n1, so only earlier `cargo lambda build --release --arm64` runs are reused, not host
# or debug builds; the two functions share their dependencies' build. Cache target/ in CI: then only
# changed crates are rebuilt. From a cold target dir it took about 17 minutes for the evaluator alone on
# a loaded 2-core machine. The SAM artifacts go to .aws-sam/build (gitignored).
# Tools come from scripts/bootstrap.sh: <repo>/.venv (scripts/env.sh puts it on PATH), <repo>/.tools/checkov,
# <repo>/.tools/iam-lint and infra/node_modules.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/env.sh
. "$repo/scripts/env.sh"
export SAM_CLI_TELEMETRY=0

lint_only=false
case "${1:-}" in
  "") ;;
  --lint-only) lint_only=true ;;
  *) echo "usage: $0 [--lint-only]" >&2; exit 2 ;;
esac

template="$repo/template.yaml"
build_dir="$repo/.aws-sam/build"
function_ids=(EvaluatorFunction AlarmSyncFunction)
checkov="$repo/.tools/checkov/bin/checkov"
python="$repo/.venv/bin/python"
iam_lint_python="$repo/.tools/iam-lint/bin/python"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\ncheck-template: FAILED: %s\n' "$*" >&2; exit 1; }

tools=(sam cfn-lint node "$checkov" "$iam_lint_python")
$lint_only || tools+=(cargo cargo-lambda)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || fail "$tool not found (run scripts/bootstrap.sh)"
done
[[ -x "$repo/infra/node_modules/.bin/cdk" ]] || fail "infra/node_modules is missing (run scripts/bootstrap.sh)"

step "sam validate --lint ($(sam --version))"
sam validate --lint --template-file "$template" || fail "sam validate --lint"

step "cfn-lint template.yaml ($(cfn-lint --version))"
cfn-lint -- "$template" || fail "cfn-lint"

transformed="$(mktemp "${TMPDIR:-/tmp}/capstan-template.XXXXXX.json")"
trap 'rm -f "$transformed"' EXIT
"$python" tests/infra/sam_template.py > "$transformed" || fail "SAM transform of template.yaml"

# --skip-download: no calls to the checkov platform (offline); --compact: failures without code.
step "checkov template.yaml and its SAM transform ($("$checkov" --version))"
for file in "$template" "$transformed"; do
  "$checkov" --quiet --compact --skip-download --framework cloudformation --file "$file" \
    || fail "checkov ${file#"$repo"/}"
done

step "template tests (schedules, custom resource)"
(cd tests/infra && "$python" -m unittest --verbose test_template) || fail "tests/infra/test_template.py"

step "template.yaml as a stack in moto"
(cd tests/infra && "$repo/scripts/with-emulator.sh" "$python" -m unittest --verbose test_stack_in_moto) \
  || fail "tests/infra/test_stack_in_moto.py"

step "the stack set template: cfn-lint, no transform, and as a stack set in two accounts and two regions of moto"
(cd tests/infra && "$repo/scripts/with-emulator.sh" "$python" -m unittest --verbose test_stack_set_in_moto) \
  || fail "tests/infra/test_stack_set_in_moto.py"

step "cdk synth with cdk-nag AwsSolutions checks (infra/, bundling skipped)"
start=$SECONDS
(cd infra && CAPSTAN_CDK_SKIP_BUNDLING=1 node_modules/.bin/cdk synth --quiet) || fail "cdk synth"
printf 'cdk synth took %ds\n' $((SECONDS - start))

step "CDK and SAM templates agree (resource types, parameters, IAM)"
(cd tests/infra && "$python" -m unittest --verbose test_drift) || fail "tests/infra/test_drift.py"

step "CDK stages per account and Region: their own policies, settings and asset buckets (cargo-lambda stood in for)"
(cd tests/infra && "$python" -m unittest --verbose test_cdk_stages) || fail "tests/infra/test_cdk_stages.py"

step "IAM: each role allows exactly what its function's code calls (template.yaml and infra/)"
(cd tests/infra && "$python" -m unittest --verbose test_iam) || fail "tests/infra/test_iam.py"

step "IAM policy lint of both templates (parliament $("$iam_lint_python" -c 'import parliament; print(parliament.__version__)'))"
"$iam_lint_python" tests/infra/lint_iam.py "$transformed" infra/cdk.out/Capstan.template.json \
  || fail "tests/infra/lint_iam.py"

if $lint_only; then
  printf '\ncheck-template: checks passed (build skipped)\n'
  exit 0
fi

step "sam build --parallel --build-dir ${build_dir#"$repo"/} (from a cold target dir this takes many minutes)"
start=$SECONDS
sam build --parallel --template-file "$template" --build-dir "$build_dir" || fail "sam build"
elapsed=$((SECONDS - start))
printf 'sam build took %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))

for function_id in "${function_ids[@]}"; do
  bootstrap="$build_dir/$function_id/bootstrap"
  step "check ${bootstrap#"$repo"/} is an aarch64 ELF executable"
  [[ -f "$bootstrap" ]] || fail "$bootstrap was not produced"
  if command -v file >/dev/null; then file -b "$bootstrap"; fi
  "$python" - "$bootstrap" <<'PY' || fail "$bootstrap is not an aarch64 ELF executable"
import struct
import sys

path = sys.argv[1]
with open(path, "rb") as f:
    header = f.read(20)
if len(header) < 20 or header[:4] != b"\x7fELF":
    sys.exit(f"{path}: not an ELF file")
elf_class, elf_data = header[4], header[5]
if (elf_class, elf_data) != (2, 1):
    sys.exit(f"{path}: not a 64-bit little-endian ELF (EI_CLASS={elf_class}, EI_DATA={elf_data})")
e_type, e_machine = struct.unpack_from("<HH", header, 16)
EM_AARCH64, ET_EXEC, ET_DYN = 183, 2, 3
if e_machine != EM_AARCH64:
    sys.exit(f"{path}: e_machine is {e_machine}, expected {EM_AARCH64} (EM_AARCH64)")
if e_type not in (ET_EXEC, ET_DYN):
    sys.exit(f"{path}: e_type is {e_type}, expected an executable")
print(f"{path}: ELF64 little-endian, e_machine=EM_AARCH64, e_type={e_type}: ok")
PY
done

printf '\ncheck-template: all checks passed\n'
