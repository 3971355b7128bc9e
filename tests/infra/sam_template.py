"""template.yaml as CloudFormation: the SAM transform, done offline with aws-sam-translator.

The functions' CodeUri (the workspace root, which `sam build` compiles) becomes an S3 location, as
`sam deploy` would make it. Run as a script, it prints the transformed template as JSON:

    .venv/bin/python tests/infra/sam_template.py > /tmp/template.json
"""

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


if __name__ == "__main__":
    json.dump(transformed(), sys.stdout, indent=1)
    print()
