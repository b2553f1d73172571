/* fuzz_http2.c - arbitrary bytes into a server nghttp2 session through agent/http2.c's callbacks
 * (after the client preface, so the fuzzer reaches frames), with a trivial handler that answers
 * with whole bodies, HEAD, body sources that return data / AGAIN / ABORT / trailers and deferred
 * headers, and wakeups. Output is discarded between pieces. Sockets: tests/unit/test_server.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "server_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct fsrc {
    int mode; /* 0 data then EOF, 1 AGAIN once, 2 ABORT, 3 deferred headers */
    int calls;
    bool again_done;
    struct http_body_wakeup *w;
};

static struct fsrc srcs[64];
static size_t n_srcs;
static struct http_body_source ops;

static ssize_t f_read(void *ctx, uint8_t *buf, size_t len)
{
    struct fsrc *s = ctx;
    s->calls++;
    if (s->mode == 1 && !s->again_done) {
        s->again_done = true;
        return HTTP_BODY_AGAIN;
    }
    if (s->mode == 2 && s->calls > 1)
        return HTTP_BODY_ABORT;
    if (s->calls > 3)
        return 0;
    size_t n = len < 100 ? len : 100;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static size_t f_trailers(void *ctx, struct http_header *out, size_t max)
{
    (void)ctx;
    if (max < 1)
        return 0;
    out[0].name = "X-Sum";
    out[0].value = "abc";
    return 1;
}

static void f_close(void *ctx, bool completed)
{
    struct fsrc *s = ctx;
    (void)completed;
    if (s->w == NULL && s->mode < 0)
        abort(); /* closed twice */
    s->mode = -1;
    s->w = NULL;
}

static void f_attach(void *ctx, struct http_body_wakeup *w)
{
    ((struct fsrc *)ctx)->w = w;
}

static int f_headers(void *ctx, struct http_response *resp)
{
    struct fsrc *s = ctx;
    if (!s->again_done) {
        s->again_done = true;
        return HTTP_BODY_AGAIN;
    }
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->content_length = -1;
    return 0;
}

static void handler(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)arg;
    size_t plen = strlen(req->path);
    int kind = plen > 1 ? req->path[1] % 6 : 0;
    if (kind >= 2 && n_srcs < ARRAY_SIZE(srcs)) {
        struct fsrc *s = &srcs[n_srcs++];
        memset(s, 0, sizeof *s);
        s->mode = kind - 2;
        ops = (struct http_body_source){.read = f_read,
                                        .trailers = f_trailers,
                                        .close = f_close,
                                        .attach = f_attach,
                                        .headers = f_headers,
                                        .ctx = s};
        resp->source = &ops;
        resp->defer_headers = s->mode == 3;
        resp->status = 200;
        resp->content_type = "text/plain";
        resp->content_length = kind == 2 ? 300 : -1;
        return;
    }
    http_response_set_body(resp, kind ? 404 : 200, "text/plain", req->path, plen);
    if (http_query_param(req, "x", NULL, 0))
        http_response_add_header(resp, "Allow", "GET");
}

static struct server *srv;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv) {
        char err[128];
        struct server_config cfg = {.listen = "127.0.0.1:0", .handler = handler};
        srv = server_new(&cfg, err, sizeof err);
        if (!srv)
            abort();
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return 0;
    c->srv = srv;
    c->fd = -1;
    n_srcs = 0;
    if (http2_conn_ops.init(c) != 0) {
        free(c);
        return 0;
    }
    c->proto = &http2_conn_ops;
    int rc = http2_conn_ops.on_data(c, (const uint8_t *)preface, 24);
    size_t pos = 0;
    while (rc == 0 && pos < size) {
        size_t piece = 1 + (data[pos] % 128);
        pos++;
        if (piece > size - pos)
            piece = size - pos;
        rc = http2_conn_ops.on_data(c, data + pos, piece);
        pos += piece;
        /* the client "reads" everything; sources that waited get woken */
        c->out.off = c->out.len = 0;
        for (size_t i = 0; i < n_srcs && rc == 0; i++)
            if (srcs[i].w && srcs[i].mode >= 0)
                http2_conn_ops.wakeup(c, srcs[i].w->stream_id);
        if (rc == 0)
            rc = http2_conn_ops.progress(c);
        c->out.off = c->out.len = 0;
    }
    http2_conn_ops.free(c);
    server_conn_timer(c, CONN_TIMER_NONE, false);
    http_buf_free(&c->out);
    free(c->stash);
    free(c);
    return 0;
}
