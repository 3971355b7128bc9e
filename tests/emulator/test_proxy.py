"""The fault-injecting proxy in front of a stub upstream: counting, latency, faults, in flight.

    .venv/bin/python -m unittest discover -s tests/emulator -p test_proxy.py
"""

import json
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cbor2

import proxy

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
JSON = "application/x-amz-json-1.0"
FORM = "application/x-www-form-urlencoded"


class Stub(ThreadingHTTPServer):
    """An upstream that records every request it receives and answers 200 `{"ok": true}`. While
    `barrier` is set, each request waits on it before answering."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.received = []
        self.lock = threading.Lock()
        self.barrier = None


class StubHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        """Keep the test output to the test results."""

    def do_GET(self):
        self.record(b"")

    def do_POST(self):
        self.record(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def record(self, body):
        with self.server.lock:
            self.server.received.append((self.path, self.headers.get("X-Amz-Target"), body))
        if self.server.barrier is not None:
            self.server.barrier.wait(timeout=30)
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def serve(server):
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    return thread


class ProxyTest(unittest.TestCase):
    def setUp(self):
        self.stub = Stub()
        self.stub_thread = serve(self.stub)
        self.proxy = proxy.make_server(f"http://127.0.0.1:{self.stub.server_port}")
        self.proxy_thread = serve(self.proxy)
        self.base = f"http://127.0.0.1:{self.proxy.server_port}"

    def tearDown(self):
        for server, thread in [(self.proxy, self.proxy_thread), (self.stub, self.stub_thread)]:
            server.shutdown()
            thread.join()
            server.server_close()

    def request(self, path, body=None, headers=None, method="POST"):
        """Sends a request through the proxy; answers (status, headers, body)."""
        request = urllib.request.Request(
            self.base + path, data=body, headers=headers or {}, method=method
        )
        try:
            with OPENER.open(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers, error.read()

    def dynamodb(self, operation="GetItem"):
        return self.request(
            "/",
            b"{}",
            {"Content-Type": JSON, "X-Amz-Target": f"DynamoDB_20120810.{operation}"},
        )

    def autoscaling(self):
        return self.request(
            "/",
            b"Action=DescribeAutoScalingGroups&Version=2011-01-01",
            {"Content-Type": FORM},
        )

    def cloudwatch(self):
        return self.request(
            "/service/GraniteServiceVersion20100801/operation/GetMetricData",
            cbor2.dumps({}),
            {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
        )

    def configure(self, **settings):
        status, _, _ = self.request("/__proxy/config", json.dumps(settings).encode())
        self.assertEqual(status, 200)

    def stats(self):
        status, _, body = self.request("/__proxy/stats", method="GET")
        self.assertEqual(status, 200)
        return json.loads(body)

    def test_calls_are_counted_by_operation_in_every_protocol(self):
        self.dynamodb("GetItem")
        self.dynamodb("GetItem")
        self.dynamodb("BatchGetItem")
        self.request(
            "/",
            b"{}",
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeServices",
            },
        )
        self.autoscaling()
        self.request("/?Action=DescribeDBInstances&Version=2014-10-31", method="GET")
        self.cloudwatch()
        # The emulator's own endpoints pass through, uncounted.
        status, _, _ = self.request("/moto-api/reset", b"")
        self.assertEqual(status, 200)

        self.assertEqual(
            self.stats()["calls"],
            {
                "GetItem": 2,
                "BatchGetItem": 1,
                "DescribeServices": 1,
                "DescribeAutoScalingGroups": 1,
                "DescribeDBInstances": 1,
                "GetMetricData": 1,
            },
        )
        self.assertEqual(len(self.stub.received), 8, "every request reached the upstream")
        self.assertIn("/moto-api/reset", [path for path, _, _ in self.stub.received])

        self.request("/__proxy/reset", b"")
        self.assertEqual(self.stats()["calls"], {})

    def test_each_call_is_held_for_the_latency(self):
        self.configure(latency_ms=300)
        started = time.monotonic()
        status, _, body = self.dynamodb()
        elapsed = time.monotonic() - started
        self.assertEqual((status, body), (200, b'{"ok": true}'))
        self.assertGreaterEqual(elapsed, 0.3)
        # The emulator's own endpoints are not held.
        started = time.monotonic()
        self.request("/moto-api/reset", b"")
        self.assertLess(time.monotonic() - started, 0.3)

    def test_a_fault_before_never_reaches_the_upstream_and_has_the_protocols_error_shape(self):
        self.configure(fail_before=1.0)
        status, headers, body = self.dynamodb()
        self.assertEqual(status, 503)
        self.assertEqual(headers["Content-Type"], JSON)
        self.assertEqual(json.loads(body)["__type"], "ServiceUnavailable")

        status, headers, body = self.autoscaling()
        self.assertEqual(status, 503)
        self.assertIn(b"<Code>ServiceUnavailable</Code>", body)

        status, headers, body = self.cloudwatch()
        self.assertEqual(status, 503)
        self.assertEqual(headers["smithy-protocol"], "rpc-v2-cbor")
        self.assertEqual(cbor2.loads(body)["__type"], "ServiceUnavailable")

        self.assertEqual(self.stub.received, [])
        stats = self.stats()
        self.assertEqual(
            stats["failed_before"],
            {"GetItem": 1, "DescribeAutoScalingGroups": 1, "GetMetricData": 1},
        )
        self.assertEqual(stats["failed_after"], {})
        self.assertEqual(
            stats["upstream_s"],
            {"GetItem": 0.0, "DescribeAutoScalingGroups": 0.0, "GetMetricData": 0.0},
        )

    def test_a_fault_after_reaches_the_upstream_but_its_answer_is_lost(self):
        self.configure(fail_after=1.0)
        status, _, body = self.dynamodb("PutItem")
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["__type"], "ServiceUnavailable")
        self.assertEqual(
            [target for _, target, _ in self.stub.received], ["DynamoDB_20120810.PutItem"]
        )
        stats = self.stats()
        self.assertEqual(stats["failed_after"], {"PutItem": 1})
        self.assertGreater(stats["upstream_s"]["PutItem"], 0.0)

    def fault_pattern(self, seed):
        """Which of 60 calls fail, after seeding."""
        self.configure(fail_before=0.3, fail_after=0.2, seed=seed)
        return [self.dynamodb()[0] for _ in range(60)]

    def test_the_seed_makes_the_faults_repeatable(self):
        first = self.fault_pattern(7)
        self.assertEqual(self.fault_pattern(7), first)
        self.assertIn(200, first)
        self.assertIn(503, first)
        self.assertNotEqual(self.fault_pattern(8), first)

    def test_the_most_calls_in_flight_at_once_are_measured(self):
        parallel = 6
        self.stub.barrier = threading.Barrier(parallel)
        answers = []
        threads = [
            threading.Thread(target=lambda: answers.append(self.dynamodb()[0]))
            for _ in range(parallel)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # The stub answers none until all of them are in it, so all were in flight at once.
        self.assertEqual(answers, [200] * parallel)
        self.assertEqual(self.stats()["max_in_flight"], parallel)
        self.stub.barrier = None
        self.request("/__proxy/reset", b"")
        self.dynamodb()
        self.dynamodb()
        self.assertEqual(self.stats()["max_in_flight"], 1, "calls one after another")


    def hold(self, **settings):
        status, _, _ = self.request("/__proxy/hold", json.dumps(settings).encode())
        self.assertEqual(status, 200)

    def held(self, count):
        """The operations held, once `count` are."""
        for _ in range(20):
            status, _, body = self.request("/__proxy/held?wait=5", method="GET")
            self.assertEqual(status, 200)
            held = json.loads(body)["held"]
            if len(held) >= count:
                return held
        self.fail(f"{count} calls were never held at once")

    def release(self, forward):
        status, _, body = self.request(
            "/__proxy/release", json.dumps({"forward": forward}).encode()
        )
        self.assertEqual(status, 200)
        return json.loads(body)["released"]

    def in_background(self, call):
        """Starts `call` in a thread; answers the thread and the list its status will go to."""
        answers = []
        thread = threading.Thread(target=lambda: answers.append(call()[0]))
        thread.start()
        return thread, answers

    def received(self):
        return [target for _, target, _ in self.stub.received]

    def test_a_hold_from_the_nth_call_keeps_it_and_every_later_one_until_released_forwarded(self):
        self.hold(hold_from=2)
        self.assertEqual(self.dynamodb("GetItem")[0], 200, "the first call passes")
        second, second_answer = self.in_background(lambda: self.dynamodb("PutItem"))
        self.assertEqual(self.held(1), ["PutItem"])
        third, third_answer = self.in_background(lambda: self.dynamodb("DeleteItem"))
        self.assertEqual(self.held(2), ["PutItem", "DeleteItem"])
        self.assertEqual(self.received(), ["DynamoDB_20120810.GetItem"], "held calls wait")

        self.assertEqual(self.release(forward=True), 2)
        # Released calls have taken effect by the time the release is answered.
        self.assertEqual(
            sorted(self.received()),
            sorted(
                [
                    "DynamoDB_20120810.GetItem",
                    "DynamoDB_20120810.PutItem",
                    "DynamoDB_20120810.DeleteItem",
                ]
            ),
        )
        second.join()
        third.join()
        self.assertEqual(second_answer + third_answer, [200, 200])
        self.assertEqual(self.dynamodb("GetItem")[0], 200, "the hold is lifted")
        stats = self.stats()
        self.assertEqual(stats["forwarded"], {"GetItem": 2, "PutItem": 1, "DeleteItem": 1})

    def test_an_operation_retried_by_the_sdk_is_one_invocation(self):
        def call(invocation, attempt):
            return self.request(
                "/",
                b"{}",
                {
                    "Content-Type": JSON,
                    "X-Amz-Target": "DynamoDB_20120810.PutItem",
                    "amz-sdk-invocation-id": invocation,
                    "amz-sdk-request": f"attempt={attempt}; max=3",
                },
            )

        call("first", 1)
        call("first", 2)
        call("second", 1)
        stats = self.stats()
        self.assertEqual(stats["forwarded"], {"PutItem": 3})
        self.assertEqual(stats["invocations"], {"PutItem": 2})

    def test_held_calls_dropped_never_reach_the_upstream(self):
        self.hold(hold_operation="PutItem")
        self.assertEqual(self.dynamodb("GetItem")[0], 200)
        held, answer = self.in_background(lambda: self.dynamodb("PutItem"))
        self.assertEqual(self.held(1), ["PutItem"])

        self.assertEqual(self.release(forward=False), 1)
        held.join()
        self.assertEqual(answer, [503])
        self.assertEqual(self.received(), ["DynamoDB_20120810.GetItem"])
        self.assertEqual(self.stats()["forwarded"], {"GetItem": 1})
        self.assertEqual(self.stats()["calls"], {"GetItem": 1, "PutItem": 1})
        self.assertEqual(self.release(forward=True), 0, "nothing left to release")
        self.assertEqual(self.dynamodb("PutItem")[0], 200, "the hold is lifted")


if __name__ == "__main__":
    unittest.main()
