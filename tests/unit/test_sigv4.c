/* test_sigv4.c - our SigV4 signer against botocore's: the same requests (GET/PUT/POST/DELETE,
 * query strings with bare keys, upload IDs, special characters, a session token, empty and
 * unsigned payloads) signed by common/sigv4.c and by tests/s3/botocore_sign.py, run at test
 * time; canonical requests and Authorization values must be equal. Plus encoding edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "sigv4.h"

#define PY "/usr/bin/python3"
#define HELPER "tests/s3/botocore_sign.py"

struct tcase {
    const char *method, *key; /* key: raw object key ("" for the bucket) */
    struct sigv4_param params[6];
    size_t n_params;
    const char *payload; /* NULL: UNSIGNED-PAYLOAD */
    const char *token;   /* session token or NULL */
    const char *md5;     /* content-md5 or NULL */
};

static const struct tcase cases[] = {
    {"GET", "", {{"list-type", "2"}, {"prefix", "backups/0123456789abcdef/"}}, 2, "", NULL, NULL},
    {"GET",
     "",
     {{"list-type", "2"},
      {"prefix", "a b+c/ü&=?%"},
      {"continuation-token", "1/Zx+y==ab~c_d.e-f*g'h"},
      {"max-keys", "1000"}},
     4,
     "",
     "FwoGZXIvYXdzEBYaDH+session/token=",
     NULL},
    {"POST", "pre/x/20261203T215500Z-rev42.db.zst.age", {{"uploads", ""}}, 1, "", NULL, NULL},
    {"PUT",
     "pre/x/20261203T215500Z-rev42.db",
     {{"uploadId", "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"},
      {"partNumber", "10"}},
     2,
     "part bytes\n",
     NULL,
     "1B2M2Y8AsgTpgAmY7PhCfg=="},
    {"PUT", "pre/obj with spaces & (parens).db", {{0}}, 0, NULL, "tok", NULL},
    {"POST",
     "pre/o.db",
     {{"uploadId", "abc/def+ghi="}},
     1,
     "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
     NULL,
     NULL},
    {"DELETE", "pre/o.db", {{"uploadId", "abc/def+ghi="}}, 1, "", "tok2", NULL},
    {"DELETE", "pre/o.db", {{0}}, 0, "", NULL, NULL},
    {"GET", "", {{"uploads", ""}, {"prefix", "pre/"}}, 2, "", NULL, NULL},
    {"GET", "pre/~tilde_-.db", {{0}}, 0, "", NULL, NULL},
};

static const char *access_key = "AKIDEXAMPLE", *secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
static const char *region = "eu-central-1", *host = "127.0.0.1:9000", *bucket = "bkt";

struct signed_req {
    char canonical[8192], auth[1024], path[2048], query[4096];
    char payload_hash[SIGV4_HEX_LEN + 1];
};

static void sign_ours(const struct tcase *c, struct signed_req *s)
{
    struct sigv4_header h[8];
    size_t n = 0;
    char raw[1024];
    struct sigv4_key k = {access_key, secret, c->token, region, "s3"};
    struct sigv4_request r = {0};

    snprintf(raw, sizeof(raw), "/%s%s%s", bucket, c->key[0] ? "/" : "", c->key);
    assert_true(sigv4_uri_encode(raw, strlen(raw), true, s->path, sizeof(s->path)) > 0);
    assert_true(sigv4_canonical_query(c->params, c->n_params, s->query, sizeof(s->query)) >= 0);
    if (c->payload)
        sigv4_sha256_hex(c->payload, strlen(c->payload), s->payload_hash);
    else
        snprintf(s->payload_hash, sizeof(s->payload_hash), "%s", SIGV4_UNSIGNED_PAYLOAD);
    h[n++] = (struct sigv4_header){"host", host};
    h[n++] = (struct sigv4_header){"x-amz-date", "20261203T215500Z"};
    h[n++] = (struct sigv4_header){"x-amz-content-sha256", s->payload_hash};
    if (c->token)
        h[n++] = (struct sigv4_header){"x-amz-security-token", c->token};
    if (c->md5)
        h[n++] = (struct sigv4_header){"content-md5", c->md5};
    r.method = c->method;
    r.path = s->path;
    r.query = s->query;
    r.headers = h;
    r.n_headers = n;
    r.payload_hash = s->payload_hash;
    r.amz_date = "20261203T215500Z";
    assert_int_equal(
        sigv4_sign(&k, &r, s->auth, sizeof(s->auth), s->canonical, sizeof(s->canonical)), 0);
}

static char *case_json(const struct tcase *c, const struct signed_req *s)
{
    cJSON *o = cJSON_CreateObject(), *params = cJSON_AddArrayToObject(o, "params");
    cJSON *hdrs = cJSON_AddArrayToObject(o, "headers");
    char raw[1024];
    char *out;

    /* botocore gets the raw path and raw params: it encodes them itself */
    snprintf(raw, sizeof(raw), "/%s%s%s", bucket, c->key[0] ? "/" : "", c->key);
    cJSON_AddStringToObject(o, "method", c->method);
    cJSON_AddStringToObject(o, "host", host);
    cJSON_AddStringToObject(o, "path", s->path); /* S3: the path is signed as sent */
    cJSON_AddStringToObject(o, "raw_path", raw);
    for (size_t i = 0; i < c->n_params; i++) {
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateString(c->params[i].key));
        cJSON_AddItemToArray(p, cJSON_CreateString(c->params[i].value));
        cJSON_AddItemToArray(params, p);
    }
#define HDR(n, v)                                                                                  \
    do {                                                                                           \
        cJSON *p = cJSON_CreateArray();                                                            \
        cJSON_AddItemToArray(p, cJSON_CreateString(n));                                            \
        cJSON_AddItemToArray(p, cJSON_CreateString(v));                                            \
        cJSON_AddItemToArray(hdrs, p);                                                             \
    } while (0)
    HDR("Host", host);
    HDR("X-Amz-Date", "20261203T215500Z");
    HDR("X-Amz-Content-SHA256", s->payload_hash);
    if (c->token)
        HDR("X-Amz-Security-Token", c->token);
    if (c->md5)
        HDR("Content-MD5", c->md5);
#undef HDR
    cJSON_AddStringToObject(o, "amz_date", "20261203T215500Z");
    cJSON_AddStringToObject(o, "access", access_key);
    cJSON_AddStringToObject(o, "secret", secret);
    if (c->token)
        cJSON_AddStringToObject(o, "token", c->token);
    cJSON_AddStringToObject(o, "region", region);
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static void test_against_botocore(void **state)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    struct signed_req *s = calloc(n, sizeof(*s));
    char tmp[] = "/tmp/test_sigv4.XXXXXX", cmd[256], *line = NULL;
    size_t cap = 0;
    FILE *f, *p;
    int fd;

    (void)state;
    assert_non_null(s);
    if (access(PY, X_OK) != 0 || system(PY " -c 'import botocore' 2>/dev/null") != 0) {
        free(s);
        fprintf(stderr, "test_sigv4: " PY " with botocore missing (make deps installs it)\n");
        fail();
    }
    fd = mkstemp(tmp);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    for (size_t i = 0; i < n; i++) {
        char *j;
        sign_ours(&cases[i], &s[i]);
        j = case_json(&cases[i], &s[i]);
        fprintf(f, "%s\n", j);
        cJSON_free(j);
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd), PY " " HELPER " < %s", tmp);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        cJSON *o, *canon, *auth;
        assert_true(getline(&line, &cap, p) > 0);
        o = cJSON_Parse(line);
        assert_non_null(o);
        canon = cJSON_GetObjectItem(o, "canonical");
        auth = cJSON_GetObjectItem(o, "authorization");
        assert_true(cJSON_IsString(canon) && cJSON_IsString(auth));
        if (strcmp(canon->valuestring, s[i].canonical) != 0)
            fprintf(stderr, "case %zu: ours:\n%s\nbotocore:\n%s\n", i, s[i].canonical,
                    canon->valuestring);
        assert_string_equal(canon->valuestring, s[i].canonical);
        assert_string_equal(auth->valuestring, s[i].auth);
        cJSON_Delete(o);
    }
    free(line);
    assert_int_equal(pclose(p), 0);
    unlink(tmp);
    free(s);
}

static void test_encoding(void **state)
{
    char out[64];
    struct sigv4_param p[] = {{"uploads", ""}, {"b", "x y"}, {"a", "2"}, {"a", "1"}};

    (void)state;
    assert_int_equal(sigv4_uri_encode("a b/c~", 6, true, out, sizeof(out)), 8);
    assert_string_equal(out, "a%20b/c~");
    assert_int_equal(sigv4_uri_encode("/+\xff", 3, false, out, sizeof(out)), 9);
    assert_string_equal(out, "%2F%2B%FF");
    assert_int_equal(sigv4_uri_encode("abcdef", 6, false, out, 6), -ENOSPC);
    assert_true(sigv4_canonical_query(p, 4, out, sizeof(out)) > 0);
    assert_string_equal(out, "a=1&a=2&b=x%20y&uploads=");
    assert_int_equal(sigv4_canonical_query(p, 4, out, 10), -ENOSPC);
    assert_int_equal(sigv4_canonical_query(p, SIGV4_MAX_PARAMS + 1, out, sizeof(out)), -E2BIG);
}

static void test_rejects(void **state)
{
    struct sigv4_key k = {"AK", "SK", NULL, "us-east-1", "s3"};
    struct sigv4_header h[] = {{"host", "x"}, {"Host", "y"}};
    struct sigv4_header dup[] = {{"host", "x"}, {"host", "y"}};
    struct sigv4_request r = {"GET", "/", "", h, 1, SIGV4_EMPTY_SHA256, "20261203T215500Z"};
    char auth[512], date[SIGV4_DATE_LEN + 1];

    (void)state;
    assert_int_equal(sigv4_sign(&k, &r, auth, sizeof(auth), NULL, 0), 0);
    assert_non_null(strstr(auth, "Credential=AK/20261203/us-east-1/s3/aws4_request"));
    assert_int_equal(sigv4_sign(&k, &r, auth, 20, NULL, 0), -ENOSPC);
    r.n_headers = 2;
    assert_int_equal(sigv4_sign(&k, &r, auth, sizeof(auth), NULL, 0), -EINVAL);
    r.headers = dup;
    assert_int_equal(sigv4_sign(&k, &r, auth, sizeof(auth), NULL, 0), -EINVAL);
    r.n_headers = 1;
    r.amz_date = "2026-12-03";
    assert_int_equal(sigv4_sign(&k, &r, auth, sizeof(auth), NULL, 0), -EINVAL);
    sigv4_amz_date(0, date);
    assert_string_equal(date, "19700101T000000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_botocore),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
