/* http2.c - HTTP/2 on one connection through an nghttp2 server session: stream state from
 * on_begin_headers to on_stream_close, header caps, responses pulled from the body or a body
 * source (deferred while it has nothing, trailers at the end, RST_STREAM on abort).
 * Sockets, TLS, timers and the output buffer's flushing: server.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "server_internal.h"
#include "array.h"
#include "bounds.h"

struct h2_stream {
    int32_t id;
    struct h2_stream *prev, *next;
    /* request: strings kept as offsets into store (which may grow) */
    char *store;
    size_t store_len, store_cap;
    uint32_t hname[HTTP_MAX_HEADERS], hvalue[HTTP_MAX_HEADERS];
    size_t n_headers, header_bytes;
    int64_t method, path, authority; /* offsets or -1 */
    int error_status;
    const char *error_msg;
    size_t body_len;
    bool dispatched;
    bool has_host;
    /* response */
    struct http_response resp;
    struct http_body_source src;
    struct http_body_wakeup wake;
    bool has_src;
    bool src_closed;
    bool headers_pending; /* deferred headers not yet known */
    bool deferred;        /* data read returned DEFERRED */
    bool is_head;
    bool eof; /* the whole body was produced */
    size_t body_off;
    int64_t sent;
    char method_s[16];
    char done_path[HTTP_DONE_PATH_MAX];
};

struct http2_conn {
    nghttp2_session *s;
    struct h2_stream *streams;
    size_t n_streams;
    size_t n_waiting; /* streams waiting on their body source */
    bool goaway;
};

static struct h2_stream *stream_get(struct http2_conn *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->s, id);
}

static int64_t store_add(struct h2_stream *st, const uint8_t *p, size_t n)
{
    if (n + 1 > HTTP_REQUEST_STORE_MAX - st->store_len)
        return -1;
    if (st->store_cap - st->store_len < n + 1) {
        size_t cap = st->store_cap ? st->store_cap : 512;
        while (cap - st->store_len < n + 1)
            cap *= 2;
        if (cap > HTTP_REQUEST_STORE_MAX)
            cap = HTTP_REQUEST_STORE_MAX;
        char *d = realloc(st->store, cap);
        if (!d)
            return -1;
        st->store = d;
        st->store_cap = cap;
    }
    int64_t off = (int64_t)st->store_len;
    memcpy(st->store + st->store_len, p, n);
    st->store[st->store_len + n] = '\0';
    st->store_len += n + 1;
    return off;
}

static void stream_set_waiting(struct http2_conn *h, struct h2_stream *st, bool headers,
                               bool deferred)
{
    bool before = st->headers_pending || st->deferred;
    st->headers_pending = headers;
    st->deferred = deferred;
    bool after = headers || deferred;
    if (before && !after)
        h->n_waiting--;
    else if (!before && after)
        h->n_waiting++;
}

static void stream_free(struct conn *c, struct h2_stream *st, bool completed)
{
    struct http2_conn *h = c->proto_state;
    stream_set_waiting(h, st, false, false);
    if (st->has_src && !st->src_closed) {
        st->src_closed = true;
        if (!completed)
            SERVER_COUNT(c->srv, streams_aborted);
        if (st->src.close)
            st->src.close(st->src.ctx, completed);
    }
    /* only now: until close() returned, the source may still queue a wakeup */
    server_wakeup_cancel(&st->wake);
    if (st->dispatched) {
        struct http_request req = {.method = st->method_s,
                                   .path = st->done_path,
                                   .query = "",
                                   .version = 20,
                                   .tls = c->tls,
                                   .client_verified = c->client_verified,
                                   .peer = c->peer};
        server_done(c->srv, &req, st->resp.status, completed);
    }
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->n_streams--;
    free(st->resp.body);
    free(st->store);
    free(st);
}

/* ---- response ------------------------------------------------------------------------- */

static ssize_t data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct conn *c = user_data;
    struct http2_conn *h = c->proto_state;
    struct h2_stream *st = source->ptr;
    if (!st->has_src) {
        size_t n = st->resp.body_len - st->body_off;
        if (n > length)
            n = length;
        memcpy(buf, st->resp.body + st->body_off, n);
        st->body_off += n;
        if (st->body_off == st->resp.body_len) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            st->eof = true;
        }
        return (ssize_t)n;
    }
    ssize_t n = st->src.read(st->src.ctx, buf, length);
    if (n == HTTP_BODY_AGAIN) {
        stream_set_waiting(h, st, false, true);
        return NGHTTP2_ERR_DEFERRED;
    }
    int64_t cl = st->resp.content_length;
    if (n < 0 || (size_t)n > length || (cl >= 0 && st->sent + n > cl) ||
        (n == 0 && cl >= 0 && st->sent != cl))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
    if (n > 0) {
        st->sent += n;
        return n;
    }
    st->eof = true;
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->src.trailers) {
        struct http_header t[H2_MAX_TRAILERS];
        size_t k = st->src.trailers(st->src.ctx, t, H2_MAX_TRAILERS);
        if (k > H2_MAX_TRAILERS)
            k = H2_MAX_TRAILERS;
        nghttp2_nv nv[H2_MAX_TRAILERS];
        char names[H2_MAX_TRAILERS][H2_NAME_MAX];
        size_t m = 0;
        for (size_t i = 0; i < k; i++) {
            size_t nl = strlen(t[i].name);
            if (!t[i].value || nl == 0 || nl >= H2_NAME_MAX)
                continue;
            for (size_t j = 0; j <= nl; j++) {
                char ch = t[i].name[j];
                names[m][j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
            }
            nv[m] = (nghttp2_nv){(uint8_t *)names[m], (uint8_t *)(uintptr_t)t[i].value, nl,
                                 strlen(t[i].value), NGHTTP2_NV_FLAG_NONE};
            m++;
        }
        if (m > 0 && nghttp2_submit_trailer(session, stream_id, nv, m) == 0)
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return 0;
}

static int submit_response(struct conn *c, struct h2_stream *st)
{
    struct http2_conn *h = c->proto_state;
    struct http_response *r = &st->resp;
    nghttp2_nv nv[4 + HTTP_MAX_EXTRA_HEADERS];
    char names[HTTP_MAX_EXTRA_HEADERS][H2_NAME_MAX];
    char status[8], clen[24];
    size_t n = 0;
    if (r->status < 100 || r->status > 999)
        r->status = 500;
    snprintf(status, sizeof status, "%d", r->status);
#define NV(N, V)                                                                                   \
    ((nghttp2_nv){(uint8_t *)(uintptr_t)(N), (uint8_t *)(uintptr_t)(V), strlen(N), strlen(V), 0})
    nv[n++] = NV(":status", status);
    nv[n++] = NV("server", "etcd-agent");
    if (r->content_type && !strpbrk(r->content_type, "\r\n"))
        nv[n++] = NV("content-type", r->content_type);
    bool nobody = r->status < 200 || r->status == 204 || r->status == 304;
    int64_t cl = st->has_src ? r->content_length : (int64_t)r->body_len;
    if (cl >= 0 && !nobody) {
        snprintf(clen, sizeof clen, "%lld", (long long)cl);
        nv[n++] = NV("content-length", clen);
    }
    for (size_t i = 0, m = 0; i < r->n_extra && i < HTTP_MAX_EXTRA_HEADERS; i++) {
        const char *name = r->extra[i].name, *val = r->extra[i].value;
        size_t nl = name ? strlen(name) : 0;
        if (nl == 0 || nl >= H2_NAME_MAX || !val || strpbrk(val, "\r\n"))
            continue;
        for (size_t j = 0; j <= nl; j++) {
            char ch = name[j];
            names[m][j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        /* hop-by-hop headers are not allowed in HTTP/2 */
        if (strcmp(names[m], "connection") == 0 || strcmp(names[m], "transfer-encoding") == 0 ||
            strcmp(names[m], "keep-alive") == 0)
            continue;
        nv[n++] = NV(names[m], val);
        m++;
    }
#undef NV
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read};
    bool body = !st->is_head && !nobody && (st->has_src || r->body_len > 0);
    if (!body)
        st->eof = true; /* nothing more to produce; HEAD sources end here */
    int rv = nghttp2_submit_response(h->s, st->id, nv, n, body ? &prd : NULL);
    return rv == 0 ? 0 : -1;
}

static void respond_error(struct conn *c, struct h2_stream *st, int status, const char *msg)
{
    char body[HTTP_ERROR_BODY_MAX];
    size_t n = http_error_body(body, sizeof body, status, msg);
    st->dispatched = true;
    snprintf(st->method_s, sizeof st->method_s, "%s",
             st->method >= 0 ? st->store + st->method : "");
    if (http_response_set_body(&st->resp, status, HTTP_ERROR_CONTENT_TYPE, body, n) == 0)
        submit_response(c, st);
    else
        nghttp2_submit_rst_stream(((struct http2_conn *)c->proto_state)->s, NGHTTP2_FLAG_NONE,
                                  st->id, NGHTTP2_INTERNAL_ERROR);
    SERVER_COUNT(c->srv, protocol_errors);
}

/* Deferred headers: ask the source; 1 = still waiting, 0 = submitted, -1 = dropped. */
static int try_headers(struct conn *c, struct h2_stream *st)
{
    struct http2_conn *h = c->proto_state;
    int r = st->src.headers ? st->src.headers(st->src.ctx, &st->resp) : 0;
    if (r == HTTP_BODY_AGAIN) {
        stream_set_waiting(h, st, true, false);
        return 1;
    }
    stream_set_waiting(h, st, false, false);
    if (r != 0 || submit_response(c, st) != 0) {
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return -1;
    }
    return 0;
}

static void dispatch(struct conn *c, struct h2_stream *st)
{
    struct server *srv = c->srv;
    const struct server_config *cfg = server_config(srv);
    st->dispatched = true;
    if (st->error_status) {
        respond_error(c, st, st->error_status, st->error_msg);
        return;
    }
    if (st->method < 0 || st->path < 0) {
        respond_error(c, st, 400, "missing :method or :path");
        return;
    }
    const char *method = st->store + st->method;
    snprintf(st->method_s, sizeof st->method_s, "%s", method);
    struct http_header hdrs[HTTP_MAX_HEADERS + 1];
    size_t nh = 0;
    for (size_t i = 0; i < st->n_headers; i++)
        hdrs[nh++] = (struct http_header){st->store + st->hname[i], st->store + st->hvalue[i]};
    if (!st->has_host && st->authority >= 0)
        hdrs[nh++] = (struct http_header){"host", st->store + st->authority};
    const char *path, *query;
    if (http_split_target(st->store + st->path, &path, &query) != 0) {
        respond_error(c, st, 400, "bad request target");
        return;
    }
    snprintf(st->done_path, sizeof st->done_path, "%s", path);
    struct http_request req = {.method = method,
                               .path = path,
                               .query = query,
                               .headers = hdrs,
                               .n_headers = nh,
                               .version = 20,
                               .tls = c->tls,
                               .client_verified = c->client_verified,
                               .peer = c->peer};
    st->is_head = strcmp(method, "HEAD") == 0;
    st->resp.content_length = -1;
    SERVER_COUNT(srv, requests_total);
    SERVER_COUNT(srv, requests_h2);
    cfg->handler(cfg->handler_arg, &req, &st->resp);
    if (st->resp.status == 0)
        st->resp.status = 500;
    if (!st->resp.body && st->resp.body_ref && st->resp.body_len && !st->resp.source) {
        /* borrowed bytes: the stream sends them later, so it keeps its own copy */
        st->resp.body = malloc(st->resp.body_len);
        if (!st->resp.body) {
            respond_error(c, st, 503, "out of memory");
            return;
        }
        memcpy(st->resp.body, st->resp.body_ref, st->resp.body_len);
    }
    st->resp.body_ref = NULL;
    if (!st->resp.body)
        st->resp.body_len = 0;
    if (st->resp.source) {
        st->src = *st->resp.source;
        st->resp.source = &st->src;
        st->has_src = true;
        free(st->resp.body);
        st->resp.body = NULL;
        st->resp.body_len = 0;
        server_wakeup_init(&st->wake, c, st->id);
        if (st->src.attach)
            st->src.attach(st->src.ctx, &st->wake);
        if (st->resp.defer_headers) {
            try_headers(c, st);
            return;
        }
    }
    if (submit_response(c, st) != 0)
        nghttp2_submit_rst_stream(((struct http2_conn *)c->proto_state)->s, NGHTTP2_FLAG_NONE,
                                  st->id, NGHTTP2_INTERNAL_ERROR);
}

/* ---- nghttp2 callbacks ---------------------------------------------------------------- */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct conn *c = user_data;
    (void)session;
    (void)flags;
    if (http_buf_pending(&c->out) >= SERVER_MAX_OUTPUT)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (http_buf_append(&c->out, data, length))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    c->progressed = true;
    return (ssize_t)length;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    struct http2_conn *h = c->proto_state;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->id = frame->hd.stream_id;
    st->method = st->path = st->authority = -1;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->n_streams++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct conn *c = user_data;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    (void)c;
    if (!st || st->error_status)
        return 0;
    if (namelen > 0 && name[0] == ':') {
        int64_t *slot = NULL;
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            slot = &st->method;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            slot = &st->path;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            slot = &st->authority;
        if (slot == &st->path && valuelen > HTTP_MAX_REQUEST_LINE) {
            st->error_status = 414;
            st->error_msg = "request line too long";
            return 0;
        }
        if (valuelen > HTTP_MAX_HEADER_BYTES || st->header_bytes + valuelen + namelen + 4 >
                                                    HTTP_MAX_HEADER_BYTES + HTTP_MAX_REQUEST_LINE) {
            st->error_status = 431;
            st->error_msg = "request header fields too large";
            return 0;
        }
        st->header_bytes += valuelen + namelen + 4;
        if (slot && *slot < 0 && (*slot = store_add(st, value, valuelen)) < 0) {
            st->error_status = 431;
            st->error_msg = "request header fields too large";
        }
        return 0;
    }
    if (st->n_headers >= HTTP_MAX_HEADERS) {
        st->error_status = 431;
        st->error_msg = "too many header fields";
        return 0;
    }
    if (namelen + valuelen + 4 > HTTP_MAX_HEADER_BYTES ||
        st->header_bytes + namelen + valuelen + 4 > HTTP_MAX_HEADER_BYTES + HTTP_MAX_REQUEST_LINE) {
        st->error_status = 431;
        st->error_msg = "request header fields too large";
        return 0;
    }
    st->header_bytes += namelen + valuelen + 4;
    int64_t n = store_add(st, name, namelen), v = n >= 0 ? store_add(st, value, valuelen) : -1;
    if (n < 0 || v < 0) {
        st->error_status = 431;
        st->error_msg = "request header fields too large";
        return 0;
    }
    if (namelen == 4 && memcmp(name, "host", 4) == 0)
        st->has_host = true;
    st->hname[st->n_headers] = (uint32_t)n;
    st->hvalue[st->n_headers] = (uint32_t)v;
    st->n_headers++;
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!st || st->dispatched)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        dispatch(c, st);
    else if (frame->hd.type == NGHTTP2_HEADERS && st->error_status)
        respond_error(c, st, st->error_status, st->error_msg);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct conn *c = user_data;
    (void)flags;
    (void)data;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st || st->dispatched)
        return 0;
    st->body_len += len; /* counted, not kept: handlers need no bodies */
    if (st->body_len > SERVER_MAX_REQUEST_BODY)
        respond_error(c, st, 413, "request body too large");
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct conn *c = user_data;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(c, st, st->eof && error_code == NGHTTP2_NO_ERROR);
    return 0;
}

/* ---- connection glue ------------------------------------------------------------------ */

static int h2_init(struct conn *c)
{
    struct http2_conn *h = calloc(1, sizeof *h);
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    int rc = -ENOMEM;
    if (!h || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    if (nghttp2_session_server_new2(&h->s, cb, c, opt) != 0)
        goto out;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, SERVER_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HTTP_MAX_HEADER_BYTES + HTTP_MAX_REQUEST_LINE},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) != 0) {
        nghttp2_session_del(h->s);
        goto out;
    }
    c->proto_state = h;
    h = NULL;
    rc = 0;
out:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    free(h);
    return rc;
}

static void h2_free(struct conn *c)
{
    struct http2_conn *h = c->proto_state;
    if (!h)
        return;
    while (h->streams) {
        struct h2_stream *st = h->streams;
        /* The analyzer assumes the list head has a prev (it never does: stream_free unlinks
         * the head by moving h->streams on), so it sees st freed twice. */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        nghttp2_session_set_stream_user_data(h->s, st->id, NULL);
        stream_free(c, st, false);
    }
    nghttp2_session_del(h->s);
    free(h);
    c->proto_state = NULL;
}

static int h2_progress(struct conn *c)
{
    struct http2_conn *h = c->proto_state;
    if (nghttp2_session_send(h->s) != 0)
        return -EPROTO;
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s))
        c->close_after_flush = true;
    c->rd_blocked = http_buf_pending(&c->out) >= SERVER_MAX_OUTPUT;
    if (h->n_streams > 0 && h->n_waiting == h->n_streams && http_buf_pending(&c->out) == 0)
        server_conn_timer(c, CONN_TIMER_NONE, false); /* every stream waits on its source */
    else
        server_conn_timer(c, CONN_TIMER_IDLE, c->progressed);
    return 0;
}

static int h2_on_data(struct conn *c, const uint8_t *data, size_t len)
{
    struct http2_conn *h = c->proto_state;
    ssize_t rv = nghttp2_session_mem_recv(h->s, data, len);
    if (rv < 0) {
        SERVER_COUNT(c->srv, protocol_errors);
        return -EPROTO;
    }
    return h2_progress(c);
}

static void h2_wakeup(struct conn *c, int32_t stream_id)
{
    struct http2_conn *h = c->proto_state;
    if (!h)
        return;
    struct h2_stream *st = stream_get(h, stream_id);
    if (!st)
        return;
    if (st->headers_pending) {
        try_headers(c, st);
    } else if (st->deferred) {
        stream_set_waiting(h, st, false, false);
        nghttp2_session_resume_data(h->s, stream_id);
    }
}

static void h2_stop(struct conn *c)
{
    struct http2_conn *h = c->proto_state;
    if (h->goaway)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

static bool h2_done(const struct conn *c)
{
    const struct http2_conn *h = c->proto_state;
    return !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s);
}

static bool h2_idle(const struct conn *c)
{
    const struct http2_conn *h = c->proto_state;
    return h->n_streams == 0 && http_buf_pending(&c->out) == 0;
}

static int h2_header_timeout(struct conn *c)
{
    (void)c;
    return -ETIMEDOUT; /* only armed before the preface completed: nothing to answer */
}

/* Cleartext HTTP/2 starts with the client preface (RFC 9113 section 3.4). */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static enum conn_sniff h2_sniff(const uint8_t *data, size_t len)
{
    size_t n = len < sizeof h2_preface - 1 ? len : sizeof h2_preface - 1;
    if (memcmp(data, h2_preface, n) != 0)
        return CONN_SNIFF_NO;
    return n < sizeof h2_preface - 1 ? CONN_SNIFF_MORE : CONN_SNIFF_YES;
}

const struct conn_ops http2_conn_ops = {
    .name = "h2",
    .alpn = "h2",
    .sniff = h2_sniff,
    .init = h2_init,
    .free = h2_free,
    .on_data = h2_on_data,
    .progress = h2_progress,
    .wakeup = h2_wakeup,
    .stop = h2_stop,
    .header_timeout = h2_header_timeout,
    .idle = h2_idle,
    .done = h2_done,
};
