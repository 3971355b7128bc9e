"""Tests of the CloudWatch CBOR bridge against moto, over HTTP on 127.0.0.1.

    .venv/bin/python -m unittest discover -s tests/emulator
"""

import gzip
import itertools
import json
import threading
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timezone

import cbor2
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from bridge import SERVICE, make_app

# Talk to the local server directly, whatever proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COUNTER = itertools.count()


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args):
        """Keep the test output to the test results."""


def unique(prefix):
    return f"{prefix}-{time.time_ns()}-{next(COUNTER)}"


def timestamp(seconds):
    return cbor2.CBORTag(1, seconds)


def utc(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc)


class BridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = make_server(
            "127.0.0.1", 0, make_app(), threaded=True, request_handler=QuietHandler
        )
        cls.base = f"http://127.0.0.1:{cls.server.server_port}"
        cls.thread = threading.Thread(target=cls.server.serve_forever)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.thread.join()
        cls.server.server_close()

    def post(self, path, body, headers):
        """POST and return (status, headers, raw body), for error statuses too."""
        request = urllib.request.Request(self.base + path, data=body, headers=headers, method="POST")
        try:
            with OPENER.open(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers, error.read()

    def call(self, operation, members, compress=False):
        """Call a CloudWatch operation in RPC v2 CBOR, its body gzipped as the SDK does for large
        requests when `compress`; return (status, headers, decoded body)."""
        body = cbor2.dumps(members)
        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        status, headers, body = self.post(f"/service/{SERVICE}/operation/{operation}", body, headers)
        self.assertEqual(headers["Content-Type"], "application/cbor")
        self.assertEqual(headers["smithy-protocol"], "rpc-v2-cbor")
        return status, headers, cbor2.loads(body)

    def test_put_metric_data_then_get_metric_data(self):
        namespace = unique("capstan/bridge")
        start = (int(time.time()) // 60 - 10) * 60
        # 59.75 s is in the first minute only if the fraction survives: rounded it would be 60.
        points = [(start + 59.75, 1.5), (start + 60.25, 2.0), (start + 61.5, 4.0)]
        status, _, _ = self.call(
            "PutMetricData",
            {
                "Namespace": namespace,
                "MetricData": [
                    {"MetricName": "Depth", "Timestamp": timestamp(at), "Value": value}
                    for at, value in points
                ],
            },
        )
        self.assertEqual(status, 200)

        status, _, answer = self.call(
            "GetMetricData",
            {
                "MetricDataQueries": [
                    {
                        "Id": "depth",
                        "MetricStat": {
                            "Metric": {"Namespace": namespace, "MetricName": "Depth"},
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    }
                ],
                "StartTime": timestamp(start),
                "EndTime": timestamp(start + 120),
                "ScanBy": "TimestampAscending",
            },
        )
        self.assertEqual(status, 200)
        [result] = answer["MetricDataResults"]
        self.assertEqual(result["Id"], "depth")
        self.assertEqual(result["Values"], [1.5, 6.0])
        # cbor2 decodes tag 1 into datetime; an untagged number would stay a number.
        self.assertEqual(result["Timestamps"], [utc(start), utc(start + 60)])

    def test_gzipped_request_is_read(self):
        namespace = unique("capstan/bridge-gzip")
        start = (int(time.time()) // 60 - 10) * 60
        data = [{"MetricName": "Depth", "Timestamp": timestamp(start + i), "Value": float(i)} for i in range(50)]
        status, _, _ = self.call("PutMetricData", {"Namespace": namespace, "MetricData": data}, compress=True)
        self.assertEqual(status, 200)
        status, _, answer = self.call(
            "GetMetricData",
            {
                "MetricDataQueries": [
                    {
                        "Id": "depth",
                        "MetricStat": {
                            "Metric": {"Namespace": namespace, "MetricName": "Depth"},
                            "Period": 60,
                            "Stat": "SampleCount",
                        },
                    }
                ],
                "StartTime": timestamp(start),
                "EndTime": timestamp(start + 60),
            },
        )
        self.assertEqual(status, 200)
        self.assertEqual(answer["MetricDataResults"][0]["Values"], [50.0])

    def test_describe_alarms_after_put_metric_alarm(self):
        name = unique("capstan-bridge-alarm")
        before = time.time()
        status, _, _ = self.call(
            "PutMetricAlarm",
            {
                "AlarmName": name,
                "Namespace": "capstan/bridge",
                "MetricName": "Depth",
                "Statistic": "Average",
                "Period": 60,
                "EvaluationPeriods": 2,
                "Threshold": 5,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        )
        self.assertEqual(status, 200)

        status, _, answer = self.call("DescribeAlarms", {"AlarmNames": [name]})
        self.assertEqual(status, 200)
        [alarm] = answer["MetricAlarms"]
        self.assertEqual(alarm["AlarmName"], name)
        self.assertEqual(alarm["EvaluationPeriods"], 2)
        # Threshold is a double: the Rust decoder accepts only a CBOR float for it, not an int.
        self.assertIsInstance(alarm["Threshold"], float)
        self.assertEqual(alarm["Threshold"], 5.0)
        updated = alarm["StateUpdatedTimestamp"]
        self.assertIsInstance(updated, datetime)
        self.assertLessEqual(before - 1, updated.timestamp())
        self.assertLessEqual(updated.timestamp(), time.time() + 1)

    def test_error_keeps_type_and_status(self):
        now = int(time.time())
        status, headers, answer = self.call(
            "GetMetricData",
            {
                "MetricDataQueries": [],
                "StartTime": timestamp(now),
                "EndTime": timestamp(now - 600),
            },
        )
        self.assertEqual(status, 400)
        self.assertEqual(answer["__type"], f"{SERVICE}#ValidationException")
        self.assertIn("EndTime must be greater than StartTime", answer["message"])
        # The Rust SDK takes the query-compatible error code from this header.
        self.assertEqual(headers["x-amzn-query-error"], "ValidationError;Sender")

    def test_unknown_operation(self):
        status, _, answer = self.call("NoSuchOperation", {})
        self.assertEqual(status, 404)
        self.assertEqual(answer["__type"], "UnknownOperationException")

    def test_json_requests_pass_through(self):
        namespace = unique("capstan/json")
        json_headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"{SERVICE}.PutMetricData",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/"
            "monitoring/aws4_request, SignedHeaders=host, Signature=test",
        }
        body = {"Namespace": namespace, "MetricData": [{"MetricName": "Depth", "Value": 1.0}]}
        status, _, _ = self.post("/", json.dumps(body).encode(), json_headers)
        self.assertEqual(status, 200)

        status, _, answer = self.call("ListMetrics", {"Namespace": namespace})
        self.assertEqual(status, 200)
        self.assertEqual(
            answer["Metrics"], [{"Namespace": namespace, "MetricName": "Depth", "Dimensions": []}]
        )


if __name__ == "__main__":
    unittest.main()
