"""Creates the transformed template.yaml as a CloudFormation stack in moto, then checks through each
service's own API that the table, the alarm rule, the functions and their wiring exist.

Run under scripts/with-emulator.sh (it exports CAPSTAN_AWS_ENDPOINT). What moto 5.2.5 cannot do, and
so what this test does not check:
- the alarm-sync custom resource is left out: moto would have to run the function (in Docker) for
  it to answer, and the stack would stay CREATE_IN_PROGRESS;
- moto's CloudFormation accepts but does not create AWS::Scheduler::Schedule, AWS::CloudWatch::Alarm,
  AWS::Lambda::EventInvokeConfig and the SNS/SQS resource policies, and ignores the table's TTL and
  point-in-time recovery and the functions' architecture; tests/infra/test_template.py, cfn-lint and
  checkov cover those offline.
"""

import ast
import io
import json
import os
import unittest
import zipfile

import boto3

from sam_template import CODE_BUCKET, CODE_KEY, transformed

STACK = "capstan-test"


def client(service: str):
    return boto3.client(service, endpoint_url=os.environ["CAPSTAN_AWS_ENDPOINT"], region_name="us-east-1")


def policy_document(answer: dict) -> dict:
    """The policy of a GetRolePolicy answer. For a role made by its CloudFormation, moto 5.2.5 keeps
    the policy as the text of a Python dict (AWS would send URL-encoded JSON, which boto3 decodes)."""
    document = answer["PolicyDocument"]
    return ast.literal_eval(document) if isinstance(document, str) else document


class StackInMotoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The code package sam deploy would upload; moto stores it but never runs it.
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("bootstrap", "")
        s3 = client("s3")
        s3.create_bucket(Bucket=CODE_BUCKET)
        s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=package.getvalue())

        template = transformed({"AlarmPrefix": "scale", "Paused": "true"})
        del template["Resources"]["AlarmSync"]
        cloudformation = client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "AlarmPrefix", "ParameterValue": "scale"},
                {"ParameterKey": "Paused", "ParameterValue": "true"},
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        cls.stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        cls.physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        }

    def test_stack_is_created(self):
        self.assertEqual(self.stack["StackStatus"], "CREATE_COMPLETE", self.stack.get("StackStatusReason"))

    def test_state_table_is_keyed_by_pk(self):
        table = client("dynamodb").describe_table(TableName=self.physical["StateTable"])["Table"]
        self.assertEqual(
            table["KeySchema"],
            [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")

    def test_alarm_rule_wakes_the_evaluator_for_this_stacks_alarms_only(self):
        events = client("events")
        rule = events.describe_rule(Name=self.physical["EvaluatorFunctionAlarmStateChange"])
        self.assertEqual(
            json.loads(rule["EventPattern"]),
            {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "detail": {"alarmName": [{"prefix": f"scale/{STACK}/"}]},
            },
        )
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        evaluator = client("lambda").get_function(FunctionName=self.physical["EvaluatorFunction"])
        self.assertEqual([t["Arn"] for t in targets], [evaluator["Configuration"]["FunctionArn"]])
        # Prefix matching is a plain string prefix (EventBridge User Guide, "Prefix matching"); moto
        # 5.2.5 does not answer TestEventPattern.
        [matching] = json.loads(rule["EventPattern"])["detail"]["alarmName"]

        def wakes(alarm_name: str) -> bool:
            return alarm_name.startswith(matching["prefix"])

        self.assertTrue(wakes(f"scale/{STACK}/web-scale_out-0"))
        for elsewhere in [
            f"scale/{STACK}-stg/web-scale_out-0",  # another stack under the same prefix
            f"scale-stg/{STACK}/web-scale_out-0",  # a longer prefix
            "scale-web-scale_out-0",  # named before alarms carried their stack
            f"{STACK}-health-evaluator-errors",  # the stack's own health alarms
        ]:
            self.assertFalse(wakes(elsewhere), elsewhere)

    def test_evaluator_is_wired_to_table_topic_and_switches(self):
        function = client("lambda").get_function(FunctionName=self.physical["EvaluatorFunction"])
        configuration = function["Configuration"]
        self.assertEqual(configuration["Runtime"], "provided.al2023")
        self.assertEqual(configuration["Handler"], "bootstrap")
        topics = client("sns").list_topics()["Topics"]
        decisions_topic = self.physical["DecisionsTopic"]
        self.assertIn({"TopicArn": decisions_topic}, topics)
        variables = configuration["Environment"]["Variables"]
        self.assertEqual(variables["CAPSTAN_STATE_TABLE"], self.physical["StateTable"])
        self.assertEqual(variables["CAPSTAN_DECISIONS_TOPIC"], decisions_topic)
        self.assertEqual(variables["CAPSTAN_PAUSED"], "true")
        self.assertEqual(variables["DRY_RUN"], "false")

    def test_alarm_sync_is_told_the_prefix_and_its_stack(self):
        function = client("lambda").get_function(FunctionName=self.physical["AlarmSyncFunction"])
        variables = function["Configuration"]["Environment"]["Variables"]
        self.assertEqual((variables["CAPSTAN_ALARM_PREFIX"], variables["CAPSTAN_STACK"]), ("scale", STACK))

    def test_evaluator_role_deletes_only_tagged_databases(self):
        iam = client("iam")
        role = self.physical["EvaluatorFunctionRole"]
        statements = [
            statement
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
            for statement in policy_document(iam.get_role_policy(RoleName=role, PolicyName=name))["Statement"]
        ]
        deletes = [s for s in statements if "rds:DeleteDBInstance" in json.dumps(s["Action"])]
        self.assertEqual(len(deletes), 1)
        self.assertEqual(deletes[0]["Condition"], {"StringEquals": {"aws:ResourceTag/capstan:managed": "true"}})

    def test_shards_reach_the_evaluator_through_the_shard_queue(self):
        sqs = client("sqs")
        queue_url = self.physical["ShardQueue"]
        function = client("lambda").get_function(FunctionName=self.physical["EvaluatorFunction"])
        variables = function["Configuration"]["Environment"]["Variables"]
        self.assertEqual(variables["CAPSTAN_SHARD_QUEUE"], queue_url)
        # moto keeps a Number parameter's default as a number where Lambda would hold its text.
        self.assertEqual(str(variables["CAPSTAN_MAX_RESOURCES_PER_INVOCATION"]), "500")
        self.assertEqual(str(variables["CAPSTAN_CONCURRENCY"]), "4", "the reserved concurrency shares the rate limits")
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attributes["VisibilityTimeout"], "360", "six times the evaluator's timeout")
        self.assertEqual(attributes["MaximumMessageSize"], "262144", "what crates/aws/src/sqs.rs sends")
        dead_letters = sqs.get_queue_attributes(
            QueueUrl=self.physical["DeadLetterQueue"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.assertEqual(
            json.loads(attributes["RedrivePolicy"]), {"deadLetterTargetArn": dead_letters, "maxReceiveCount": 5}
        )
        [mapping] = client("lambda").list_event_source_mappings(FunctionName=self.physical["EvaluatorFunction"])[
            "EventSourceMappings"
        ]
        self.assertEqual(mapping["EventSourceArn"], attributes["QueueArn"])
        self.assertEqual(mapping["BatchSize"], 1)

    def test_dead_letter_queue_and_dashboard_exist(self):
        queue_url = self.physical["DeadLetterQueue"]
        attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MessageRetentionPeriod"])
        self.assertEqual(attributes["Attributes"]["MessageRetentionPeriod"], "1209600")
        dashboards = client("cloudwatch").list_dashboards()["DashboardEntries"]
        self.assertIn(f"{STACK}-capstan", [d["DashboardName"] for d in dashboards])


if __name__ == "__main__":
    unittest.main()
