"""Time moto's TransactWriteItems and GetMetricData against fast_moto.py's, through boto3.

    .venv/bin/python tests/emulator/measure_fast_moto.py

A 100-action TransactWriteItems on a 3,000-item table (one that succeeds, one cancelled by its last
action's condition), and a 500-query GetMetricData over 1,000 metrics of 15 datapoints each.
"""

import time
from datetime import datetime, timedelta, timezone

import boto3

from test_fast_moto import REGION, answer, moto, n, s, update

ITEMS = 3000
ACTIONS = 100
METRICS = 1000
DATAPOINTS = 15
QUERIES = 500


def timed(call, **members):
    begin = time.perf_counter()
    result = answer(call, **members)
    return time.perf_counter() - begin, result


def transactions():
    """Seconds taken by the two transactions, and what they answered."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="big",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with boto3.resource("dynamodb", region_name=REGION).Table("big").batch_writer() as batch:
        for i in range(ITEMS):
            batch.put_item(Item={"pk": f"item-{i}", "n": i, "state": "x" * 200})
    actions = [
        update("big", {"pk": s(f"item-{i}")}, "SET n = n + :one", {":one": n(1)})
        for i in range(ACTIONS)
    ]
    cancelled = actions[:-1] + [
        update(
            "big",
            {"pk": s(f"item-{ACTIONS - 1}")},
            "SET n = :never",
            {":never": n(-1)},
            ConditionExpression="n = :never",
        )
    ]
    return [
        timed(client.transact_write_items, TransactItems=items) for items in [actions, cancelled]
    ]


def metric_data(end):
    """Seconds taken by the GetMetricData call up to `end`, and what it answered."""
    client = boto3.client("cloudwatch", region_name=REGION)
    start = end - timedelta(minutes=DATAPOINTS)
    data = [
        {
            "MetricName": "QueueDepth",
            "Dimensions": [{"Name": "Service", "Value": f"service-{metric}"}],
            "Timestamp": start + timedelta(minutes=minute),
            "Value": float(metric + minute),
        }
        for metric in range(METRICS)
        for minute in range(DATAPOINTS)
    ]
    for chunk in range(0, len(data), 1000):
        client.put_metric_data(Namespace="capstan", MetricData=data[chunk : chunk + 1000])
    queries = [
        {
            "Id": f"q{metric}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "capstan",
                    "MetricName": "QueueDepth",
                    "Dimensions": [{"Name": "Service", "Value": f"service-{metric}"}],
                },
                "Period": 60,
                "Stat": "Average",
            },
        }
        for metric in range(QUERIES)
    ]
    return timed(client.get_metric_data, MetricDataQueries=queries, StartTime=start, EndTime=end)


def main():
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    answers = {}
    for fast in [False, True]:
        with moto(fast):
            (succeeded, ok), (cancelled, refused) = transactions()
        with moto(fast):
            queried, results = metric_data(end)
        answers[fast] = ok, refused, results
        print(
            f"{'fast_moto' if fast else 'moto':>9}: TransactWriteItems {succeeded:.3f} s, "
            f"cancelled {cancelled:.3f} s; GetMetricData {queried:.3f} s"
        )
    print(f"same answers: {answers[False] == answers[True]}")


if __name__ == "__main__":
    main()
