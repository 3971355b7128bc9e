"""Racing conditional writes to DynamoDB through the emulator: exactly one wins, as in DynamoDB.

    .venv/bin/python -m unittest discover -s tests/emulator
"""

import json
import sys
import threading
import unittest
import urllib.error
import urllib.request

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from bridge import make_app

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# moto picks the backend from the SigV4 credential scope.
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=unsigned"
)
RACERS = 16
ROUNDS = 20


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args):
        """Keep the test output to the test results."""


class OneAtATimeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Threads switch as often as Python lets them, so that a write that checks its condition
        # and writes without a lock is caught between the two.
        cls.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
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
        sys.setswitchinterval(cls.switch_interval)

    def call(self, operation, members):
        """Call a DynamoDB operation; return its HTTP status and decoded answer."""
        request = urllib.request.Request(
            self.base + "/",
            data=json.dumps(members).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"DynamoDB_20120810.{operation}",
                "Authorization": AUTHORIZATION,
            },
            method="POST",
        )
        try:
            with OPENER.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def test_of_racing_conditional_puts_exactly_one_succeeds(self):
        status, _ = self.call(
            "CreateTable",
            {
                "TableName": "races",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        )
        self.assertEqual(status, 200)
        for round_ in range(ROUNDS):
            start = threading.Barrier(RACERS)
            answers = []

            def race(racer, round_=round_, start=start):
                start.wait()
                answers.append(
                    self.call(
                        "PutItem",
                        {
                            "TableName": "races",
                            "Item": {
                                "pk": {"S": f"lease-{round_}"},
                                "holder": {"S": str(racer)},
                                "expires_at": {"N": "2000000000"},
                            },
                            # capstan's lease condition: free, expired, or the taker's own.
                            "ConditionExpression": (
                                "attribute_not_exists(pk) OR expires_at <= :now OR holder = :holder"
                            ),
                            "ExpressionAttributeValues": {
                                ":now": {"N": "1000000000"},
                                ":holder": {"S": str(racer)},
                            },
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        },
                    )
                )

            racers = [threading.Thread(target=race, args=(racer,)) for racer in range(RACERS)]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join()
            statuses = sorted(status for status, _ in answers)
            self.assertEqual(statuses, [200] + [400] * (RACERS - 1), f"round {round_}")
            refusals = {answer["__type"].split("#")[-1] for status, answer in answers if status == 400}
            self.assertEqual(refusals, {"ConditionalCheckFailedException"})


if __name__ == "__main__":
    unittest.main()
