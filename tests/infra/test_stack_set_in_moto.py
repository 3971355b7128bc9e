"""The stack set template (sam_template.stack_set_template, docs/deploy.md: many accounts and regions)
validates, uses no transform and is the same whatever the parameters' values; deployed as a stack set
with service-managed permissions to two accounts in two regions, with parameters per account, it makes
in each account and region one state table and one evaluator, configured with that account's
parameters and running that account's code from that region's bucket, checked through each service's
own API in each account.

Run under scripts/with-emulator.sh (it exports CAPSTAN_AWS_ENDPOINT). How moto 5.2.5 is used, and what
it cannot do:
- Accounts: moto's Organizations makes the two member accounts, each in an OU of its own, and the
  stack instances target the OUs. STS AssumeRole into arn:aws:iam::<account>:role/<any name> returns
  credentials that moto maps to <account> (the role need not exist), so each account is read with
  its own credentials.
- moto targets every account of an OU and ignores DeploymentTargets' Accounts and AccountFilterType,
  so per-account ParameterOverrides are given here with one OU per account; on AWS they can also be
  given per account within an OU (AccountFilterType INTERSECTION).
- moto neither refuses a template with a transform in a stack set with service-managed permissions
  nor names a stack instance's stack as AWS does (StackSet-<name>-<id>), nor lists it in the
  account's stacks: the absence of Transform is checked on the template itself, and the resources
  through their services.
- The alarm-sync custom resource is left out: moto would have to run the function (in Docker) for
  it to answer, and the instances would not complete.
- moto does not check that a function's code bucket is in the function's region (AWS refuses one
  that is not): each region's bucket holds packages of its own, and each function's CodeSha256 shows
  whose it runs. It allows another account's bucket, as AWS does.
"""

import base64
import hashlib
import io
import json
import os
import unittest
import zipfile
from functools import partial

import boto3
from cfnlint.api import lint

from sam_template import PACKAGES, stack_set_template, transformed

STACK_SET = "capstan"
BUCKET_PREFIX = "capstan-code"
RELEASE = "1a2b3c4"
REGIONS = ["us-east-1", "eu-west-1"]
# Per account (its OU's name, then its ParameterOverrides).
ACCOUNTS = {
    "prod": {"AlarmPrefix": "prod", "Paused": "false", "DryRun": "false"},
    "staging": {"AlarmPrefix": "staging", "Paused": "true", "DryRun": "true"},
}


def client(service: str, region: str = "us-east-1", credentials: dict | None = None):
    keys = {}
    if credentials:
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
    return boto3.client(service, endpoint_url=os.environ["CAPSTAN_AWS_ENDPOINT"], region_name=region, **keys)


def package(function: str, account: str, region: str) -> bytes:
    """A code package that tells apart the function, account and region it was uploaded for."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        # A fixed time stamp, so that the same package is the same bytes.
        z.writestr(zipfile.ZipInfo("bootstrap", (2026, 1, 1, 0, 0, 0)), f"{function} for {account} in {region}")
    return archive.getvalue()


def sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def has_transform(node) -> bool:
    if isinstance(node, dict):
        return any(k in ("Transform", "Fn::Transform") or has_transform(v) for k, v in node.items())
    return isinstance(node, list) and any(has_transform(v) for v in node)


class StackSetTemplateTest(unittest.TestCase):
    def test_has_no_transform_and_passes_cfn_lint(self):
        template = stack_set_template(BUCKET_PREFIX, RELEASE)
        self.assertFalse(has_transform(template))
        self.assertEqual(lint(json.dumps(template), regions=REGIONS), [])

    def test_one_template_serves_every_accounts_parameters(self):
        # The translator resolves none of the parameters, so the template made without their values is
        # the one each account's values would make.
        for overrides in ACCOUNTS.values():
            self.assertEqual(transformed(overrides), transformed())

    def test_names_the_regions_bucket_and_the_accounts_package(self):
        code = stack_set_template(BUCKET_PREFIX, RELEASE)["Resources"]["EvaluatorFunction"]["Properties"]["Code"]
        self.assertEqual(
            code,
            {
                "S3Bucket": {"Fn::Sub": "capstan-code-${AWS::Region}"},
                "S3Key": {"Fn::Sub": "1a2b3c4/${AWS::AccountId}/evaluator.zip"},
            },
        )


class StackSetInMotoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        organizations = client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        root = organizations.list_roots()["Roots"][0]["Id"]
        cls.accounts = {}  # OU name -> account id
        ous = {}
        for name in ACCOUNTS:
            ous[name] = organizations.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
            status = organizations.create_account(AccountName=f"capstan-{name}", Email=f"{name}@example.com")
            account = status["CreateAccountStatus"]["AccountId"]
            organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ous[name])
            cls.accounts[name] = account

        # A bucket per region in this (the administrator's) account, holding each account's packages.
        s3 = client("s3")
        for region in REGIONS:
            bucket = f"{BUCKET_PREFIX}-{region}"
            location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **location)
            for account in cls.accounts.values():
                for function, name in PACKAGES.items():
                    key = f"{RELEASE}/{account}/{name}"
                    s3.put_object(Bucket=bucket, Key=key, Body=package(function, account, region))

        template = stack_set_template(BUCKET_PREFIX, RELEASE)
        del template["Resources"]["AlarmSync"]
        cloudformation = client("cloudformation")
        cloudformation.create_stack_set(
            StackSetName=STACK_SET,
            TemplateBody=json.dumps(template),
            PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
            Capabilities=["CAPABILITY_IAM"],
        )
        for name, overrides in ACCOUNTS.items():
            cloudformation.create_stack_instances(
                StackSetName=STACK_SET,
                DeploymentTargets={"OrganizationalUnitIds": [ous[name]]},
                Regions=REGIONS,
                ParameterOverrides=[{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()],
            )
        cls.instances = cloudformation.list_stack_instances(StackSetName=STACK_SET)["Summaries"]

        sts = client("sts")
        cls.credentials = {
            name: sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/capstan-deploy-check", RoleSessionName="check")[
                "Credentials"
            ]
            for name, account in cls.accounts.items()
        }

    def in_each_account_and_region(self):
        for name, account in self.accounts.items():
            for region in REGIONS:
                yield name, account, region, partial(client, region=region, credentials=self.credentials[name])

    def test_assumed_credentials_are_the_accounts(self):
        for name, account in self.accounts.items():
            identity = client("sts", credentials=self.credentials[name]).get_caller_identity()
            self.assertEqual(identity["Account"], account)

    def test_an_instance_per_account_and_region(self):
        self.assertEqual(
            sorted((i["Account"], i["Region"]) for i in self.instances),
            sorted((account, region) for account in self.accounts.values() for region in REGIONS),
        )

    def test_one_state_table_per_account_and_region(self):
        for name, account, region, service in self.in_each_account_and_region():
            with self.subTest(account=name, region=region):
                [table] = service("dynamodb").list_tables()["TableNames"]
                described = service("dynamodb").describe_table(TableName=table)["Table"]
                self.assertEqual(described["TableArn"], f"arn:aws:dynamodb:{region}:{account}:table/{table}")
                self.assertEqual([k["AttributeName"] for k in described["KeySchema"]], ["pk", "sk"])
        self.assertEqual(client("dynamodb").list_tables()["TableNames"], [], "nothing in the administrator's account")

    def functions(self, service) -> tuple[dict, dict]:
        """The account and region's only evaluator and alarm-sync, told apart by their descriptions."""
        functions = service("lambda").list_functions()["Functions"]
        self.assertEqual(sorted(f["Description"] for f in functions), ["capstan alarm-sync", "capstan evaluator"])
        by_description = {f["Description"]: f for f in functions}
        return by_description["capstan evaluator"], by_description["capstan alarm-sync"]

    def test_evaluator_has_its_accounts_parameters_and_table(self):
        for name, account, region, service in self.in_each_account_and_region():
            with self.subTest(account=name, region=region):
                evaluator, _ = self.functions(service)
                self.assertTrue(evaluator["FunctionArn"].startswith(f"arn:aws:lambda:{region}:{account}:function:"))
                variables = evaluator["Environment"]["Variables"]
                switches = (variables["CAPSTAN_PAUSED"], variables["DRY_RUN"])
                self.assertEqual(switches, (ACCOUNTS[name]["Paused"], ACCOUNTS[name]["DryRun"]))
                [table] = service("dynamodb").list_tables()["TableNames"]
                self.assertEqual(variables["CAPSTAN_STATE_TABLE"], table)

    def test_alarms_of_each_account_carry_its_prefix(self):
        for name, account, region, service in self.in_each_account_and_region():
            with self.subTest(account=name, region=region):
                _, alarm_sync = self.functions(service)
                prefix = ACCOUNTS[name]["AlarmPrefix"]
                self.assertEqual(alarm_sync["Environment"]["Variables"]["CAPSTAN_ALARM_PREFIX"], prefix)
                events = service("events")
                [rule] = [r for r in events.list_rules()["Rules"] if "EventPattern" in r]
                [matching] = json.loads(rule["EventPattern"])["detail"]["alarmName"]
                self.assertTrue(matching["prefix"].startswith(f"{prefix}/"), matching)

    def test_functions_run_the_accounts_package_from_the_regions_bucket(self):
        for name, account, region, service in self.in_each_account_and_region():
            with self.subTest(account=name, region=region):
                evaluator, alarm_sync = self.functions(service)
                self.assertEqual(evaluator["CodeSha256"], sha256(package("EvaluatorFunction", account, region)))
                self.assertEqual(alarm_sync["CodeSha256"], sha256(package("AlarmSyncFunction", account, region)))


if __name__ == "__main__":
    unittest.main()
