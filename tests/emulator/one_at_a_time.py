"""DynamoDB requests handled one at a time.

DynamoDB applies each write, and the condition on it, atomically: of two conditional writes racing
for one item, one succeeds and the other is refused. moto's threaded server does not: it checks a
condition and writes without a lock, so two racing writes can both succeed. capstan's leases and
claims rest on that atomicity, so this WSGI middleware serialises DynamoDB requests (recognised by
their `X-Amz-Target`). Every other request passes through untouched, at once.
"""

import threading


class DynamoDbOneAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # The whole answer is made inside the lock: moto may produce it lazily.
            return list(self.app(environ, start_response))
