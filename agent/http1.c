/* http1.c - HTTP/1.1 on one connection: the request parser layer (Debian's http-parser with our
 * caps on request line, header bytes, header count and body), response heads, pipelining in
 * order, and pulling streamed bodies as the client reads. Sockets, TLS and timers: server.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"
#include "bounds.h"
#include "hex.h"

/* ---- parser layer --------------------------------------------------------------------- */

static void store_put(struct http1_parser *p, const char *at, size_t len, bool lower)
{
    /* the caps checked by the callers keep this inside store; stay safe regardless */
    if (len > sizeof p->store - 1 - p->store_len)
        len = sizeof p->store - 1 - p->store_len;
    char *d = p->store + p->store_len;
    if (lower) {
        for (size_t i = 0; i < len; i++) {
            char ch = at[i];
            d[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
    } else {
        memcpy(d, at, len);
    }
    p->store_len += len;
}

static void store_nul(struct http1_parser *p)
{
    if (p->store_len < sizeof p->store)
        p->store[p->store_len++] = '\0';
}

static int fail(struct http1_parser *p, int status, const char *msg)
{
    p->error_status = status;
    p->error_msg = msg;
    return -1;
}

static int on_message_begin(http_parser *hp)
{
    struct http1_parser *p = hp->data;
    p->started = true;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    struct http1_parser *p = hp->data;
    p->started = true;
    if (len > HTTP_MAX_REQUEST_LINE - p->url_len)
        return fail(p, 414, "request line too long");
    p->url_len += len;
    store_put(p, at, len, false);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct http1_parser *p = hp->data;
    if (p->last != HTTP1_LAST_FIELD) {
        store_nul(p); /* ends the URL or the previous value */
        if (p->n_headers >= HTTP_MAX_HEADERS)
            return fail(p, 431, "too many header fields");
        p->headers[p->n_headers].name = p->store + p->store_len;
        p->headers[p->n_headers].value = "";
        p->n_headers++;
        p->header_bytes += 4; /* ": " and CRLF */
        p->last = HTTP1_LAST_FIELD;
    }
    if (len > HTTP_MAX_HEADER_BYTES || p->header_bytes + len > HTTP_MAX_HEADER_BYTES)
        return fail(p, 431, "request header fields too large");
    p->header_bytes += len;
    store_put(p, at, len, true);
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct http1_parser *p = hp->data;
    if (p->last != HTTP1_LAST_VALUE) {
        store_nul(p);
        p->headers[p->n_headers - 1].value = p->store + p->store_len;
        p->last = HTTP1_LAST_VALUE;
    }
    if (len > HTTP_MAX_HEADER_BYTES || p->header_bytes + len > HTTP_MAX_HEADER_BYTES)
        return fail(p, 431, "request header fields too large");
    p->header_bytes += len;
    store_put(p, at, len, false);
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct http1_parser *p = hp->data;
    store_nul(p);
    p->head_done = true;
    if (hp->http_major != 1 || hp->http_minor > 1)
        return fail(p, 505, "HTTP version not supported");
    /* values: http-parser leaves trailing whitespace in */
    for (size_t i = 0; i < p->n_headers; i++) {
        if (p->headers[i].value[0] == '\0')
            continue;                                          /* empty: maybe the static "" */
        char *v = p->store + (p->headers[i].value - p->store); /* ours, writable */
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            v[--n] = '\0';
        if (strcmp(p->headers[i].name, "expect") == 0 && strcasecmp(v, "100-continue") == 0)
            p->expect_continue = true;
    }
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > SERVER_MAX_REQUEST_BODY)
        return fail(p, 413, "request body too large");
    if (hp->method == HTTP_CONNECT)
        return fail(p, 400, "CONNECT is not supported");
    const char *path, *query;
    if (http_split_target(p->store, &path, &query) != 0)
        return fail(p, 400, "bad request target");
    p->req.method = http_method_str((enum http_method)hp->method);
    p->req.path = path;
    p->req.query = query;
    p->req.headers = p->headers;
    p->req.n_headers = p->n_headers;
    p->req.version = hp->http_minor == 1 ? 11 : 10;
    /* HTTP/1.0 always closes (no keep-alive extension) */
    p->keep_alive = hp->http_minor == 1 && http_should_keep_alive(hp);
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    struct http1_parser *p = hp->data;
    (void)at;
    if (len > SERVER_MAX_REQUEST_BODY || p->body_len + len > SERVER_MAX_REQUEST_BODY)
        return fail(p, 413, "request body too large");
    p->body_len += len; /* handlers need no bodies: counted, not kept */
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct http1_parser *p = hp->data;
    p->complete = true;
    if (hp->upgrade)
        p->keep_alive = false; /* we never switch protocols; what follows is not HTTP/1 */
    http_parser_pause(hp, 1);  /* one request at a time: pipelined ones wait */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http1_parser_next(struct http1_parser *p)
{
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    memset(&p->req, 0, sizeof p->req);
    p->n_headers = 0;
    p->error_status = 0;
    p->error_msg = NULL;
    p->started = p->head_done = p->complete = p->keep_alive = false;
    p->expect_continue = false;
    p->last = HTTP1_LAST_NONE;
    p->url_len = p->header_bytes = p->body_len = p->store_len = 0;
}

void http1_parser_init(struct http1_parser *p)
{
    http1_parser_next(p);
}

enum http1_result http1_parse(struct http1_parser *p, const uint8_t *data, size_t len,
                              size_t *consumed)
{
    *consumed = 0;
    if (p->complete || p->error_status)
        return p->complete ? HTTP1_REQUEST : HTTP1_ERROR;
    if (len == 0)
        return HTTP1_NEED_MORE;
    size_t n = http_parser_execute(&p->hp, &settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    *consumed = n;
    if (p->complete && !p->error_status) {
        http_parser_pause(&p->hp, 0);
        return HTTP1_REQUEST;
    }
    if (p->error_status)
        return HTTP1_ERROR;
    if (e != HPE_OK) {
        if (e == HPE_HEADER_OVERFLOW)
            fail(p, 431, "request header fields too large");
        else if (e == HPE_INVALID_METHOD)
            fail(p, 400, "bad method");
        else if (e == HPE_INVALID_VERSION)
            fail(p, 400, "bad HTTP version");
        else
            fail(p, 400, "malformed request");
        return HTTP1_ERROR;
    }
    if (p->hp.upgrade && !p->complete) {
        fail(p, 400, "upgrade not supported");
        return HTTP1_ERROR;
    }
    return HTTP1_NEED_MORE;
}

/* ---- response heads ------------------------------------------------------------------- */

static char *put_mem(char *d, const char *s, size_t n)
{
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): appends into a head being built */
    memcpy(d, s, n);
    return d + n;
}

static char *put_str(char *d, const char *s)
{
    return put_mem(d, s, strlen(s));
}

#define PUT_LIT(d, lit) put_mem((d), (lit), sizeof(lit) - 1)

static char *put_u64(char *d, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *d++ = tmp[--n];
    return d;
}

static bool header_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int http1_format_head(struct http_buf *b, const struct http_response *resp, int64_t content_length,
                      bool keep_alive)
{
    /* each string is checked and measured once: 0 = left out (CR/LF would split the head) */
    size_t need = 160;
    const char *ct = resp->content_type;
    size_t ct_len = ct && header_ok(ct) ? strlen(ct) : 0;
    size_t n_extra =
        resp->n_extra < HTTP_MAX_EXTRA_HEADERS ? resp->n_extra : HTTP_MAX_EXTRA_HEADERS;
    size_t name_len[HTTP_MAX_EXTRA_HEADERS], value_len[HTTP_MAX_EXTRA_HEADERS];
    need += ct_len;
    for (size_t i = 0; i < n_extra; i++) {
        bool ok = header_ok(resp->extra[i].name) && header_ok(resp->extra[i].value);
        name_len[i] = ok ? strlen(resp->extra[i].name) : 0;
        value_len[i] = ok ? strlen(resp->extra[i].value) : 0;
        need += name_len[i] + value_len[i] + 4;
    }
    int rc = http_buf_reserve(b, need);
    if (rc)
        return rc;
    int status = resp->status >= 100 && resp->status <= 999 ? resp->status : 500;
    char *d = (char *)b->data + b->len;
    d = PUT_LIT(d, "HTTP/1.1 ");
    d = put_u64(d, (uint64_t)status);
    *d++ = ' ';
    d = put_str(d, http_reason(status));
    d = PUT_LIT(d, "\r\nServer: etcd-agent\r\n");
    if (ct_len) {
        d = PUT_LIT(d, "Content-Type: ");
        d = put_mem(d, ct, ct_len);
        d = PUT_LIT(d, "\r\n");
    }
    if (status >= 200 && status != 204 && status != 304) {
        if (content_length >= 0) {
            d = PUT_LIT(d, "Content-Length: ");
            d = put_u64(d, (uint64_t)content_length);
            d = PUT_LIT(d, "\r\n");
        } else {
            d = PUT_LIT(d, "Transfer-Encoding: chunked\r\n");
        }
    }
    if (!keep_alive)
        d = PUT_LIT(d, "Connection: close\r\n");
    for (size_t i = 0; i < n_extra; i++) {
        if (!name_len[i])
            continue;
        d = put_mem(d, resp->extra[i].name, name_len[i]);
        d = PUT_LIT(d, ": ");
        d = put_mem(d, resp->extra[i].value, value_len[i]);
        d = PUT_LIT(d, "\r\n");
    }
    d = PUT_LIT(d, "\r\n");
    b->len = (size_t)(d - (char *)b->data);
    return 0;
}

/* ---- connection glue ------------------------------------------------------------------ */

/* A response that cannot be written at once: a body source, maybe with deferred headers. */
struct h1_stream {
    struct http_response resp;
    struct http_body_source src;
    struct http_body_wakeup wake;
    int64_t sent;
    bool head_sent;
    bool chunked;
    bool is_head;
    bool keep_alive;
    const char *method;
    char path[HTTP_DONE_PATH_MAX];
};

struct http1_conn {
    struct http1_parser *p; /* while a request is being parsed */
    struct h1_stream *cur;  /* streaming response in flight */
    bool want_close;        /* close once the current response is out */
};

/* The server keeps idle parsers (they are big) as scratch blocks. */
static struct http1_parser *h1_parser_get(struct server *srv)
{
    struct http1_parser *p = server_scratch_get(srv, sizeof *p);
    if (p)
        http1_parser_init(p);
    return p;
}

static int h1_init(struct conn *c)
{
    struct http1_conn *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    c->proto_state = h;
    return 0;
}

static void h1_finish(struct conn *c, bool completed);

static void h1_free(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    if (!h)
        return;
    if (h->cur)
        h1_finish(c, false);
    if (h->p)
        server_scratch_put(c->srv, h->p, sizeof *h->p);
    free(h);
    c->proto_state = NULL;
}

static bool h1_blocked(const struct conn *c)
{
    const struct http1_conn *h = c->proto_state;
    return h->cur || h->want_close || c->close_after_flush ||
           http_buf_pending(&c->out) >= SERVER_MAX_OUTPUT;
}

static void h1_error(struct conn *c, int status, const char *msg)
{
    struct http1_conn *h = c->proto_state;
    char body[HTTP_ERROR_BODY_MAX];
    size_t n = http_error_body(body, sizeof body, status, msg);
    struct http_response r = {.status = status, .content_type = HTTP_ERROR_CONTENT_TYPE};
    if (http1_format_head(&c->out, &r, (int64_t)n, false) == 0)
        http_buf_append(&c->out, body, n);
    h->want_close = true;
    c->close_after_flush = true;
    SERVER_COUNT(c->srv, protocol_errors);
    server_done(c->srv, NULL, status, true);
}

static void h1_finish(struct conn *c, bool completed)
{
    struct http1_conn *h = c->proto_state;
    struct h1_stream *st = h->cur;
    h->cur = NULL;
    if (!completed)
        SERVER_COUNT(c->srv, streams_aborted);
    if (st->src.close)
        st->src.close(st->src.ctx, completed);
    /* only now: until close() returned, the source may still queue a wakeup */
    server_wakeup_cancel(&st->wake);
    struct http_request req = {.method = st->method,
                               .path = st->path,
                               .query = "",
                               .version = 11,
                               .tls = c->tls,
                               .client_verified = c->client_verified,
                               .peer = c->peer};
    server_done(c->srv, &req, st->resp.status, completed);
    if (!completed || !st->keep_alive)
        h->want_close = true;
    if (!completed)
        c->close_after_flush = true; /* a short or unterminated body: the client sees an error */
    free(st);
}

/* Pull from the source while the client keeps up. */
static void h1_pump(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    struct h1_stream *st = h->cur;
    if (!st->head_sent) {
        if (st->resp.defer_headers && st->src.headers) {
            int r = st->src.headers(st->src.ctx, &st->resp);
            if (r == HTTP_BODY_AGAIN)
                return;
            if (r != 0) {
                h1_finish(c, false);
                return;
            }
        }
        int status = st->resp.status;
        bool nobody = status < 200 || status == 204 || status == 304;
        st->chunked = st->resp.content_length < 0;
        if (http1_format_head(&c->out, &st->resp, st->resp.content_length, st->keep_alive)) {
            h1_finish(c, false);
            return;
        }
        st->head_sent = true;
        c->progressed = true;
        if (st->is_head || nobody) {
            h1_finish(c, true);
            return;
        }
    }
    while (http_buf_pending(&c->out) + H1_PULL_CHUNK <= SERVER_MAX_OUTPUT) {
        if (http_buf_reserve(&c->out, H1_PULL_CHUNK + 16)) {
            h1_finish(c, false);
            return;
        }
        size_t room = H1_PULL_CHUNK;
        if (!st->chunked && (int64_t)room > st->resp.content_length - st->sent)
            room = (size_t)(st->resp.content_length - st->sent) + 1; /* +1 detects overrun */
        uint8_t *dst = c->out.data + c->out.len + (st->chunked ? 10 : 0);
        ssize_t n = st->src.read(st->src.ctx, dst, room);
        if (n == HTTP_BODY_AGAIN)
            return;
        if (n < 0 || (size_t)n > room) {
            h1_finish(c, false);
            return;
        }
        if (n == 0) {
            if (st->chunked) {
                http_buf_append(&c->out, "0\r\n\r\n", 5);
            } else if (st->sent != st->resp.content_length) {
                h1_finish(c, false); /* source ended early */
                return;
            }
            h1_finish(c, true);
            return;
        }
        if (!st->chunked && st->sent + n > st->resp.content_length) {
            h1_finish(c, false); /* source sent more than announced */
            return;
        }
        if (st->chunked) {
            char *d = (char *)c->out.data + c->out.len;
            hex_put_u64(d, (uint64_t)n, 8);
            d[8] = '\r';
            d[9] = '\n';
            d[10 + n] = '\r';
            d[11 + n] = '\n';
            c->out.len += 12 + (size_t)n;
        } else {
            c->out.len += (size_t)n;
        }
        st->sent += n;
        c->progressed = true;
    }
}

static void h1_start_stream(struct conn *c, struct http_response *resp, bool is_head, bool keep)
{
    struct http1_conn *h = c->proto_state;
    struct h1_stream *st = calloc(1, sizeof *st);
    if (!st) {
        if (resp->source->close)
            resp->source->close(resp->source->ctx, false);
        free(resp->body);
        h1_error(c, 503, "out of memory");
        return;
    }
    /* move the response; extra values that pointed into its storage follow it */
    st->resp = *resp;
    for (size_t i = 0; i < st->resp.n_extra && i < HTTP_MAX_EXTRA_HEADERS; i++) {
        const char *v = resp->extra[i].value;
        if (v >= resp->extra_storage && v < resp->extra_storage + sizeof resp->extra_storage)
            st->resp.extra[i].value = st->resp.extra_storage + (v - resp->extra_storage);
    }
    free(st->resp.body);
    st->resp.body = NULL;
    st->src = *resp->source;
    st->resp.source = &st->src;
    st->is_head = is_head;
    st->keep_alive = keep;
    st->method = h->p->req.method;
    snprintf(st->path, sizeof st->path, "%s", h->p->req.path);
    server_wakeup_init(&st->wake, c, 0);
    h->cur = st;
    if (st->src.attach)
        st->src.attach(st->src.ctx, &st->wake);
    h1_pump(c);
}

static void h1_dispatch(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    struct http1_parser *p = h->p;
    struct server *srv = c->srv;
    const struct server_config *cfg = server_config(srv);
    struct http_request *req = &p->req;
    req->tls = c->tls;
    req->client_verified = c->client_verified;
    req->peer = c->peer;
    bool is_head = p->hp.method == HTTP_HEAD;
    bool keep = p->keep_alive && !server_stopping(srv);

    struct http_response resp;
    memset(&resp, 0, offsetof(struct http_response, extra_storage));
    resp.extra_storage[0] = '\0';
    resp.close = false;
    resp.defer_headers = false;
    resp.content_length = -1;
    SERVER_COUNT(srv, requests_total);
    cfg->handler(cfg->handler_arg, req, &resp);
    if (resp.close)
        keep = false;
    if (resp.source) {
        h1_start_stream(c, &resp, is_head, keep);
        return;
    }
    if (resp.status == 0)
        resp.status = 500;
    const char *body = resp.body ? resp.body : resp.body_ref;
    size_t body_len = body ? resp.body_len : 0;
    if (http1_format_head(&c->out, &resp, (int64_t)body_len, keep) == 0 && !is_head && body_len &&
        resp.status >= 200 && resp.status != 204 && resp.status != 304)
        http_buf_append(&c->out, body, body_len);
    free(resp.body);
    c->progressed = true;
    server_done(srv, req, resp.status, true);
    if (!keep)
        h->want_close = true;
}

static void h1_timer(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    if (h->p && h->p->started && !h->p->head_done)
        server_conn_timer(c, CONN_TIMER_HEADER, false);
    else if (h->cur && http_buf_pending(&c->out) == 0)
        server_conn_timer(c, CONN_TIMER_NONE, false); /* waiting for the source */
    else
        server_conn_timer(c, CONN_TIMER_IDLE, c->progressed);
}

/* Parse and answer requests from data while nothing blocks; returns bytes used. */
static size_t h1_feed(struct conn *c, const uint8_t *data, size_t len)
{
    struct http1_conn *h = c->proto_state;
    size_t used = 0;
    while (used < len && !h1_blocked(c)) {
        if (!h->p) {
            h->p = h1_parser_get(c->srv);
            if (!h->p) {
                h1_error(c, 503, "out of memory");
                break;
            }
        }
        size_t n;
        enum http1_result r = http1_parse(h->p, data + used, len - used, &n);
        used += n;
        if (r == HTTP1_ERROR) {
            h1_error(c, h->p->error_status, h->p->error_msg);
            break;
        }
        if (r == HTTP1_NEED_MORE) {
            if (h->p->head_done && h->p->expect_continue) {
                h->p->expect_continue = false;
                http_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            }
            break;
        }
        h1_dispatch(c);
        http1_parser_next(h->p);
        /* the next request's head gets its own deadline, from its own first byte */
        if (c->timer == CONN_TIMER_HEADER)
            server_conn_timer(c, CONN_TIMER_NONE, false);
    }
    if (h->p && !h->p->started && !h->p->error_status) {
        server_scratch_put(c->srv, h->p, sizeof *h->p);
        h->p = NULL;
    }
    return used;
}

static void h1_after(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    if (h->want_close && !h->cur)
        c->close_after_flush = true;
    c->rd_blocked = h1_blocked(c) || c->stash_len > 0;
    h1_timer(c);
}

static int h1_progress(struct conn *c);

static int h1_on_data(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->stash_len > 0 || h1_blocked(c)) {
        if (server_conn_stash(c, data, len))
            return -ENOMEM;
        return h1_progress(c);
    }
    size_t used = h1_feed(c, data, len);
    if (used < len && !c->close_after_flush && server_conn_stash(c, data + used, len - used))
        return -ENOMEM;
    h1_after(c);
    return 0;
}

static int h1_progress(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    if (h->cur)
        h1_pump(c);
    if (!h1_blocked(c) && c->stash_len > 0) {
        size_t used = h1_feed(c, c->stash, c->stash_len);
        server_conn_unstash(c, c->close_after_flush ? c->stash_len : used);
    }
    h1_after(c);
    return 0;
}

static void h1_wakeup(struct conn *c, int32_t stream_id)
{
    (void)stream_id;
    struct http1_conn *h = c->proto_state;
    if (h && h->cur)
        h1_progress(c);
}

static void h1_stop(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    h->want_close = true;
    /* nothing in flight (a half-received request is not a response to finish): close now */
    if (!h->cur && http_buf_pending(&c->out) == 0)
        server_conn_close(c);
    else
        h1_after(c);
}

static int h1_header_timeout(struct conn *c)
{
    struct http1_conn *h = c->proto_state;
    if (!h->p || !h->p->started)
        return -ETIMEDOUT; /* nothing started: nothing to answer */
    h1_error(c, 408, "request header timeout");
    c->rd_blocked = true;
    server_conn_timer(c, CONN_TIMER_IDLE, true); /* bounded time to take the 408 */
    return 0;
}

static bool h1_idle(const struct conn *c)
{
    const struct http1_conn *h = c->proto_state;
    return !h->cur && !(h->p && h->p->started) && http_buf_pending(&c->out) == 0 &&
           c->stash_len == 0;
}

static bool h1_done(const struct conn *c)
{
    (void)c;
    return false; /* HTTP/1.1 ends through close_after_flush */
}

static enum conn_sniff h1_sniff(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    return CONN_SNIFF_YES; /* the fallback: anything else is parsed (and refused) as HTTP/1.1 */
}

const struct conn_ops http1_conn_ops = {
    .name = "http/1.1",
    .alpn = "http/1.1",
    .sniff = h1_sniff,
    .init = h1_init,
    .free = h1_free,
    .on_data = h1_on_data,
    .progress = h1_progress,
    .wakeup = h1_wakeup,
    .stop = h1_stop,
    .header_timeout = h1_header_timeout,
    .idle = h1_idle,
    .done = h1_done,
};
