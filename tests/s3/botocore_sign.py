#!/usr/bin/python3
"""botocore_sign.py - botocore's SigV4 (S3SigV4Auth) for requests described on stdin, one JSON
object a line; prints one JSON line each: {"canonical": ..., "authorization": ...}. Used by
tests/unit/test_sigv4.c so that our signer is checked against botocore at test time."""
import json
import sys

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(r):
    creds = Credentials(r["access"], r["secret"], r.get("token") or None)
    auth = S3SigV4Auth(creds, "s3", r["region"])
    req = AWSRequest(method=r["method"], url="http://%s%s" % (r["host"], r["path"]),
                     params=[tuple(p) for p in r["params"]])
    for name, value in r["headers"]:
        req.headers[name] = value
    req.context["timestamp"] = r["amz_date"]
    canonical = auth.canonical_request(req)
    sts = auth.string_to_sign(req, canonical)
    sig = auth.signature(sts, req)
    scope = auth.credential_scope(req)
    signed = auth.signed_headers(auth.headers_to_sign(req))
    authz = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        r["access"], scope, signed, sig)
    return {"canonical": canonical, "authorization": authz}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(sign(json.loads(line))), flush=True)
