"""Smithy RPC v2 CBOR front for moto's CloudWatch.

The Rust CloudWatch client speaks only RPC v2 CBOR; moto's CloudWatch speaks AWS JSON 1.0. This WSGI
middleware rewrites each CBOR request into the equivalent JSON request, lets moto's own app answer it,
and turns the JSON answer back into CBOR. Every other request passes through untouched.
"""

import gzip
import io
import json
import re
from datetime import datetime

import botocore.session
import cbor2
from botocore.model import OperationNotFoundError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

import fast_moto
from one_at_a_time import DynamoDbOneAtATime

SERVICE = "GraniteServiceVersion20100801"
CBOR_PATH = re.compile(rf"/service/{SERVICE}/operation/(\w+)")
CBOR_HEADERS = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
# moto picks the backend from the SigV4 credential scope; CloudWatch signs as "monitoring".
UNSIGNED_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/monitoring/aws4_request, "
    "SignedHeaders=host, Signature=unsigned"
)


def to_json_value(value):
    """CBOR-decoded input as JSON 1.0 wants it: timestamps (tag 1) become epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {key: to_json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json_value(item) for item in value]
    return value


def to_cbor_value(value, shape):
    """JSON output as CBOR wants it: members the botocore shape calls timestamps (epoch seconds in
    JSON) become tag 1."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "timestamp":
        return cbor2.CBORTag(1, value)
    if kind == "structure":
        return {
            key: to_cbor_value(item, shape.members[key]) if key in shape.members else item
            for key, item in value.items()
        }
    if kind == "list":
        return [to_cbor_value(item, shape.member) for item in value]
    if kind == "map":
        return {key: to_cbor_value(item, shape.value) for key, item in value.items()}
    return value


class CborBridge:
    """WSGI middleware translating RPC v2 CBOR CloudWatch calls for the wrapped moto app."""

    def __init__(self, app):
        self.app = app
        self.model = botocore.session.get_session().get_service_model("cloudwatch")

    def __call__(self, environ, start_response):
        match = CBOR_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if (
            environ["REQUEST_METHOD"] != "POST"
            or match is None
            or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor"
        ):
            return self.app(environ, start_response)

        operation = match.group(1)
        try:
            output_shape = self.model.operation_model(operation).output_shape
        except OperationNotFoundError:
            return respond(
                start_response,
                "404 Not Found",
                [],
                {"__type": "UnknownOperationException", "message": f"unknown operation {operation}"},
            )

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length)
        # The SDK gzips request bodies over 10 KiB (PutMetricData) and says so in Content-Encoding.
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        body = json.dumps(to_json_value(cbor2.loads(raw) if raw else {})).encode()
        environ = dict(environ)
        environ.update(
            {
                "PATH_INFO": "/",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"{SERVICE}.{operation}",
                "wsgi.input": io.BytesIO(body),
            }
        )
        environ.pop("HTTP_CONTENT_ENCODING", None)
        environ.setdefault("HTTP_AUTHORIZATION", UNSIGNED_AUTHORIZATION)

        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers

        chunks = self.app(environ, capture)
        try:
            raw_answer = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

        status = answer["status"]
        headers = [
            (name, value)
            for name, value in answer["headers"]
            if name.lower() not in ("content-type", "content-length")
        ]
        value = json.loads(raw_answer) if raw_answer else None
        if value is not None and status.startswith("2") and output_shape is not None:
            value = to_cbor_value(value, output_shape)
        return respond(start_response, status, headers, value)


def respond(start_response, status, headers, value):
    """Send `value` as a CBOR body (no body for None) with the RPC v2 CBOR headers."""
    payload = b"" if value is None else cbor2.dumps(value)
    start_response(status, headers + CBOR_HEADERS + [("Content-Length", str(len(payload)))])
    return [payload]


def make_app():
    """moto's server app with the CBOR bridge in front of it, its DynamoDB requests handled one at
    a time (see one_at_a_time.py), and fast_moto.py's faster TransactWriteItems and GetMetricData."""
    fast_moto.install()
    return DynamoDbOneAtATime(CborBridge(DomainDispatcherApplication(create_backend_app)))
