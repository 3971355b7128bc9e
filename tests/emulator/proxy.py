"""An HTTP proxy in front of the emulator that counts AWS calls, adds latency and injects faults.

    python tests/emulator/proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--port-file PATH]

Each AWS request is named by its operation: the `X-Amz-Target` header for the JSON protocols
(`DynamoDB_20120810.GetItem`, `AmazonEC2ContainerServiceV20141113.DescribeServices`), the path for
Smithy RPC v2 CBOR (`/service/GraniteServiceVersion20100801/operation/GetMetricData`), the `Action`
form field for the query protocols (Auto Scaling, RDS). The proxy counts the requests per operation
and the most in flight at once, holds each one for the configured latency, and then, by a seeded
random draw per request, either

- answers 503 `ServiceUnavailable` in the protocol's own error shape without forwarding it
  (`fail_before`: the call never took effect, and the SDK retries it),
- forwards it and answers 503 instead of the emulator's answer (`fail_after`: the call took
  effect, its answer was lost), or
- forwards it and relays the answer.

It also sums the time the emulator took over the requests it forwarded, per operation, so that a
benchmark can tell the emulator's share of a run from its own.

A hold stops a caller between two AWS calls, for a test that kills it there: once set, the
`hold_from`-th call counted (from 1, since the last reset), or the first call of the operation
`hold_operation`, and every call after it, are held before they reach the emulator, until released.
Released calls are forwarded, so that they take effect (a caller killed meanwhile never reads the
answer), or dropped (answered 503 without forwarding, as if they never left the caller). The emulator's own endpoints
(`/moto-api/`) and requests that name no operation pass through untouched: not counted, delayed or
failed.

Control, never forwarded:

- `GET /__proxy/stats`: `{"calls": {op: n}, "forwarded": {op: n}, "invocations": {op: n},
  "failed_before": {op: n}, "failed_after": {op: n}, "max_in_flight": n, "upstream_s": {op: seconds},
  "config": {...}}` (`forwarded`: the calls that reached the emulator; `invocations`: how many
  operation invocations they were, each with the SDK's retries of it counted once, by their
  `amz-sdk-invocation-id` header).
- `POST /__proxy/config` with any of `{"latency_ms", "fail_before", "fail_after", "seed"}`: a new
  seed restarts the fault sequence.
- `POST /__proxy/reset`: the counters back to zero (the configuration and the fault sequence stay).
- `POST /__proxy/hold` with `{"hold_from": n}` or `{"hold_operation": name}`: sets a hold.
- `GET /__proxy/held?wait=SECONDS`: the operations of the calls held now, in the order they came,
  once there is one or after SECONDS: `{"held": [op, ...]}`.
- `POST /__proxy/release` with `{"forward": true|false}`: lifts the hold and lets every held call
  go, forwarded or dropped; answers once each has, with `{"released": n}`.

Once the socket is listening, the port is written to --port-file (atomically) and printed.
"""

import argparse
import http.client
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTROL = "/__proxy/"
PASSTHROUGH = ("/moto-api/",)
CBOR_PATH = re.compile(r"/service/[^/]+/operation/(\w+)")
# Not relayed: they describe one hop, and the proxy re-frames every body with Content-Length.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}
UNAVAILABLE = "ServiceUnavailable"
MESSAGE = "injected by the test proxy"


def operation(method, path, headers, body):
    """The AWS operation a request calls and its protocol (`json`, `cbor` or `query`), or None."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    match = CBOR_PATH.fullmatch(urllib.parse.urlsplit(path).path)
    if match:
        return match.group(1), "cbor"
    fields = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if method == "POST" and headers.get("Content-Type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        fields.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
    if "Action" in fields:
        return fields["Action"][0], "query"
    return None


def cbor_text(text):
    """`text` as a CBOR text string (major type 3)."""
    data = text.encode()
    size = len(data)
    if size < 24:
        head = bytes([0x60 | size])
    elif size < 256:
        head = bytes([0x78, size])
    else:
        head = bytes([0x79]) + size.to_bytes(2, "big")
    return head + data


def unavailable(protocol):
    """The 503 answer's headers and body in the protocol's error shape, which the SDK reads as a
    transient `ServiceUnavailable` and retries."""
    if protocol == "json":
        body = json.dumps({"__type": UNAVAILABLE, "message": MESSAGE}).encode()
        return [("Content-Type", "application/x-amz-json-1.0")], body
    if protocol == "cbor":
        body = bytes([0xA2]) + cbor_text("__type") + cbor_text(UNAVAILABLE)
        body += cbor_text("message") + cbor_text(MESSAGE)
        return [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], body
    body = (
        "<ErrorResponse><Error><Type>Receiver</Type>"
        f"<Code>{UNAVAILABLE}</Code><Message>{MESSAGE}</Message>"
        f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return [("Content-Type", "text/xml")], body


class Faults:
    """The configuration, the seeded fault sequence and the counters, shared by every request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency_ms = 0.0
        self.fail_before = 0.0
        self.fail_after = 0.0
        self.seed = 0
        self.random = random.Random(0)
        self.reset()

    def reset(self):
        with self.lock:
            self.seen = 0
            self.calls = {}
            self.forwarded = {}
            self.invocations = {}
            self.failed_before = {}
            self.failed_after = {}
            self.in_flight = 0
            self.max_in_flight = 0
            self.upstream_s = {}

    def configure(self, settings):
        with self.lock:
            self.latency_ms = float(settings.get("latency_ms", self.latency_ms))
            self.fail_before = float(settings.get("fail_before", self.fail_before))
            self.fail_after = float(settings.get("fail_after", self.fail_after))
            if "seed" in settings:
                self.seed = int(settings["seed"])
                self.random = random.Random(self.seed)

    def config(self):
        return {
            "latency_ms": self.latency_ms,
            "fail_before": self.fail_before,
            "fail_after": self.fail_after,
            "seed": self.seed,
        }

    def begin(self, name):
        """Counts a call of `name` in flight; answers its number (from 1, since the last reset),
        its latency (seconds) and its fault: "before", "after" or None."""
        with self.lock:
            self.seen += 1
            self.calls[name] = self.calls.get(name, 0) + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            draw = self.random.random()
            if draw < self.fail_before:
                fault = "before"
                self.failed_before[name] = self.failed_before.get(name, 0) + 1
            elif draw < self.fail_before + self.fail_after:
                fault = "after"
                self.failed_after[name] = self.failed_after.get(name, 0) + 1
            else:
                fault = None
            return self.seen, self.latency_ms / 1000, fault

    def end(self, name, upstream_s, forwarded, invocation):
        with self.lock:
            self.in_flight -= 1
            self.upstream_s[name] = self.upstream_s.get(name, 0.0) + upstream_s
            if forwarded:
                self.forwarded[name] = self.forwarded.get(name, 0) + 1
                self.invocations.setdefault(name, set()).add(invocation)

    def stats(self):
        with self.lock:
            return {
                "calls": dict(self.calls),
                "forwarded": dict(self.forwarded),
                "invocations": {name: len(ids) for name, ids in self.invocations.items()},
                "failed_before": dict(self.failed_before),
                "failed_after": dict(self.failed_after),
                "max_in_flight": self.max_in_flight,
                "upstream_s": dict(self.upstream_s),
                "config": self.config(),
            }


class Hold:
    """Calls held between the caller and the emulator (see the module docs), shared by every
    request."""

    def __init__(self):
        self.condition = threading.Condition()
        self.hold_from = None
        self.hold_operation = None
        self.holding = False
        self.held = []
        self.verdict = None

    def set(self, settings):
        with self.condition:
            self.hold_from = settings.get("hold_from")
            self.hold_operation = settings.get("hold_operation")

    def wait(self, name, number):
        """Holds call `number`, of `name`, while a hold applies to it; answers whether it was
        held (then [`Hold.done`] must follow once it has gone) and whether to forward it."""
        with self.condition:
            starts = number == self.hold_from or name == self.hold_operation
            if not (self.holding or starts):
                return False, True
            self.holding = True
            self.held.append(name)
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.verdict is not None)
            return True, self.verdict

    def done(self, name):
        """A released call of `name` has gone: forwarded and answered, or dropped."""
        with self.condition:
            self.held.remove(name)
            if not self.held:
                self.verdict = None
            self.condition.notify_all()

    def held_now(self, wait_s):
        """The operations held now, once there is one or after `wait_s` seconds."""
        with self.condition:
            self.condition.wait_for(lambda: self.held and self.verdict is None, timeout=wait_s)
            return list(self.held) if self.verdict is None else []

    def release(self, forward):
        """Lifts the hold; answers the number of calls it let go, once each has gone (a call
        forwarded has then taken effect)."""
        with self.condition:
            self.hold_from = self.hold_operation = None
            self.holding = False
            released = len(self.held)
            if released:
                self.verdict = forward
                self.condition.notify_all()
                self.condition.wait_for(lambda: not self.held)
            return released


class Upstream:
    """Keep-alive connections to the emulator, one per proxy thread."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.local = threading.local()

    def send(self, method, path, headers, body):
        """Forwards a request; answers (status, headers, body, seconds it took)."""
        started = time.monotonic()
        for attempt in range(2):
            connection = getattr(self.local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
                self.local.connection = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.will_close:
                    connection.close()
                    self.local.connection = None
                return response.status, response.getheaders(), data, time.monotonic() - started
            except (http.client.HTTPException, ConnectionError):
                # A kept-alive connection the emulator closed meanwhile: once more, afresh.
                connection.close()
                self.local.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def make_handler(upstream, faults, hold):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            """One line per request would drown the benchmark's own output."""

        def do_GET(self):
            self.handle_any()

        def do_POST(self):
            self.handle_any()

        def do_PUT(self):
            self.handle_any()

        def do_DELETE(self):
            self.handle_any()

        def do_HEAD(self):
            self.handle_any()

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def answer(self, status, headers, body):
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self):
            body = self.read_body()
            if self.path.startswith(CONTROL):
                return self.control(body)
            headers = {
                name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP
            }
            called = None
            if not self.path.startswith(PASSTHROUGH):
                called = operation(self.command, self.path, self.headers, body)
            if called is None:
                status, answer_headers, data, _ = upstream.send(self.command, self.path, headers, body)
                return self.answer(status, answer_headers, data)
            name, protocol = called
            number, latency_s, fault = faults.begin(name)
            upstream_s = 0.0
            forwarded = False
            held, forward = hold.wait(name, number)
            try:
                if not forward:
                    return self.answer(503, *unavailable(protocol))
                if latency_s:
                    time.sleep(latency_s)
                if fault == "before":
                    return self.answer(503, *unavailable(protocol))
                status, answer_headers, data, upstream_s = upstream.send(
                    self.command, self.path, headers, body
                )
                forwarded = True
                if fault == "after":
                    return self.answer(503, *unavailable(protocol))
                return self.answer(status, answer_headers, data)
            finally:
                faults.end(name, upstream_s, forwarded, self.headers.get("amz-sdk-invocation-id"))
                if held:
                    hold.done(name)

        def control(self, body):
            action = self.path[len(CONTROL) :]
            if self.command == "GET" and action == "stats":
                result = faults.stats()
            elif self.command == "POST" and action == "config":
                faults.configure(json.loads(body or b"{}"))
                result = faults.config()
            elif self.command == "POST" and action == "reset":
                faults.reset()
                result = {}
            elif self.command == "POST" and action == "hold":
                hold.set(json.loads(body or b"{}"))
                result = {}
            elif self.command == "GET" and action.startswith("held"):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(action).query)
                result = {"held": hold.held_now(float(query.get("wait", ["0"])[0]))}
            elif self.command == "POST" and action == "release":
                result = {"released": hold.release(bool(json.loads(body)["forward"]))}
            else:
                return self.answer(404, [("Content-Type", "application/json")], b"{}")
            self.answer(200, [("Content-Type", "application/json")], json.dumps(result).encode())

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # An SDK opens many connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        """A client that gave up on its call (the SDK's attempt timeout) is not the proxy's
        error; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def make_server(upstream_url, port=0):
    """A proxy to `upstream_url` on 127.0.0.1:`port`, not yet serving."""
    handler = make_handler(Upstream(upstream_url), Faults(), Hold())
    server = Server(("127.0.0.1", port), handler)
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the emulator's base URL")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--port-file", help="file to write the chosen port to once listening")
    args = parser.parse_args()

    server = make_server(args.upstream, args.port)
    port = server.server_port
    if args.port_file:
        partial = f"{args.port_file}.partial"
        with open(partial, "w") as file:
            file.write(f"{port}\n")
        os.replace(partial, args.port_file)
    print(f"proxy listening on http://127.0.0.1:{port}, forwarding to {args.upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
