"""The CDK app in a stage per account and Region, as CDK Pipelines deploys it (docs/deploy.md, many
accounts and Regions): each stage's functions are built with its own policy directory, its settings
are its parameters' defaults (a pipeline passes no parameter values), and its code goes to the
bootstrap bucket of its own account and Region.

infra/test/stages.ts synthesises the stages with bundling, with a stand-in for `cargo lambda` on PATH
that answers `--version` and, for a build, writes the binary it was asked for and the CAPSTAN_POLICIES
it was given into the bootstrap: the real build (crates/lambda/build.rs) packages the policies of that
directory, and is not run here.
"""

import json
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

from sam_template import REPO

INFRA = REPO / "infra"
TARGETS = [
    {
        "account": "111111111111",
        "region": "us-east-1",
        "policies": "/policies/111111111111/us-east-1",
        "parameters": {"DryRun": "false", "AlarmPrefix": "prod"},
    },
    {
        "account": "222222222222",
        "region": "eu-west-1",
        "policies": "/policies/222222222222/eu-west-1",
        "parameters": {"DryRun": "true", "AlarmPrefix": "staging"},
    },
]
FAKE_CARGO = """#!/usr/bin/env bash
[[ "$1 $2" == "lambda --version" ]] && { echo "cargo-lambda (stand-in)"; exit 0; }
while [[ $# -gt 0 ]]; do
  case "$1" in --lambda-dir) dir="$2"; shift ;; --bin) bin="$2"; shift ;; esac
  shift
done
mkdir -p "$dir" && echo "$bin built with CAPSTAN_POLICIES=${CAPSTAN_POLICIES:-unset}" > "$dir/bootstrap"
"""


class CdkStagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.TemporaryDirectory()
        work = Path(cls.work.name)
        (work / "bin").mkdir()
        cargo = work / "bin" / "cargo"
        cargo.write_text(FAKE_CARGO)
        cargo.chmod(0o755)
        cls.out = work / "cdk.out"
        environment = {**os.environ, "PATH": f"{work / 'bin'}:{os.environ['PATH']}"}
        environment.pop("CAPSTAN_CDK_SKIP_BUNDLING", None)
        subprocess.run(
            ["node_modules/.bin/ts-node", "--prefer-ts-exts", "test/stages.ts", str(cls.out), json.dumps(TARGETS)],
            cwd=INFRA,
            env=environment,
            check=True,
        )

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()

    def template(self, target: dict) -> dict:
        [path] = (self.out / f"assembly-Capstan-{target['account']}-{target['region']}").glob("*.template.json")
        return json.loads(path.read_text())

    def test_settings_are_the_parameters_defaults(self):
        for target in TARGETS:
            parameters = self.template(target)["Parameters"]
            for name, value in target["parameters"].items():
                self.assertEqual(parameters[name]["Default"], value, (target["account"], name))
            self.assertEqual(parameters["Paused"]["Default"], "false", "the others keep theirs")

    def test_functions_are_built_with_the_stages_policies_into_its_own_bucket(self):
        for target in TARGETS:
            functions = [r for r in self.template(target)["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
            built = {}
            for function in functions:
                code = function["Properties"]["Code"]
                self.assertEqual(code["S3Bucket"], f"cdk-hnb659fds-assets-{target['account']}-{target['region']}")
                asset = self.out / f"asset.{code['S3Key'].removesuffix('.zip')}" / "bootstrap"
                binary, built_with = asset.read_text().strip().split(" built with ")
                built[binary] = built_with
            policies = f"CAPSTAN_POLICIES={target['policies']}"
            self.assertEqual(built, {"evaluator": policies, "alarm-sync": policies}, target["account"])


if __name__ == "__main__":
    unittest.main()
