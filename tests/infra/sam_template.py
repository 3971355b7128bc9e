"""template.yaml as CloudFormation: the SAM transform, done offline with aws-sam-translator.

The functions' CodeUri (the workspace root, which `sam build` compiles) becomes an S3 location, as
`sam deploy` would make it. Run as a script, it prints the transformed template as JSON:

    .venv/bin/python tests/infra/sam_template.py > /tmp/template.json

With --stack-set BUCKET_PREFIX RELEASE it prints the template for a CloudFormation stack set
(docs/deploy.md, many accounts and regions), which cannot use a transform:

    .venv/bin/python tests/infra/sam_template.py --stack-set example-capstan-code 1a2b3c4 > capstan-stack-set.json
"""

import argparse
import json
import os
import sys
from pathlib import Path

from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

# Where the transformed template says the functions' code is.
CODE_BUCKET = "capstan-artifacts"
CODE_KEY = "functions.zip"


def transformed(parameters: dict | None = None) -> dict:
    """Returns template.yaml transformed to plain CloudFormation (resource Metadata kept)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse(TEMPLATE.read_text())
    template["Globals"]["Function"]["CodeUri"] = f"s3://{CODE_BUCKET}/{CODE_KEY}"
    translator = Translator(managed_policy_map={}, sam_parser=Parser())
    return translator.translate(template, parameter_values=parameters or {}, passthrough_metadata=True)


# The package of each function, as the stack set template names it.
PACKAGES = {"EvaluatorFunction": "evaluator.zip", "AlarmSyncFunction": "alarm-sync.zip"}


def stack_set_template(bucket_prefix: str, release: str) -> dict:
    """template.yaml transformed for a stack set: in every account and region, each function's code is
    `<release>/<account id>/<package>` in the bucket `<bucket_prefix>-<region>`. Lambda reads code only
    from a bucket in the function's region (another account's will do), and each package carries the
    policies of its account and region, built into it."""
    template = transformed()
    for function, package in PACKAGES.items():
        template["Resources"][function]["Properties"]["Code"] = {
            "S3Bucket": {"Fn::Sub": f"{bucket_prefix}-${{AWS::Region}}"},
            "S3Key": {"Fn::Sub": f"{release}/${{AWS::AccountId}}/{package}"},
        }
    return template


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--stack-set", nargs=2, metavar=("BUCKET_PREFIX", "RELEASE"))
    stack_set = arguments.parse_args().stack_set
    json.dump(stack_set_template(*stack_set) if stack_set else transformed(), sys.stdout, indent=1)
    print()
