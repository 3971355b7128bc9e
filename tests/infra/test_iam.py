"""Every AWS operation a function calls is allowed to its role, in template.yaml and in infra/ alike,
and every action a role is granted is one its function needs.

What a function calls is read from the code, not declared here:

- an adapter is a module of crates/aws/src; its operations are its `client.<operation>()` calls outside
  its tests, each mapped to `<prefix>:<Operation>` (`describe_cluster_v2` -> `kafka:DescribeClusterV2`),
  the prefix being the SDK crate the module uses (`aws_sdk_kafka` -> `kafka`; each crate's name is its
  service's IAM prefix);
- a function (functions/<name>) uses the adapters it names as `capstan_aws::<Type>` (types re-exported
  by crates/aws/src/lib.rs), and `Aws` stands for every adapter it holds as a field.

IAM action names are case-insensitive ("IAM JSON policy elements: Action", IAM User Guide), so
`rds:DescribeDbInstances` is `rds:DescribeDBInstances`.

Needs the CDK template, like test_drift.py (scripts/check-template.sh synthesises it first).
"""

import fnmatch
import json
import re
import unittest

from sam_template import REPO, transformed
from test_drift import CDK_TEMPLATE, as_list, logical_id

ADAPTERS = REPO / "crates" / "aws" / "src"
FUNCTIONS = REPO / "functions"

# Actions an operation needs besides its own, from the Service Authorization Reference (dependent
# actions) and the services' guides: each is required wherever the operation is.
DEPENDENT_ACTIONS = {
    # MSK Developer Guide, "Topic Operations": the MSK topic API is authorised with Kafka data-plane
    # actions too (kafka-cluster:Connect on the cluster, the others on the topic).
    "kafka:ListTopics": ["kafka-cluster:Connect", "kafka-cluster:DescribeTopic"],
    "kafka:DescribeTopic": [
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:DescribeTopicDynamicConfiguration",
    ],
    "kafka:UpdateTopic": [
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:AlterTopic",
        "kafka-cluster:AlterTopicDynamicConfiguration",
    ],
    # CloudWatch API Reference, PutMetricAlarm `Tags`: creating an alarm with tags needs TagResource.
    "cloudwatch:PutMetricAlarm": ["cloudwatch:TagResource"],
    # Service Authorization Reference, Amazon RDS: CreateDBInstanceReadReplica with tags.
    "rds:CreateDBInstanceReadReplica": ["rds:AddTagsToResource"],
}

# Operations that are no IAM action of their own, authorised as the actions of their parts instead.
AUTHORISED_AS_ITS_PARTS = {
    # DynamoDB Developer Guide, "Using IAM with DynamoDB transactions": a transaction's Update is
    # authorised as UpdateItem, its ConditionCheck as ConditionCheckItem, its Put as PutItem and its
    # Delete as DeleteItem. state.rs fences each state write with one ConditionCheck (the lease) and
    # one Update (the state); state/batch.rs takes leases (Put) and gives them back (Delete) in
    # transactions too.
    # SQS API Reference, SendMessageBatch: its permissions are those of SendMessage.
    "sqs:SendMessageBatch": ["sqs:SendMessage"],
    "dynamodb:TransactWriteItems": [
        "dynamodb:ConditionCheckItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    ],
}

# Operations in the adapters that no function calls, with why.
NOT_CALLED_BY_FUNCTIONS = {
    "dynamodb:CreateTable": "capstan_aws::create_table makes the state table for tests and the demo; "
    "the stack's table is CloudFormation's",
    "dynamodb:Query": "DynamoStateStore::decision_log reads the decision log back for the command line "
    "(capstan history, capstan backtest); the functions only write it",
}

# Actions granted for a call that is not in capstan's code, with why.
GRANTED_WITHOUT_A_CALL = {
    "sqs:SendMessage": "Lambda sends a failed asynchronous invocation to the dead-letter queue with the "
    "function's role",
    **{
        action: "the event source mapping polls the shard queue with the evaluator's role and deletes "
        "the messages handled (Lambda Developer Guide, 'Using Lambda with Amazon SQS': execution role "
        "permissions)"
        for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    },
}


def non_test_code(path) -> str:
    """The file's text before its `#[cfg(test)]` module."""
    return re.split(r"^#\[cfg\(test\)\]\s*$", path.read_text(), maxsplit=1, flags=re.MULTILINE)[0]


def action_name(prefix: str, operation: str) -> str:
    return f"{prefix}:" + "".join(part.capitalize() for part in operation.split("_"))


def operations(module: str) -> set:
    """The IAM actions of the `client.<operation>()` calls in crates/aws/src/<module>.rs and its
    submodules (crates/aws/src/<module>/*.rs)."""
    files = [ADAPTERS / f"{module}.rs", *sorted((ADAPTERS / module).glob("*.rs"))]
    code = "\n".join(non_test_code(path) for path in files)
    prefixes = set(re.findall(r"\baws_sdk_([a-z0-9]+)::", code))
    calls = {
        call
        for call in re.findall(r"\bclient\s*\.\s*([a-z0-9_]+)\s*\(", code)
        # A waiter (only create_table's) polls a Describe call; it is no operation of its own, and
        # neither is reading the client's configuration.
        if not call.startswith("wait_until_") and call != "config"
    }
    if calls and len(prefixes) != 1:
        raise AssertionError(f"{module}.rs: expected one SDK crate, found {sorted(prefixes)}")
    return {action_name(next(iter(prefixes)), call) for call in calls}


def exported_types() -> dict:
    """Each type crates/aws/src/lib.rs re-exports, with the module it comes from."""
    lib = non_test_code(ADAPTERS / "lib.rs")
    exported = {}
    for module, names in re.findall(r"^pub use (\w+)::\{?([\w, ]+)\}?;", lib, flags=re.MULTILINE):
        for name in names.split(","):
            exported[name.strip()] = module
    return exported


def aws_field_types() -> set:
    """The types of the fields of `pub struct Aws`: the adapters `Aws` stands for."""
    lib = non_test_code(ADAPTERS / "lib.rs")
    body = re.search(r"pub struct Aws \{(.*?)\n\}", lib, flags=re.DOTALL).group(1)
    return set(re.findall(r"^\s*\w+: (\w+),", body, flags=re.MULTILINE))


def adapters_of(function: str) -> set:
    """The adapter modules the function functions/<function> uses."""
    exported = exported_types()
    code = "\n".join(non_test_code(path) for path in (FUNCTIONS / function / "src").glob("*.rs"))
    named = set(re.findall(r"\bcapstan_aws::(\w+)", code))
    for group in re.findall(r"\bcapstan_aws::\{([^}]*)\}", code):
        named |= {name.strip() for name in group.split(",")}
    if "Aws" in named:
        named |= aws_field_types()
    return {exported[name] for name in named if name in exported and operations(exported[name])}


def needed_actions(function: str) -> set:
    """What the function's role must allow: its adapters' operations and their dependent actions."""
    not_called = {action.lower() for action in NOT_CALLED_BY_FUNCTIONS}
    dependents = {action.lower(): needed for action, needed in DEPENDENT_ACTIONS.items()}
    parts = {action.lower(): needed for action, needed in AUTHORISED_AS_ITS_PARTS.items()}
    called = {
        part
        for module in adapters_of(function)
        for action in operations(module)
        if action.lower() not in not_called
        for part in parts.get(action.lower(), [action])
    }
    return called | {dependent for action in called for dependent in dependents.get(action.lower(), [])}


def allowed_actions(template: dict, function: str) -> set:
    """The actions the inline policies of the role of the function `capstan <function>` allow."""
    resources = template["Resources"]
    [role] = [
        logical_id(r["Properties"]["Role"])
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Description"] == f"capstan {function}"
    ]
    return {
        action
        for policy in resources[role]["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if statement.get("Effect", "Allow") == "Allow"
        for action in as_list(statement["Action"])
    }


def allows(granted: set, action: str) -> bool:
    return any(fnmatch.fnmatch(action.lower(), pattern.lower()) for pattern in granted)


class RoleActionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.templates = {"template.yaml": transformed(), "infra/": json.loads(CDK_TEMPLATE.read_text())}
        cls.functions = sorted(path.name for path in FUNCTIONS.iterdir() if (path / "src").is_dir())

    def test_every_function_uses_adapters_and_every_adapter_is_used(self):
        used = set()
        for function in self.functions:
            adapters = adapters_of(function)
            self.assertTrue(adapters, f"functions/{function} names no adapter of crates/aws")
            used |= adapters
        with_calls = {path.stem for path in ADAPTERS.glob("*.rs") if operations(path.stem)}
        self.assertEqual(used, with_calls, "an adapter no function uses has calls nobody grants")

    def test_every_operation_a_function_calls_is_allowed_to_its_role(self):
        for name, template in self.templates.items():
            for function in self.functions:
                with self.subTest(template=name, function=function):
                    granted = allowed_actions(template, function)
                    missing = sorted(a for a in needed_actions(function) if not allows(granted, a))
                    self.assertEqual(missing, [], f"{name}: the {function} role does not allow these")

    def test_every_granted_action_is_one_the_function_needs(self):
        for name, template in self.templates.items():
            for function in self.functions:
                with self.subTest(template=name, function=function):
                    needed = {a.lower() for a in needed_actions(function) | set(GRANTED_WITHOUT_A_CALL)}
                    stale = sorted(a for a in allowed_actions(template, function) if a.lower() not in needed)
                    self.assertEqual(stale, [], f"{name}: the {function} role allows what it never calls")


if __name__ == "__main__":
    unittest.main()
