"""Keeps the CDK app (infra/) and the SAM template (template.yaml) from drifting apart.

Compares the CDK synth output with the SAM template transformed to CloudFormation: the resource types
(with their counts), the parameters, the outputs, each function's environment variable names, and the
IAM of each role: its AWS managed policies and, statement by statement (by Sid), the actions and
conditions.
Resource ARNs are not compared (SAM writes them with Fn::Sub, CDK with Fn::Join).

Needs the CDK template: `CAPSTAN_CDK_SKIP_BUNDLING=1 npx cdk synth --quiet` in infra/ writes
infra/cdk.out/Capstan.template.json (scripts/check-template.sh does both).
"""

import collections
import json
import os
import re
import unittest
from pathlib import Path

from sam_template import REPO, transformed

CDK_TEMPLATE = Path(os.environ.get("CAPSTAN_CDK_TEMPLATE", REPO / "infra" / "cdk.out" / "Capstan.template.json"))

# What only CDK adds: its version-reporting resource (off in infra/bin/capstan.ts, ignored anyway).
CDK_ONLY_TYPES = {"AWS::CDK::Metadata"}


def resource_types(template: dict) -> collections.Counter:
    return collections.Counter(
        r["Type"] for r in template["Resources"].values() if r["Type"] not in CDK_ONLY_TYPES
    )


def logical_id(reference: dict) -> str:
    """The logical ID of a {"Ref": id} or {"Fn::GetAtt": [id, "Arn"]}."""
    return reference["Ref"] if "Ref" in reference else reference["Fn::GetAtt"][0]


def functions_by_description(template: dict) -> dict:
    """Each Lambda function's logical ID, by its Description (the same in both templates)."""
    return {
        r["Properties"]["Description"]: name
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }


def roles_by_purpose(template: dict) -> dict:
    """Each role's logical ID, named by what assumes it: a function, or a schedule of a function."""
    resources = template["Resources"]
    described = {name: description for description, name in functions_by_description(template).items()}
    roles = {}
    for r in resources.values():
        properties = r["Properties"]
        if r["Type"] == "AWS::Lambda::Function":
            roles[properties["Description"]] = logical_id(properties["Role"])
        elif r["Type"] == "AWS::Scheduler::Schedule":
            target = described[logical_id(properties["Target"]["Arn"])]
            roles[f"schedule of {target}"] = logical_id(properties["Target"]["RoleArn"])
    return roles


def managed_policies(role: dict) -> set:
    """The names of the AWS managed policies attached to a role (the ARN's form set aside)."""
    return {
        re.search(r"policy/([\w/-]+)", json.dumps(arn)).group(1)
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    }


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statements(role: dict) -> dict:
    """A role's inline statements: Sid -> (sorted actions, conditions); unnamed ones under their actions."""
    found = {}
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = tuple(sorted(as_list(statement["Action"])))
            key = statement.get("Sid", " ".join(actions))
            found[key] = (statement.get("Effect", "Allow"), actions, statement.get("Condition", {}))
    return found


class DriftTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sam = transformed()
        cls.cdk = json.loads(CDK_TEMPLATE.read_text())

    def test_same_resource_types(self):
        self.assertEqual(resource_types(self.cdk), resource_types(self.sam))

    def test_same_parameters(self):
        self.assertEqual(set(self.cdk["Parameters"]) - {"BootstrapVersion"}, set(self.sam["Parameters"]))

    def test_same_outputs(self):
        self.assertEqual(set(self.cdk["Outputs"]), set(self.sam["Outputs"]))

    def test_same_functions_with_same_environment(self):
        def environments(template):
            return {
                r["Properties"]["Description"]: sorted(r["Properties"]["Environment"]["Variables"])
                for r in template["Resources"].values()
                if r["Type"] == "AWS::Lambda::Function"
            }

        self.assertEqual(environments(self.cdk), environments(self.sam))
        self.assertEqual(len(environments(self.sam)), 2)

    def test_same_iam_for_each_role(self):
        sam_roles, cdk_roles = roles_by_purpose(self.sam), roles_by_purpose(self.cdk)
        self.assertEqual(set(cdk_roles), set(sam_roles))
        for purpose, sam_role in sam_roles.items():
            with self.subTest(role=purpose):
                sam = self.sam["Resources"][sam_role]
                cdk = self.cdk["Resources"][cdk_roles[purpose]]
                self.assertEqual(managed_policies(cdk), managed_policies(sam))
                self.assertEqual(statements(cdk), statements(sam))


if __name__ == "__main__":
    unittest.main()
