#!/usr/bin/python3
"""faultproxy.py - an HTTP proxy in front of Azurite for the Azure store tests: forwards every
request unchanged (Azurite itself verifies Shared Key and SAS) and injects the faults a test asks
for on its control path, then logs each request's method, path and status without the query
(SAS tokens live there).
  usage: faultproxy.py PORT UPSTREAM_PORT
  control: POST /__fault?match=SUBSTRING&status=500&count=N   answer N matching requests with
           status (the request body is read and dropped); status=drop closes the connection
           after reading half the body; status=cut forwards the request and closes the
           connection after half the answer's body; GET /__log returns the log; POST /__reset
           clears."""
import http.client
import http.server
import sys
import threading
import urllib.parse

PORT, UP = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
faults = []  # [match, status, count]
log = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _control(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        body = b""
        with lock:
            if u.path == "/__fault":
                faults.append([q["match"], q["status"], int(q.get("count", "1"))])
            elif u.path == "/__reset":
                faults.clear()
                log.clear()
            elif u.path == "/__log":
                body = ("\n".join(log) + "\n").encode()
        self._body()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fault(self):
        with lock:
            for f in faults:
                if f[2] > 0 and f[0] in self.command + " " + self.path:
                    f[2] -= 1
                    return f[1]
        return None

    def _any(self):
        if self.path.startswith("/__"):
            return self._control()
        path = urllib.parse.urlsplit(self.path).path
        fault = self._fault()
        if fault == "drop":
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n // 2)
            with lock:
                log.append("%s %s dropped" % (self.command, path))
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self._body()
        if fault is not None and fault != "cut":
            with lock:
                log.append("%s %s %s injected" % (self.command, path, fault))
            msg = b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code></Error>"
            self.send_response(int(fault))
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        conn = http.client.HTTPConnection("127.0.0.1", UP, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        with lock:
            log.append("%s %s %d" % (self.command, path, r.status))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Content-Length", r.getheader("Content-Length") or "0")
        self.end_headers()
        if fault == "cut":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            with lock:
                log[-1] += " cut"
            self.close_connection = True
            self.connection.shutdown(2)
        elif self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
