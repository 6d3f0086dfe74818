#!/usr/bin/python3
"""A stub HTTP backend for the data-path tests: answers every request with
`<name> <method> <path> host=<Host>` (status 200), so a test can tell which backend got it.
GET /__connections answers the number of TCP connections accepted so far (keep-alive checks).
A path containing "/hold-" is answered after 0.5 s: it keeps requests in flight at the same time, so
a test can make nginx use many upstream connections at once.
Usage: stub-server.py PORT NAME   (binds 127.0.0.1 only)"""
import http.server
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _answer(self):
        if self.path == "/__connections":
            with self.server.lock:
                body = f"{self.server.connections}\n".encode()
        else:
            if "/hold-" in self.path:
                time.sleep(0.5)
            body = f"{self.server.stub_name} {self.command} {self.path} host={self.headers.get('Host', '')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.stub_name = sys.argv[2]
server.connections = 0
server.lock = threading.Lock()
server.serve_forever()
