"""fast_moto.py's TransactWriteItems and GetMetricData answer as moto's own do, through boto3.

    .venv/bin/python -m unittest discover -s tests/emulator
"""

import contextlib
import random
import unittest
from datetime import datetime, timedelta, timezone
from unittest import mock

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudwatch.models import CloudWatchBackend
from moto.dynamodb.models import DynamoDBBackend

import fast_moto

REGION = "us-east-1"


@contextlib.contextmanager
def moto(fast):
    """A fresh in-process moto, with fast_moto's stand-ins (fast) or moto's own methods."""
    with (
        mock_aws(),
        mock.patch.object(
            DynamoDBBackend,
            "transact_write_items",
            fast_moto.transact_write_items if fast else fast_moto.MOTO_TRANSACT_WRITE_ITEMS,
        ),
        mock.patch.object(
            CloudWatchBackend,
            "get_metric_data",
            fast_moto.get_metric_data if fast else fast_moto.MOTO_GET_METRIC_DATA,
        ),
    ):
        yield


def answer(call, **members):
    """What a call answers: its response without metadata, or its error code, message and
    cancellation reasons."""
    try:
        response = call(**members)
    except ClientError as error:
        return error.response["Error"], error.response.get("CancellationReasons")
    response.pop("ResponseMetadata")
    return response


def s(value):
    return {"S": value}


def n(value):
    return {"N": str(value)}


def put(table, item, **members):
    return {"Put": {"TableName": table, "Item": item, **members}}


def update(table, key, expression, values=None, **members):
    if values:
        members["ExpressionAttributeValues"] = values
    return {"Update": {"TableName": table, "Key": key, "UpdateExpression": expression, **members}}


def delete(table, key):
    return {"Delete": {"TableName": table, "Key": key}}


def condition(table, key, expression, values=None, **members):
    if values:
        members["ExpressionAttributeValues"] = values
    return {
        "ConditionCheck": {
            "TableName": table, "Key": key, "ConditionExpression": expression, **members
        }
    }


# Run in this order: every transaction but the last is cancelled or refused, so leaves the tables
# as they were seeded.
TRANSACTIONS = {
    "cancelled by conditions": [
        put("plain", {"pk": s("new"), "n": n(1)}),
        update("plain", {"pk": s("item-1")}, "SET n = n + :one", {":one": n(1)}),
        delete("plain", {"pk": s("item-2")}),
        update("plain", {"pk": s("absent")}, "SET n = :one", {":one": n(1)}),
        put("sorted", {"pk": s("p-0"), "sk": s("new"), "n": n(1)}),
        update("sorted", {"pk": s("p-1"), "sk": s("s-1")}, "REMOVE n"),
        delete("sorted", {"pk": s("p-0"), "sk": s("s-2")}),
        update("streamed", {"pk": s("item-0")}, "SET n = :one", {":one": n(1)}),
        put("streamed", {"pk": s("new")}),
        condition(
            "plain",
            {"pk": s("item-3")},
            "n = :wrong",
            {":wrong": n(-1)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        put("plain", {"pk": s("item-4")}, ConditionExpression="attribute_not_exists(pk)"),
        delete("streamed", {"pk": s("item-1")}),
    ],
    "refused for a repeated item": [
        update("plain", {"pk": s("item-5")}, "SET n = :one", {":one": n(1)}),
        put("streamed", {"pk": s("new")}),
        put("plain", {"pk": s("item-5")}),
    ],
    "refused for a missing key": [
        delete("plain", {"pk": s("item-6")}),
        put("streamed", {"pk": s("new")}),
        delete("sorted", {"pk": s("p-0")}),
    ],
    "succeeds": [
        put("plain", {"pk": s("new"), "n": n(1)}),
        update("plain", {"pk": s("item-1")}, "SET n = n + :one", {":one": n(1)}),
        delete("plain", {"pk": s("item-2")}),
        update("sorted", {"pk": s("p-1"), "sk": s("s-1")}, "REMOVE n"),
        condition("sorted", {"pk": s("p-0"), "sk": s("s-0")}, "n = :zero", {":zero": n(0)}),
        update("streamed", {"pk": s("item-0")}, "SET n = :one", {":one": n(1)}),
        delete("streamed", {"pk": s("item-1")}),
    ],
}


def transaction_story():
    """Seed three tables, run TRANSACTIONS, and tell what each answered and left behind."""
    client = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    for table, keys, members in [
        ("plain", ["pk"], {}),
        ("sorted", ["pk", "sk"], {}),
        ("streamed", ["pk"], {"StreamSpecification": stream}),
    ]:
        client.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": key, "KeyType": kind}
                for key, kind in zip(keys, ["HASH", "RANGE"])
            ],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
            BillingMode="PAY_PER_REQUEST",
            **members,
        )
    for i in range(8):
        client.put_item(TableName="plain", Item={"pk": s(f"item-{i}"), "n": n(i)})
        client.put_item(TableName="streamed", Item={"pk": s(f"item-{i}"), "n": n(i)})
        client.put_item(
            TableName="sorted", Item={"pk": s(f"p-{i % 2}"), "sk": s(f"s-{i // 2}"), "n": n(i // 2)}
        )
    stream_arn = client.describe_table(TableName="streamed")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]

    def state():
        tables = {
            table: sorted(client.scan(TableName=table)["Items"], key=repr)
            for table in ["plain", "sorted", "streamed"]
        }
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        tables["stream"] = [
            (record["eventName"], record["dynamodb"]["Keys"], record["dynamodb"].get("NewImage"))
            for record in records
        ]
        return tables

    story = {"seeded": state()}
    for name, transaction in TRANSACTIONS.items():
        story[name] = answer(client.transact_write_items, TransactItems=transaction), state()
    return story


class TransactWriteItemsTest(unittest.TestCase):
    def test_answers_and_rolls_back_as_moto(self):
        with moto(fast=False):
            expected = transaction_story()
        with moto(fast=True):
            story = transaction_story()
        self.assertEqual(story, expected)

        reasons = [reason["Code"] for reason in story["cancelled by conditions"][0][1]]
        self.assertEqual(reasons.count("ConditionalCheckFailed"), 2)
        self.assertEqual(
            story["cancelled by conditions"][0][1][9]["Item"], {"pk": s("item-3"), "n": n(3)}
        )
        for name in list(TRANSACTIONS)[:-1]:
            with self.subTest(name):
                self.assertEqual(story[name][1], story["seeded"])
        self.assertIn("ConsumedCapacity", story["succeeds"][0])
        self.assertNotEqual(story["succeeds"][1], story["seeded"])

    def test_rolls_back_a_table_named_by_arn(self):
        with moto(fast=True):
            client = boto3.client("dynamodb", region_name=REGION)
            arn = client.create_table(
                TableName="by-arn",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )["TableDescription"]["TableArn"]
            _, reasons = answer(
                client.transact_write_items,
                TransactItems=[
                    put(arn, {"pk": s("new")}),
                    condition(arn, {"pk": s("absent")}, "attribute_exists(pk)"),
                ],
            )
            codes = [reason["Code"] for reason in reasons]
            self.assertEqual(codes, ["None", "ConditionalCheckFailed"])
            self.assertEqual(client.scan(TableName="by-arn")["Items"], [])


S0 = [{"Name": "Service", "Value": "s0"}]
S1 = [{"Name": "Service", "Value": "s1"}]
ZONED = [*S0, {"Name": "Zone", "Value": "z1"}]


def stat(query_id, namespace, name, dimensions, period, statistic, unit=None, **members):
    metric_stat = {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
        "Period": period,
        "Stat": statistic,
        **({"Unit": unit} if unit else {}),
    }
    return {"Id": query_id, "MetricStat": metric_stat, **members}


QUERIES = [
    stat("sum", "capstan/a", "Depth", S0, 60, "Sum"),
    stat("zoned", "capstan/b", "Latency", ZONED, 300, "Average", Label="zoned latency"),
    # moto sorts dimensions with an odd order (Dimension.__lt__) that leaves these as they are,
    # unlike the datapoints' own: moto finds no datapoints.
    stat("reversed", "capstan/b", "Latency", ZONED[::-1], 300, "Average"),
    stat("plain", "capstan/a", "Depth", [], 120, "Maximum", ReturnData=False),
    stat("counted", "capstan/b", "Latency", S1, 60, "Minimum"),
    stat("counted_unit", "capstan/a", "Latency", S1, 60, "Minimum", unit="Count"),
    stat("samples", "capstan/b", "Depth", [], 600, "SampleCount"),
    stat("absent", "capstan/a", "Nothing", S0, 60, "Sum"),
    {"Id": "math", "Expression": "plain", "Label": "plain again"},
    {"Id": "math_sum", "Expression": "sum"},
    {"Id": "insights", "Expression": "SELECT SUM(Depth) FROM capstan", "Period": 300},
]


def metric_story(start):
    """Put seeded random datapoints in the half hour from `start`, and tell what GetMetricData
    answers to QUERIES over them, from two start times in both orders, and to an empty range."""
    client = boto3.client("cloudwatch", region_name=REGION)
    rng = random.Random(7)
    for namespace in ["capstan/a", "capstan/b"]:
        data = []
        for name in ["Depth", "Latency"]:
            for dimensions in [[], S0, S1, ZONED]:
                for _ in range(15):
                    datum = {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": start + timedelta(seconds=rng.randrange(1800)),
                    }
                    if dimensions is S1 and rng.random() < 0.5:
                        datum["Unit"] = "Count"
                    if dimensions is ZONED:
                        low, high = sorted(rng.uniform(0, 100) for _ in range(2))
                        count = rng.randrange(1, 10)
                        datum["StatisticValues"] = {
                            "SampleCount": count,
                            "Sum": (low + high) / 2 * count,
                            "Minimum": low,
                            "Maximum": high,
                        }
                    else:
                        datum["Value"] = rng.uniform(0, 100)
                    data.append(datum)
        client.put_metric_data(Namespace=namespace, MetricData=data)

    end = start + timedelta(seconds=1800)
    story = [
        answer(
            client.get_metric_data,
            MetricDataQueries=QUERIES,
            StartTime=start + offset,
            EndTime=end,
            ScanBy=scan_by,
        )
        for offset in [timedelta(0), timedelta(seconds=7)]
        for scan_by in ["TimestampAscending", "TimestampDescending"]
    ]
    return story + [
        answer(client.get_metric_data, MetricDataQueries=QUERIES, StartTime=end, EndTime=end)
    ]


class GetMetricDataTest(unittest.TestCase):
    def test_answers_as_moto(self):
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
        with moto(fast=False):
            expected = metric_story(start)
        with moto(fast=True):
            story = metric_story(start)
        self.assertEqual(story, expected)
        # Many chunks of a few periods each join into the same answers.
        chunk = fast_moto.PERIODS_PER_CHUNK
        fast_moto.PERIODS_PER_CHUNK = 7
        try:
            with moto(fast=True):
                self.assertEqual(metric_story(start), expected)
        finally:
            fast_moto.PERIODS_PER_CHUNK = chunk

        results = {result["Id"]: result for result in story[0]["MetricDataResults"]}
        self.assertEqual(
            list(results),
            ["sum", "zoned", "reversed", "counted", "counted_unit", "samples", "absent", "math",
             "math_sum", "insights"],
        )
        for query_id in ["sum", "zoned", "counted", "counted_unit", "samples", "math", "insights"]:
            self.assertTrue(results[query_id]["Values"], query_id)
        self.assertEqual(results["reversed"]["Values"], [])
        self.assertEqual(results["absent"]["Values"], [])
        self.assertEqual(story[-1][0]["Code"], "ValidationError")


class MetricMathTest(unittest.TestCase):
    """The extension: capstan's subset of metric math, as CloudWatch's "Using metric math" page
    describes it, over the answers of the call's other queries."""

    def answers(self, queries, points):
        """{Id: [(minute, value)]} that GetMetricData returns for `queries`, over `points`
        ({metric name: [(minute, value)]}, namespace capstan/m, one-minute Sums)."""
        start = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
        with moto(fast=True):
            client = boto3.client("cloudwatch", region_name=REGION)
            for name, series in points.items():
                client.put_metric_data(
                    Namespace="capstan/m",
                    MetricData=[
                        {"MetricName": name, "Timestamp": start + timedelta(minutes=m), "Value": v}
                        for m, v in series
                    ],
                )
            answer = client.get_metric_data(
                MetricDataQueries=queries,
                StartTime=start,
                EndTime=start + timedelta(minutes=10),
                ScanBy="TimestampAscending",
            )
        return {
            result["Id"]: [
                (int((time - start).total_seconds() // 60), value)
                for time, value in zip(result["Timestamps"], result["Values"])
            ]
            for result in answer["MetricDataResults"]
        }

    def members(self):
        return [
            stat("a", "capstan/m", "A", [], 60, "Sum", ReturnData=False),
            stat("b", "capstan/m", "B", [], 60, "Sum", ReturnData=False),
        ]

    POINTS = {"A": [(0, 1.0), (1, 5.0), (3, 4.0)], "B": [(0, 4.0), (2, 2.0), (3, 0.0)]}

    def test_between_two_series_only_timestamps_both_have_and_no_division_by_zero(self):
        answers = self.answers(
            [*self.members(), {"Id": "e", "Expression": "100 * a / b"}], self.POINTS
        )
        self.assertEqual(answers, {"e": [(0, 25.0)]}, "members with ReturnData false not returned")

    def test_a_number_applies_at_every_timestamp_and_precedence_holds(self):
        answers = self.answers(
            [*self.members(), {"Id": "e", "Expression": "-(1 - a / 4) * 2 + ABS(-b)"}],
            {"A": [(0, 4.0), (1, 8.0)], "B": [(0, 1.0), (1, 3.0)]},
        )
        self.assertEqual(answers["e"], [(0, 1.0), (1, 5.0)])

    def test_array_functions_take_the_elements_present_at_each_timestamp(self):
        queries = [
            *self.members(),
            {"Id": "most", "Expression": "MAX([a, b])"},
            {"Id": "least", "Expression": "MIN([a, b, 3])"},
            {"Id": "total", "Expression": "SUM([a, b])"},
            {"Id": "mean", "Expression": "AVG([a, b])"},
        ]
        answers = self.answers(queries, self.POINTS)
        self.assertEqual(answers["most"], [(0, 4.0), (1, 5.0), (2, 2.0), (3, 4.0)])
        self.assertEqual(answers["least"], [(0, 1.0), (1, 3.0), (2, 2.0), (3, 0.0)])
        self.assertEqual(answers["total"], [(0, 5.0), (1, 5.0), (2, 2.0), (3, 4.0)])
        self.assertEqual(answers["mean"], [(0, 2.5), (1, 5.0), (2, 2.0), (3, 2.0)])

    def test_an_expression_may_name_another_written_before_or_after_it(self):
        queries = [
            *self.members(),
            {"Id": "outer", "Expression": "inner * 2"},
            {"Id": "inner", "Expression": "(a + b)", "ReturnData": False},
        ]
        self.assertEqual(self.answers(queries, self.POINTS), {"outer": [(0, 10.0), (3, 8.0)]})

    def test_outside_the_subset_or_naming_no_query_there_are_no_values(self):
        queries = [
            *self.members(),
            {"Id": "rate", "Expression": "RATE(a)"},
            {"Id": "unknown", "Expression": "a + nothing"},
            {"Id": "number", "Expression": "1 + 2"},
        ]
        answers = self.answers(queries, self.POINTS)
        self.assertEqual(answers, {"rate": [], "unknown": [], "number": []})


class ShapeTest(unittest.TestCase):
    def test_a_changed_moto_method_is_refused(self):
        with self.assertRaisesRegex(RuntimeError, "changed DynamoDBBackend.transact_write_items"):
            fast_moto.checked(fast_moto.MOTO_TRANSACT_WRITE_ITEMS, "0" * 64)


if __name__ == "__main__":
    unittest.main()
