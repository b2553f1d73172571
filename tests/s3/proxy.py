#!/usr/bin/python3
"""proxy.py - a SigV4-verifying front for s3rver in the tests (s3rver stores objects and does
multipart, but does not verify V4 signatures and accepts anonymous writes).

Every request must carry a V4 signature by the one configured key: the proxy recomputes it with
botocore (canonical path and query re-encoded from their decoded form, as S3 does) and refuses a
mismatch with 403 SignatureDoesNotMatch, an unknown key with 403 InvalidAccessKeyId, a wrong
payload hash with 400 XAmzContentSHA256Mismatch and a wrong Content-MD5 with 400 BadDigest; the
rest goes to s3rver without credentials. s3rver lacks AbortMultipartUpload and
ListMultipartUploads, so the proxy keeps the table of open uploads and answers those two itself
(and refuses parts or completion of an unknown upload with 404 NoSuchUpload).

Faults, set by the tests through unsigned requests to /__proxy/...:
  /__proxy/fault?part=N&status=503&count=K   answer K times `status` to UploadPart N (-1: always)
  /__proxy/fault?part=N&drop=1&count=K       read half of part N's body, then drop the connection
  /__proxy/fault?get_drop_after=B&count=K    cut a GET's body after B bytes
  /__proxy/max_keys?n=N                      listings in pages of N (continuation tokens)
  /__proxy/age_uploads?seconds=S             make every open upload S seconds older
  /__proxy/reset                             clear faults (and part_first_at)
  /__proxy/stats                             counters, and part_first_at: when each UploadPart
                                             number first arrived (wall time; JSON)
  /__proxy/creds?access=A&secret=S[&token=T] accept these keys only from now on (a rotated
                                             Secret); with a token, every request must carry it
                                             as x-amz-security-token, signed
usage: proxy.py LISTEN_PORT UPSTREAM_PORT ACCESS_KEY SECRET_KEY REGION [SESSION_TOKEN]
With S3_PROXY_CERT and S3_PROXY_KEY set (PEM files), it listens with TLS.
"""
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
import xml.sax.saxutils

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LISTEN, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
REGION = sys.argv[5]
creds = {"access": sys.argv[3], "secret": sys.argv[4],
         "token": sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else None}

lock = threading.Lock()
uploads = {}  # upload id -> {"bucket", "key", "initiated"}
faults = {"parts": {}, "get_drop_after": None, "get_count": 0, "max_keys": None}
stats = {"requests": 0, "refused": 0, "faults": 0, "parts": {}, "created": 0, "aborted": 0, "completed": 0,
         "gets_ranged": 0, "part_first_at": {}}  # part number -> wall time its first try arrived


def xml_error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '<RequestId>proxy</RequestId></Error>' % (code, xml.sax.saxutils.escape(message))
            ).encode()


def iso(ts):
    return datetime.datetime.utcfromtimestamp(ts).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def refuse(self, status, code, message):
        with lock:
            stats["refused"] += 1
        self.reply(status, xml_error(code, message), {"Content-Type": "application/xml"})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(n) if n else b""

    # ---- control ----
    def control(self, path, q):
        with lock:
            if path == "/__proxy/reset":
                faults["parts"].clear()
                faults["get_drop_after"] = None
                faults["max_keys"] = None
                stats["part_first_at"].clear()
            elif path == "/__proxy/max_keys":
                faults["max_keys"] = int(q["n"])
            elif path == "/__proxy/fault":
                count = int(q.get("count", "1"))
                if "part" in q:
                    faults["parts"][int(q["part"])] = {
                        "status": int(q.get("status", "0")), "drop": q.get("drop") == "1",
                        "count": count}
                if "get_drop_after" in q:
                    faults["get_drop_after"] = int(q["get_drop_after"])
                    faults["get_count"] = count
            elif path == "/__proxy/creds":
                creds.update(access=q["access"], secret=q["secret"], token=q.get("token") or None)
            elif path == "/__proxy/age_uploads":
                for u in uploads.values():
                    u["initiated"] -= int(q["seconds"])
            body = json.dumps(dict(stats, open_uploads=len(uploads))).encode()
        self.reply(200, body, {"Content-Type": "application/json"})

    # ---- signature ----
    def verify(self, raw_path, query, body):
        with lock:
            ACCESS, SECRET, TOKEN = creds["access"], creds["secret"], creds["token"]
        auth = self.headers.get("Authorization")
        if not auth:
            return self.refuse(403, "AccessDenied", "anonymous requests are refused")
        try:
            algo, rest = auth.split(" ", 1)
            fields = dict(p.strip().split("=", 1) for p in rest.split(","))
            cred = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
        except (ValueError, KeyError):
            return self.refuse(400, "AuthorizationHeaderMalformed", "bad Authorization header")
        if algo != "AWS4-HMAC-SHA256" or len(cred) != 5:
            return self.refuse(400, "AuthorizationHeaderMalformed", "bad Authorization header")
        if cred[0] != ACCESS:
            return self.refuse(403, "InvalidAccessKeyId",
                               "The AWS Access Key Id you provided does not exist in our records.")
        if cred[2] != REGION or cred[3] != "s3" or cred[4] != "aws4_request":
            return self.refuse(400, "AuthorizationHeaderMalformed",
                               "the region '%s' is wrong; expecting '%s'" % (cred[2], REGION))
        for h in ("host", "x-amz-date", "x-amz-content-sha256"):
            if h not in signed:
                return self.refuse(403, "AccessDenied", "%s must be signed" % h)
        if TOKEN and (self.headers.get("x-amz-security-token") != TOKEN or
                      "x-amz-security-token" not in signed):
            return self.refuse(403, "InvalidToken", "The provided token is malformed or invalid.")
        amz_date = self.headers.get("x-amz-date", "")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            return self.refuse(403, "AccessDenied", "bad x-amz-date")
        if abs(time.time() - t) > 900 or cred[1] != amz_date[:8]:
            return self.refuse(403, "RequestTimeTooSkewed", "request time too skewed")
        payload = self.headers.get("x-amz-content-sha256")
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            return self.refuse(400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what "
                               "was computed.")
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            return self.refuse(400, "BadDigest",
                               "The Content-MD5 you specified did not match what we received.")
        path = urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/~")
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        req = AWSRequest(method=self.command, url="http://%s%s" % (self.headers["Host"], path),
                         params=params)
        for h in signed:
            v = self.headers.get(h)
            if v is None:
                return self.refuse(403, "AccessDenied", "signed header %s missing" % h)
            req.headers[h] = v
        req.context["timestamp"] = amz_date
        signer = S3SigV4Auth(Credentials(ACCESS, SECRET, TOKEN), "s3", REGION)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        if signer.signed_headers(signer.headers_to_sign(req)) != fields["SignedHeaders"] or \
                expected != fields.get("Signature"):
            return self.refuse(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature "
                               "you provided. Check your key and signing method.")
        return True

    # ---- multipart bookkeeping s3rver lacks ----
    def list_uploads(self, bucket, q):
        prefix = q.get("prefix", "")
        with lock:
            items = sorted((u["key"], uid, u["initiated"]) for uid, u in uploads.items()
                           if u["bucket"] == bucket and u["key"].startswith(prefix))
        esc = xml.sax.saxutils.escape
        body = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>'
                '<Bucket>%s</Bucket><IsTruncated>false</IsTruncated>' % esc(bucket)]
        for key, uid, ts in items:
            body.append("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated>"
                        "</Upload>" % (esc(key), esc(uid), iso(ts)))
        body.append("</ListMultipartUploadsResult>")
        self.reply(200, "".join(body).encode(), {"Content-Type": "application/xml"})

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if u.path.startswith("/__proxy/"):
            self.read_body()
            return self.control(u.path, q)
        with lock:
            stats["requests"] += 1
        part = int(q["partNumber"]) if self.command == "PUT" and "partNumber" in q else None
        fault = None
        if part is not None:
            with lock:
                f = faults["parts"].get(part)
                stats["parts"][str(part)] = stats["parts"].get(str(part), 0) + 1
                stats["part_first_at"].setdefault(str(part), time.time())
                if f and f["count"] != 0:
                    f["count"] -= 1 if f["count"] > 0 else 0
                    stats["faults"] += 1
                    fault = dict(f)
            if fault and fault["drop"]:
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n // 2)
                self.close_connection = True
                self.connection.shutdown(2)
                return
        body = self.read_body()
        ok = self.verify(u.path, u.query, body)
        if ok is not True:
            return
        if fault and fault["status"]:
            return self.refuse(fault["status"], "InternalError" if fault["status"] == 500
                               else "SlowDown", "injected fault")
        parts = u.path.lstrip("/").split("/", 1)
        bucket = parts[0]
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        if self.command == "GET" and not key and "uploads" in q:
            return self.list_uploads(bucket, q)
        if "uploadId" in q:
            with lock:
                known = q["uploadId"] in uploads
                if self.command == "DELETE" and known:
                    del uploads[q["uploadId"]]
                    stats["aborted"] += 1
            if not known:
                return self.refuse(404, "NoSuchUpload", "The specified upload does not exist.")
            if self.command == "DELETE":
                return self.reply(204)
        self.forward(u, q, body, bucket, key)

    def forward(self, u, q, body, bucket, key):
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("authorization", "x-amz-security-token", "host",
                                        "connection", "expect", "transfer-encoding",
                                        "content-length")}
        headers["Content-Length"] = str(len(body))
        path = self.path
        with lock:
            if self.command == "GET" and q.get("list-type") == "2" and faults["max_keys"]:
                path += "&max-keys=%d" % faults["max_keys"]  # small pages: continuation tokens
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=120)
        conn.request(self.command, path, body=body, headers=headers)
        resp = conn.getresponse()
        rbody_stream = self.command == "GET" and resp.status // 100 == 2 and key
        out_headers = {k: v for k, v in resp.getheaders()
                       if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                            "keep-alive")}
        if rbody_stream:
            if "Range" in self.headers:
                with lock:
                    stats["gets_ranged"] += 1
            length = int(resp.getheader("Content-Length") or 0)
            with lock:
                cut = None
                if faults["get_drop_after"] is not None and faults["get_count"] != 0:
                    cut = faults["get_drop_after"]
                    faults["get_count"] -= 1 if faults["get_count"] > 0 else 0
                    stats["faults"] += 1
            self.send_response(resp.status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            sent = 0
            while sent < length:
                chunk = resp.read(min(1 << 20, length - sent))
                if not chunk:
                    break
                if cut is not None and sent + len(chunk) > cut:
                    self.wfile.write(chunk[:max(0, cut - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    conn.close()
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
            conn.close()
            return
        rbody = resp.read()
        conn.close()
        if self.command == "POST" and "uploads" in q and resp.status == 200:
            s = rbody.decode(errors="replace")
            i, j = s.find("<UploadId>"), s.find("</UploadId>")
            if i >= 0 and j > i:
                with lock:
                    uploads[s[i + 10:j]] = {"bucket": bucket, "key": key,
                                            "initiated": time.time()}
                    stats["created"] += 1
        if self.command == "POST" and "uploadId" in q and resp.status == 200:
            with lock:
                uploads.pop(q["uploadId"], None)
                stats["completed"] += 1
        self.reply(resp.status, rbody, out_headers)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", LISTEN), Handler)
    if os.environ.get("S3_PROXY_CERT"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.environ["S3_PROXY_CERT"], os.environ["S3_PROXY_KEY"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("proxy listening on 127.0.0.1:%d -> %d%s" % (LISTEN, UPSTREAM,
          " (TLS)" if os.environ.get("S3_PROXY_CERT") else ""), flush=True)
    srv.serve_forever()
