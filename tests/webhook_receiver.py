"""A local HTTP receiver for webhook tests: it records each delivery and checks its signature."""

import json
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

from webapp.webhooks import verify


class Handler(BaseHTTPRequestHandler):
    """Records a POST, optionally holds it (to let a test kill the sender), answers the next status."""

    def do_POST(self):  # noqa: N802 (the http.server spelling)
        """Record the delivery, then answer."""
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        delivery = {
            "event": self.headers.get("X-Greenbar-Event"),
            "delivery": self.headers.get("X-Greenbar-Delivery"),
            "signed": verify(receiver.secret, body, self.headers.get("X-Greenbar-Signature")),
            "body": json.loads(body),
            "path": self.path,
        }
        with receiver.lock:
            receiver.received.append(delivery)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            hold = receiver.hold_next
            receiver.hold_next = False
        if hold:
            receiver.holding.set()
            receiver.release.wait(30)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with receiver.lock:
            receiver.answered.append(delivery["delivery"])

    def log_message(self, *args):
        """Keep the test output quiet."""


class Receiver:
    """A webhook receiver on 127.0.0.1; ``url`` is where to send, ``received`` what came."""

    def __init__(self, secret):
        self.secret = secret
        self.received = []
        self.answered = []
        self.statuses = []
        self.hold_next = False
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.receiver = self
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/greenbar"
        # shutdown() waits for the loop's next poll: 0.05 s, not the default 0.5 s, after every test
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
