/* test_http1.c - the HTTP/1.1 request parser layer (agent/http1.c) on its own: requests split at
 * every byte, pipelining, every cap, bad input, versions, HEAD, response heads, and the small
 * helpers of http_util.c. Sockets and the event loop are test_server.c's.
 * Policy tested here: Host is not required on HTTP/1.1 (lenient, like etcd's own server);
 * unsupported versions answer 505, unparseable ones 400; a too long request line 414. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server_internal.h"

struct got {
    char method[16];
    char path[256];
    char query[256];
    char host[64];
    size_t n_headers;
    int version;
    bool keep_alive;
};

/* Feed data in pieces of at most `step` bytes (0: split once at `split`); collect requests.
 * Returns the number of requests, or -status on error. */
static int feed(struct http1_parser *p, const char *data, size_t len, size_t split, size_t step,
                struct got *out, int max)
{
    int n = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t chunk = step ? step : (pos < split ? split - pos : len - pos);
        if (chunk > len - pos)
            chunk = len - pos;
        size_t off = 0;
        while (off < chunk) {
            size_t used;
            enum http1_result r =
                http1_parse(p, (const uint8_t *)data + pos + off, chunk - off, &used);
            off += used;
            if (r == HTTP1_ERROR)
                return -p->error_status;
            if (r == HTTP1_NEED_MORE) {
                assert_int_equal(off, chunk);
                break;
            }
            assert_true(n < max);
            struct got *g = &out[n++];
            snprintf(g->method, sizeof g->method, "%s", p->req.method);
            snprintf(g->path, sizeof g->path, "%s", p->req.path);
            snprintf(g->query, sizeof g->query, "%s", p->req.query);
            const char *h = http_request_header(&p->req, "host");
            snprintf(g->host, sizeof g->host, "%s", h ? h : "");
            g->n_headers = p->req.n_headers;
            g->version = p->req.version;
            g->keep_alive = p->keep_alive;
            http1_parser_next(p);
        }
        pos += chunk;
    }
    return n;
}

static struct http1_parser *new_parser(void)
{
    struct http1_parser *p = malloc(sizeof *p);
    assert_non_null(p);
    http1_parser_init(p);
    return p;
}

static int parse_all(const char *req, struct got *g, int max)
{
    struct http1_parser *p = new_parser();
    int n = feed(p, req, strlen(req), 0, 0, g, max);
    free(p);
    return n;
}

static const char pipelined[] =
    "GET /readyz?verbose HTTP/1.1\r\nHost: a\r\nX-A:  1  \r\n\r\n"
    "HEAD /livez HTTP/1.1\r\nhost: b\r\n\r\n"
    "POST /snapshots HTTP/1.1\r\nHost: c\r\nContent-Length: 5\r\n\r\n"
    "hello"
    "GET /a%20b/c?x=1&y HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n";

static void check_pipelined(const struct got *g)
{
    assert_string_equal(g[0].method, "GET");
    assert_string_equal(g[0].path, "/readyz");
    assert_string_equal(g[0].query, "verbose");
    assert_string_equal(g[0].host, "a");
    assert_int_equal(g[0].n_headers, 2);
    assert_true(g[0].keep_alive);
    assert_int_equal(g[0].version, 11);
    assert_string_equal(g[1].method, "HEAD");
    assert_string_equal(g[1].path, "/livez");
    assert_string_equal(g[1].host, "b");
    assert_string_equal(g[2].method, "POST");
    assert_string_equal(g[2].path, "/snapshots");
    assert_string_equal(g[3].path, "/a b/c");
    assert_string_equal(g[3].query, "x=1&y");
    assert_false(g[3].keep_alive);
}

static void test_split_every_byte(void **state)
{
    (void)state;
    size_t len = strlen(pipelined);
    for (size_t split = 1; split < len; split++) {
        struct http1_parser *p = new_parser();
        struct got g[8];
        int n = feed(p, pipelined, len, split, 0, g, 8);
        assert_int_equal(n, 4);
        check_pipelined(g);
        free(p);
    }
    /* one byte at a time */
    struct http1_parser *p = new_parser();
    struct got g[8];
    assert_int_equal(feed(p, pipelined, len, 0, 1, g, 8), 4);
    check_pipelined(g);
    free(p);
}

static void test_pipelined_consumed(void **state)
{
    (void)state;
    struct http1_parser *p = new_parser();
    const char *a = "GET /1 HTTP/1.1\r\n\r\n", *b = "GET /2 HTTP/1.1\r\n\r\n";
    char buf[64];
    snprintf(buf, sizeof buf, "%s%s", a, b);
    size_t used;
    assert_int_equal(http1_parse(p, (const uint8_t *)buf, strlen(buf), &used), HTTP1_REQUEST);
    assert_int_equal(used, strlen(a));
    assert_string_equal(p->req.path, "/1");
    /* a complete parser keeps answering REQUEST without consuming until next() */
    size_t u2;
    assert_int_equal(http1_parse(p, (const uint8_t *)buf + used, 3, &u2), HTTP1_REQUEST);
    assert_int_equal(u2, 0);
    http1_parser_next(p);
    assert_int_equal(http1_parse(p, (const uint8_t *)buf + used, strlen(buf) - used, &u2),
                     HTTP1_REQUEST);
    assert_int_equal(u2, strlen(b));
    assert_string_equal(p->req.path, "/2");
    assert_int_equal(p->req.n_headers, 0); /* no Host: accepted (lenient) */
    free(p);
}

static void test_limits(void **state)
{
    (void)state;
    struct got g[2];
    size_t big = HTTP_MAX_HEADER_BYTES + HTTP_MAX_REQUEST_LINE + 1024;
    char *req = malloc(big + 256);
    assert_non_null(req);

    /* request line */
    int n = snprintf(req, 64, "GET /");
    memset(req + n, 'a', HTTP_MAX_REQUEST_LINE);
    snprintf(req + n + HTTP_MAX_REQUEST_LINE, 64, " HTTP/1.1\r\n\r\n");
    assert_int_equal(parse_all(req, g, 2), -414);

    /* a URL just under the cap is fine */
    n = snprintf(req, 64, "GET /");
    memset(req + n, 'a', HTTP_MAX_REQUEST_LINE - 2);
    snprintf(req + n + HTTP_MAX_REQUEST_LINE - 2, 64, " HTTP/1.1\r\n\r\n");
    assert_int_equal(parse_all(req, g, 2), 1);

    /* header bytes */
    n = snprintf(req, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'b', HTTP_MAX_HEADER_BYTES);
    snprintf(req + n + HTTP_MAX_HEADER_BYTES, 64, "\r\n\r\n");
    assert_int_equal(parse_all(req, g, 2), -431);

    /* header count */
    n = snprintf(req, 64, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        n += snprintf(req + n, 32, "X-%d: v\r\n", i);
    snprintf(req + n, 8, "\r\n");
    assert_int_equal(parse_all(req, g, 2), -431);

    /* exactly HTTP_MAX_HEADERS is fine */
    n = snprintf(req, 64, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += snprintf(req + n, 32, "X-%d: v\r\n", i);
    snprintf(req + n, 8, "\r\n");
    assert_int_equal(parse_all(req, g, 2), 1);
    assert_int_equal(g[0].n_headers, HTTP_MAX_HEADERS);

    /* bodies */
    snprintf(req, 128, "POST / HTTP/1.1\r\nContent-Length: %u\r\n\r\n",
             SERVER_MAX_REQUEST_BODY + 1);
    assert_int_equal(parse_all(req, g, 2), -413);
    n = snprintf(req, 128, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        n += snprintf(req + n, 16, "400\r\n");
        memset(req + n, 'x', 1024);
        n += 1024;
        n += snprintf(req + n, 8, "\r\n");
    }
    snprintf(req + n, 8, "0\r\n\r\n");
    assert_int_equal(parse_all(req, g, 2), -413);
    /* a small chunked body is fine */
    assert_int_equal(
        parse_all("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", g,
                  2),
        1);
    free(req);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct got g[2];
    assert_int_equal(parse_all("\x16\x03\x01\x02\x00garbage\r\n\r\n", g, 2), -400);
    assert_int_equal(parse_all("GARBAGE\r\n\r\n", g, 2), -400);
    assert_int_equal(parse_all("GET / HTTP/1.1\r\nBad Header\r\n\r\n", g, 2), -400);
    /* Debian's http-parser is built non-strict: it does not check the letters of "HTTP" in
     * the version (GET / HTTX/1.1 passes); the digits and everything else are checked. */
    assert_int_equal(parse_all("GET / HTTP/x.1\r\n\r\n", g, 2), -400);
    assert_int_equal(parse_all("GET / HTTP/2.0\r\n\r\n", g, 2), -505);
    assert_int_equal(parse_all("GET / HTTP/1.2\r\n\r\n", g, 2), -505);
    assert_int_equal(parse_all("GET /%00 HTTP/1.1\r\n\r\n", g, 2), -400);
    assert_int_equal(parse_all("GET /%zz HTTP/1.1\r\n\r\n", g, 2), -400);
    assert_int_equal(parse_all("GET /% HTTP/1.1\r\n\r\n", g, 2), -400);
    assert_int_equal(parse_all("CONNECT a:443 HTTP/1.1\r\n\r\n", g, 2), -400);
    assert_int_equal(
        parse_all("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", g, 2), -400);
    /* errors are sticky */
    struct http1_parser *p = new_parser();
    size_t used;
    assert_int_equal(http1_parse(p, (const uint8_t *)"XX\r\n", 4, &used), HTTP1_ERROR);
    assert_int_equal(http1_parse(p, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, &used),
                     HTTP1_ERROR);
    free(p);
}

static void test_versions_and_forms(void **state)
{
    (void)state;
    struct got g[2];
    assert_int_equal(parse_all("GET /x HTTP/1.0\r\n\r\n", g, 2), 1);
    assert_int_equal(g[0].version, 10);
    assert_false(g[0].keep_alive); /* HTTP/1.0 always closes */
    assert_int_equal(parse_all("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", g, 2), 1);
    assert_false(g[0].keep_alive);
    assert_int_equal(parse_all("GET /x HTTP/1.1\r\nConnection: close\r\n\r\n", g, 2), 1);
    assert_false(g[0].keep_alive);
    assert_int_equal(parse_all("GET http://h:1/p/q?z=1 HTTP/1.1\r\n\r\n", g, 2), 1);
    assert_string_equal(g[0].path, "/p/q");
    assert_string_equal(g[0].query, "z=1");
    assert_int_equal(parse_all("GET http://h:1?z HTTP/1.1\r\n\r\n", g, 2), 1);
    assert_string_equal(g[0].path, "/");
    assert_string_equal(g[0].query, "z");
    assert_int_equal(parse_all("OPTIONS * HTTP/1.1\r\n\r\n", g, 2), 1);
    assert_string_equal(g[0].path, "*");
    assert_int_equal(parse_all("HEAD /h#frag HTTP/1.1\r\n\r\n", g, 2), 1);
    assert_string_equal(g[0].method, "HEAD");
    assert_string_equal(g[0].path, "/h");
    /* percent-decoding leaves ".." for the handlers to judge */
    assert_int_equal(parse_all("GET /a/%2e%2e/b HTTP/1.1\r\n\r\n", g, 2), 1);
    assert_string_equal(g[0].path, "/a/../b");
}

static void test_headers(void **state)
{
    (void)state;
    struct http1_parser *p = new_parser();
    const char *r = "GET / HTTP/1.1\r\nHOST:  example \r\nX-Empty:\r\nExpect: 100-continue\r\n"
                    "Accept-Encoding: zstd\r\n\r\n";
    size_t used;
    assert_int_equal(http1_parse(p, (const uint8_t *)r, strlen(r), &used), HTTP1_REQUEST);
    assert_string_equal(http_request_header(&p->req, "host"), "example");
    assert_string_equal(http_request_header(&p->req, "x-empty"), "");
    assert_string_equal(p->req.headers[0].name, "host");
    assert_string_equal(http_request_header(&p->req, "accept-encoding"), "zstd");
    assert_null(http_request_header(&p->req, "missing"));
    assert_true(p->expect_continue);
    free(p);
}

static void test_query_param(void **state)
{
    (void)state;
    struct http_request req = {.query = "verbose&source=disk&x=&longer=abcdef"};
    char v[4];
    assert_true(http_query_param(&req, "verbose", NULL, 0));
    assert_true(http_query_param(&req, "verbose", v, sizeof v));
    assert_string_equal(v, "");
    assert_true(http_query_param(&req, "source", v, sizeof v));
    assert_string_equal(v, "dis"); /* truncated to fit */
    assert_true(http_query_param(&req, "x", v, sizeof v));
    assert_string_equal(v, "");
    assert_false(http_query_param(&req, "verb", v, sizeof v));
    assert_false(http_query_param(&req, "long", v, sizeof v));
    struct http_request empty = {.query = ""};
    assert_false(http_query_param(&empty, "a", NULL, 0));
}

static char *head_str(struct http_buf *b)
{
    http_buf_append(b, "", 1);
    return (char *)b->data;
}

static void test_format_head(void **state)
{
    (void)state;
    struct http_response r = {.status = 200, .content_type = "application/json"};
    struct http_buf b = {0};
    assert_int_equal(http1_format_head(&b, &r, 12, true), 0);
    assert_string_equal(head_str(&b), "HTTP/1.1 200 OK\r\nServer: etcd-agent\r\nContent-Type: "
                                      "application/json\r\nContent-Length: 12\r\n\r\n");
    http_buf_free(&b);

    struct http_response r2 = {.status = 405, .content_type = "text/plain"};
    assert_int_equal(http_response_add_header(&r2, "Allow", "GET, HEAD"), 0);
    assert_int_equal(http_response_add_header(&r2, "X-Bad", "a\r\nInjected: 1"), 0);
    assert_int_equal(http1_format_head(&b, &r2, -1, false), 0);
    assert_string_equal(head_str(&b), "HTTP/1.1 405 Method Not Allowed\r\nServer: etcd-agent\r\n"
                                      "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                                      "Connection: close\r\nAllow: GET, HEAD\r\n\r\n");
    http_buf_free(&b);

    struct http_response r3 = {.status = 204};
    assert_int_equal(http1_format_head(&b, &r3, 0, true), 0);
    assert_string_equal(head_str(&b), "HTTP/1.1 204 No Content\r\nServer: etcd-agent\r\n\r\n");
    http_buf_free(&b);
}

static void test_response_helpers(void **state)
{
    (void)state;
    struct http_response r;
    memset(&r, 0, sizeof r);
    char big[600];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(http_response_add_header(&r, "A", "1"), 0);
    assert_int_equal(http_response_add_header(&r, "B", "22"), 0);
    assert_string_equal(r.extra[0].value, "1");
    assert_string_equal(r.extra[1].value, "22");
    assert_int_equal(http_response_add_header(&r, "C", big), -ENOSPC);
    for (int i = 2; i < HTTP_MAX_EXTRA_HEADERS; i++)
        assert_int_equal(http_response_add_header(&r, "D", "x"), 0);
    assert_int_equal(http_response_add_header(&r, "E", "x"), -ENOSPC);
    assert_int_equal(http_response_set_body(&r, 200, "text/plain", "hello", 5), 0);
    assert_memory_equal(r.body, "hello", 5);
    assert_int_equal(http_response_set_body(&r, 201, "text/plain", "", 0), 0);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(r.status, 201);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_every_byte),
        cmocka_unit_test(test_pipelined_consumed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_versions_and_forms),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_format_head),
        cmocka_unit_test(test_response_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
