/* sigv4.h - AWS Signature Version 4 for S3 requests, on OpenSSL's HMAC-SHA256: canonical
 * query and path encoding, canonical request, signing key, Authorization header. Which headers
 * a request carries and the HTTP exchange are store_s3.c's.
 *
 * Our own signer, not libcurl's CURLOPT_AWS_SIGV4: Debian 12's libcurl 7.88.1 signs the query as
 * written (unsorted, `uploads` without `=`) and a streamed body as the empty payload.
 * tests/unit/test_sigv4.c compares every output with botocore's for the same inputs. */
#ifndef ER_SIGV4_H
#define ER_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD" /* allowed by S3 over TLS only */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_HEX_LEN 64  /* sha256 in hex, without the NUL */
#define SIGV4_DATE_LEN 16 /* yyyymmddThhmmssZ, without the NUL */
#define SIGV4_MAX_PARAMS 16
#define SIGV4_MAX_HEADERS 16

struct sigv4_param {
    const char *key, *value; /* raw (not encoded); value "" for a bare key such as `uploads` */
};

struct sigv4_header {
    const char *name, *value; /* name in lower case; value as sent */
};

struct sigv4_key {
    const char *access_key, *secret_key;
    const char *session_token; /* NULL or "": none (the caller sends x-amz-security-token) */
    const char *region, *service;
};

struct sigv4_request {
    const char *method;
    const char *path;  /* URI-encoded as sent (sigv4_uri_encode with keep_slash) */
    const char *query; /* canonical (sigv4_canonical_query), also sent as is; "" if none */
    const struct sigv4_header *headers; /* every header to sign: host, x-amz-date, ... */
    size_t n_headers;
    const char *payload_hash; /* hex sha256 of the body, or SIGV4_UNSIGNED_PAYLOAD */
    const char *amz_date;     /* the x-amz-date value */
};

/* SigV4 URI encoding: A-Z a-z 0-9 - _ . ~ kept, '/' kept when keep_slash, every other byte
 * %XX in upper case. Returns the length written, or -ENOSPC. */
int sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t out_len);

/* Canonical query: each key and value encoded, pairs sorted by key then value, joined with
 * '&'; a bare key is written "key=". Returns the length, -ENOSPC, or -E2BIG (too many). */
int sigv4_canonical_query(const struct sigv4_param *p, size_t n, char *out, size_t out_len);

/* The x-amz-date value for t (UTC). out holds SIGV4_DATE_LEN + 1. */
void sigv4_amz_date(time_t t, char *out);

/* Lower-case hex of sha256(data). out holds SIGV4_HEX_LEN + 1. */
void sigv4_sha256_hex(const void *data, size_t len, char *out);

/* Signs r with k: writes the Authorization header's value to auth and, when canonical is not
 * NULL, the canonical request (for tests and debugging; it holds no secret). Headers are
 * signed sorted by name, values trimmed with inner runs of spaces collapsed. Returns 0,
 * -EINVAL (a missing field, an upper-case or duplicate header name, a bad date), -E2BIG or
 * -ENOSPC. */
int sigv4_sign(const struct sigv4_key *k, const struct sigv4_request *r, char *auth,
               size_t auth_len, char *canonical, size_t canonical_len);

#endif
