/* test_server.c - the agent's HTTP server end to end on 127.0.0.1:0 in a thread, driven with raw
 * sockets and the curl CLI: keep-alive, pipelining, HTTP/1.0, h2c, h2 and HTTP/1.1 over TLS with
 * client certificates (certs made with the openssl CLI in a temp dir), malformed and oversized
 * requests, slowloris, 1,000 idle connections, body sources from another thread (complete,
 * aborted, deferred headers, trailers, slow and vanished clients), max connections, graceful
 * stop. The parser layer alone is test_http1.c's. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "server.h"
#include "tls.h"

#define WAIT_MS 20000 /* generous: the machine is shared */

static char g_dir[256];
static char g_curl_tls[1024]; /* curl options for the TLS listener with the client cert */

/* ---- time / waiting ------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- a body source fed by another thread --------------------------------------------- */

#define SRC_RING (64 * 1024)

struct tsrc {
    pthread_mutex_t mu;
    pthread_t th;
    struct http_body_wakeup *w;
    uint8_t ring[SRC_RING];
    size_t len;
    uint64_t total, produced, consumed;
    int64_t abort_at;
    int delay_ms; /* between chunks */
    size_t chunk;
    bool trailers;
    bool defer;
    bool content_length;
    bool stop;
    int close_calls;
    bool completed;
};

static pthread_mutex_t g_src_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tsrc *g_src; /* the latest source; tests take it with take_src() */

static void *producer(void *arg)
{
    struct tsrc *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (s->stop || s->produced >= s->total) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        size_t room = SRC_RING - s->len;
        size_t n = s->chunk < room ? s->chunk : room;
        if (n > s->total - s->produced)
            n = (size_t)(s->total - s->produced);
        for (size_t i = 0; i < n; i++)
            s->ring[s->len + i] = (uint8_t)((s->produced + i) % 251);
        s->len += n;
        s->produced += n;
        /* wake under our lock: close() takes it too, so w is valid here */
        if (s->w && (n > 0 || s->produced >= s->total))
            http_body_wakeup(s->w);
        pthread_mutex_unlock(&s->mu);
        sleep_ms(n == 0 ? 1 : s->delay_ms);
    }
    pthread_mutex_lock(&s->mu);
    if (s->w)
        http_body_wakeup(s->w); /* EOF */
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static ssize_t src_read(void *ctx, uint8_t *buf, size_t len)
{
    struct tsrc *s = ctx;
    ssize_t r;
    pthread_mutex_lock(&s->mu);
    if (s->abort_at >= 0 && s->consumed >= (uint64_t)s->abort_at) {
        r = HTTP_BODY_ABORT;
    } else if (s->len == 0) {
        r = s->produced >= s->total ? 0 : HTTP_BODY_AGAIN;
    } else {
        size_t n = s->len < len ? s->len : len;
        if (s->abort_at >= 0 && n > (uint64_t)s->abort_at - s->consumed)
            n = (size_t)((uint64_t)s->abort_at - s->consumed);
        memcpy(buf, s->ring, n);
        memmove(s->ring, s->ring + n, s->len - n);
        s->len -= n;
        s->consumed += n;
        r = (ssize_t)n;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

static size_t src_trailers(void *ctx, struct http_header *out, size_t max)
{
    struct tsrc *s = ctx;
    if (!s->trailers || max < 1)
        return 0;
    out[0].name = "X-Test-Trailer";
    out[0].value = "done";
    return 1;
}

static void src_close(void *ctx, bool completed)
{
    struct tsrc *s = ctx;
    pthread_mutex_lock(&s->mu);
    /* a producer racing with close() may still wake the stream right up to here; do it every
     * time so a server that forgets a queued wakeup of a freed stream fails under ASan */
    if (s->w)
        http_body_wakeup(s->w);
    s->close_calls++;
    s->completed = completed;
    s->w = NULL;
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
}

static void src_attach(void *ctx, struct http_body_wakeup *w)
{
    struct tsrc *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->w = w;
    pthread_mutex_unlock(&s->mu);
}

static int src_headers(void *ctx, struct http_response *resp)
{
    struct tsrc *s = ctx;
    pthread_mutex_lock(&s->mu);
    bool ready = s->produced > 0;
    pthread_mutex_unlock(&s->mu);
    if (!ready)
        return HTTP_BODY_AGAIN;
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->content_length = s->content_length ? (int64_t)s->total : -1;
    http_response_add_header(resp, "X-Deferred", "yes");
    return 0;
}

static struct http_body_source g_src_ops; /* copied by the server */

static uint64_t qnum(const struct http_request *req, const char *key, uint64_t def)
{
    char v[32];
    if (!http_query_param(req, key, v, sizeof v))
        return def;
    return strtoull(v, NULL, 10);
}

static void start_source(const struct http_request *req, struct http_response *resp)
{
    struct tsrc *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->total = qnum(req, "total", 100000);
    s->abort_at = http_query_param(req, "abort", NULL, 0) ? (int64_t)qnum(req, "abort", 0) : -1;
    s->delay_ms = (int)qnum(req, "delay", 0);
    s->chunk = (size_t)qnum(req, "chunk", 16384);
    s->trailers = http_query_param(req, "trailers", NULL, 0);
    s->defer = http_query_param(req, "defer", NULL, 0);
    s->content_length = qnum(req, "cl", 1) != 0;
    pthread_mutex_lock(&g_src_mu);
    assert_null(g_src); /* one at a time */
    g_src = s;
    pthread_mutex_unlock(&g_src_mu);
    g_src_ops = (struct http_body_source){.read = src_read,
                                          .trailers = src_trailers,
                                          .close = src_close,
                                          .attach = src_attach,
                                          .headers = src_headers,
                                          .ctx = s};
    resp->source = &g_src_ops;
    if (s->defer) {
        resp->defer_headers = true;
    } else {
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->content_length = s->content_length ? (int64_t)s->total : -1;
    }
    assert_int_equal(pthread_create(&s->th, NULL, producer, s), 0);
}

/* Wait until the current source was closed; returns it (caller frees with free_src). */
static struct tsrc *take_src(void)
{
    int64_t end = clock_mono_ms() + WAIT_MS;
    for (;;) {
        pthread_mutex_lock(&g_src_mu);
        struct tsrc *s = g_src;
        int calls = 0;
        if (s) {
            pthread_mutex_lock(&s->mu);
            calls = s->close_calls;
            pthread_mutex_unlock(&s->mu);
        }
        if (s && calls > 0) {
            g_src = NULL;
            pthread_mutex_unlock(&g_src_mu);
            pthread_join(s->th, NULL);
            sleep_ms(20); /* a second close() would show up here */
            return s;
        }
        pthread_mutex_unlock(&g_src_mu);
        assert_true(clock_mono_ms() < end);
        sleep_ms(5);
    }
}

static uint64_t src_consumed(void)
{
    uint64_t c = 0;
    pthread_mutex_lock(&g_src_mu);
    if (g_src) {
        pthread_mutex_lock(&g_src->mu);
        c = g_src->consumed;
        pthread_mutex_unlock(&g_src->mu);
    }
    pthread_mutex_unlock(&g_src_mu);
    return c;
}

static void free_src(struct tsrc *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- handler ------------------------------------------------------------------------- */

/* /ref: a borrowed body (body_ref) in one buffer that each call overwrites: first with 0xff,
 * then with the h2c pattern (byte i = i % 251) for a length that shrinks with every call. A
 * server that sent the buffer after the next handler call would send 0xff bytes. */
#define REF_BUF 8192
static char g_ref[REF_BUF];
static unsigned g_ref_calls;

static void ref_handler(struct http_response *resp)
{
    size_t n = REF_BUF - 100 * (g_ref_calls++ % 50);
    memset(g_ref, 0xff, sizeof g_ref); /* 255: never in the pattern */
    for (size_t i = 0; i < n; i++)
        g_ref[i] = (char)(i % 251);
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->body_ref = g_ref;
    resp->body_len = n;
}

static void handler(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)arg;
    if (strcmp(req->path, "/ref") == 0) {
        ref_handler(resp);
    } else if (strcmp(req->path, "/hello") == 0) {
        http_response_set_body(resp, 200, "text/plain", "hello\n", 6);
    } else if (strcmp(req->path, "/whoami") == 0) {
        char b[128];
        int n = snprintf(b, sizeof b, "%s %s %d", req->client_verified ? "verified" : "anonymous",
                         req->tls ? "tls" : "plain", req->version);
        http_response_set_body(resp, 200, "text/plain", b, (size_t)n);
    } else if (strcmp(req->path, "/echo") == 0) {
        char b[512];
        const char *h = http_request_header(req, "x-echo");
        int n =
            snprintf(b, sizeof b, "%s %s?%s %s", req->method, req->path, req->query, h ? h : "-");
        http_response_set_body(resp, 200, "text/plain", b, (size_t)n);
    } else if (strcmp(req->path, "/close") == 0) {
        http_response_set_body(resp, 200, "text/plain", "bye", 3);
        resp->close = true;
    } else if (strcmp(req->path, "/big") == 0) {
        size_t n = 1u << 20;
        char *b = malloc(n);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)('a' + i % 26);
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->body = b;
        resp->body_len = n;
    } else if (strcmp(req->path, "/stream") == 0) {
        start_source(req, resp);
    } else {
        http_response_set_body(resp, 404, "application/json", "{\"error\":\"not found\"}", 21);
        http_response_add_header(resp, "X-Extra", "1");
    }
}

/* ---- server in a thread -------------------------------------------------------------- */

struct tserver {
    struct server *srv;
    pthread_t th;
    int port, tls_port;
    int rc;
    bool running;
};

static void *run_thread(void *arg)
{
    struct tserver *ts = arg;
    ts->rc = server_run(ts->srv);
    return NULL;
}

static void start(struct tserver *ts, struct server_config *cfg)
{
    char err[256];
    cfg->handler = handler;
    ts->srv = server_new(cfg, err, sizeof err);
    if (!ts->srv)
        fail_msg("server_new: %s", err);
    ts->port = server_port(ts->srv, false);
    ts->tls_port = server_port(ts->srv, true);
    assert_int_equal(pthread_create(&ts->th, NULL, run_thread, ts), 0);
    ts->running = true;
}

static void stop(struct tserver *ts, unsigned grace)
{
    if (!ts->running)
        return;
    server_stop_graceful(ts->srv, grace);
    pthread_join(ts->th, NULL);
    ts->running = false;
    assert_int_equal(ts->rc, 0);
    server_free(ts->srv);
    ts->srv = NULL;
}

static struct tserver g_srv;
static struct tls_ctx *g_tls;

/* ---- sockets ------------------------------------------------------------------------- */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -errno;
    }
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

struct rconn {
    int fd;
    char *buf;
    size_t len, cap;
};

static void rc_open(struct rconn *rc, int port)
{
    rc->fd = tcp_connect(port);
    assert_true(rc->fd >= 0);
    rc->cap = 4u << 20;
    rc->buf = malloc(rc->cap);
    rc->len = 0;
    assert_non_null(rc->buf);
}

static void rc_close(struct rconn *rc)
{
    if (rc->fd >= 0)
        close(rc->fd);
    rc->fd = -1;
    free(rc->buf);
    rc->buf = NULL;
}

/* Read more; returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t rc_fill(struct rconn *rc)
{
    assert_true(rc->len < rc->cap);
    ssize_t n = recv(rc->fd, rc->buf + rc->len, rc->cap - rc->len, 0);
    if (n > 0)
        rc->len += (size_t)n;
    return n;
}

struct resp {
    int status;
    char head[2048];
    size_t body_len;
    char body[2048]; /* first bytes */
};

/* Read one HTTP/1.1 response with Content-Length (or none for HEAD). Returns 0, -1 on EOF. */
static int rc_response(struct rconn *rc, struct resp *r, bool head)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(rc->len > 0 && (end = memmem(rc->buf, rc->len, "\r\n\r\n", 4)))) {
        if (rc_fill(rc) <= 0)
            return -1;
    }
    size_t hlen = (size_t)(end - rc->buf) + 4;
    assert_true(hlen < sizeof r->head);
    memcpy(r->head, rc->buf, hlen);
    r->head[hlen] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    size_t blen = 0;
    if (cl)
        blen = strtoull(cl + 18, NULL, 10);
    if (head)
        blen = 0;
    while (rc->len < hlen + blen)
        if (rc_fill(rc) <= 0)
            return -1;
    r->body_len = blen;
    memcpy(r->body, rc->buf + hlen, blen < sizeof r->body - 1 ? blen : sizeof r->body - 1);
    memmove(rc->buf, rc->buf + hlen + blen, rc->len - hlen - blen);
    rc->len -= hlen + blen;
    return 0;
}

/* True when the server closed the connection (EOF or reset) within WAIT_MS. */
static bool rc_wait_eof(struct rconn *rc)
{
    for (;;) {
        if (rc->len == rc->cap)
            rc->len = 0;
        ssize_t n = rc_fill(rc);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
}

/* ---- curl ---------------------------------------------------------------------------- */

/* Runs curl with args; stdout (the -w output) into out. Returns curl's exit code. */
static int curl(char *out, size_t out_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int curl(char *out, size_t out_len, const char *fmt, ...)
{
    char args[16384], cmd[16600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 60 %s 2>/dev/null", args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static bool file_has_pattern(const char *path, long len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    long i = 0;
    int ch;
    bool ok = true;
    while ((ch = fgetc(f)) != EOF) {
        if (ch != (int)(i % 251)) {
            ok = false;
            break;
        }
        i++;
    }
    fclose(f);
    return ok && i == len;
}

static bool file_contains(const char *path, const char *needle)
{
    char buf[65536];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcasestr(buf, needle) != NULL;
}

/* ---- a minimal nghttp2 client (curl's CLI shows no HTTP/2 trailers and cannot reuse an
 * h2c prior-knowledge connection in 7.88) ------------------------------------------------ */

#define H2C_MAX 8

struct h2c_stream {
    int32_t id;
    int status;
    uint64_t body;
    bool pattern_ok;
    bool closed;
    uint32_t error_code;
    char trailer[128]; /* "name: value" of the first trailer */
};

struct h2c {
    int fd;
    nghttp2_session *s;
    struct h2c_stream st[H2C_MAX];
    int n;
};

static struct h2c_stream *h2c_find(struct h2c *c, int32_t id)
{
    for (int i = 0; i < c->n; i++)
        if (c->st[i].id == id)
            return &c->st[i];
    return NULL;
}

static ssize_t h2c_send(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *u)
{
    (void)s;
    (void)flags;
    struct h2c *c = u;
    ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL);
    return w < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : w;
}

static int h2c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *u)
{
    (void)s;
    (void)flags;
    struct h2c_stream *st = h2c_find(u, f->hd.stream_id);
    if (!st)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        st->status = (int)strtol((const char *)value, NULL, 10);
    else if (f->headers.cat == NGHTTP2_HCAT_HEADERS && !st->trailer[0])
        snprintf(st->trailer, sizeof st->trailer, "%.*s: %.*s", (int)namelen, name, (int)valuelen,
                 value);
    return 0;
}

static int h2c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                    void *u)
{
    (void)s;
    (void)flags;
    struct h2c_stream *st = h2c_find(u, id);
    if (!st)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] != (uint8_t)((st->body + i) % 251))
            st->pattern_ok = false;
    st->body += n;
    return 0;
}

static int h2c_close(nghttp2_session *s, int32_t id, uint32_t err, void *u)
{
    (void)s;
    struct h2c_stream *st = h2c_find(u, id);
    if (st) {
        st->closed = true;
        st->error_code = err;
    }
    return 0;
}

static void h2c_open(struct h2c *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = tcp_connect(port);
    assert_true(c->fd >= 0);
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_send_callback(cb, h2c_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_close);
    assert_int_equal(nghttp2_session_client_new(&c->s, cb, c), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    assert_int_equal(nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1), 0);
}

static struct h2c_stream *h2c_get(struct h2c *c, const char *path)
{
    assert_true(c->n < H2C_MAX);
#define CNV(N, V) {(uint8_t *)(uintptr_t)(N), (uint8_t *)(uintptr_t)(V), strlen(N), strlen(V), 0}
    nghttp2_nv nv[] = {CNV(":method", "GET"), CNV(":scheme", "http"),
                       CNV(":authority", "127.0.0.1"), CNV(":path", path)};
#undef CNV
    int32_t id = nghttp2_submit_request(c->s, NULL, nv, 4, NULL, NULL);
    assert_true(id > 0);
    struct h2c_stream *st = &c->st[c->n++];
    memset(st, 0, sizeof *st);
    st->id = id;
    st->pattern_ok = true;
    return st;
}

/* Run until every stream closed (or the connection ended). */
static void h2c_run(struct h2c *c)
{
    uint8_t buf[65536];
    int64_t end = clock_mono_ms() + WAIT_MS;
    for (;;) {
        assert_int_equal(nghttp2_session_send(c->s), 0);
        bool all = true;
        for (int i = 0; i < c->n; i++)
            all = all && c->st[i].closed;
        if (all)
            return;
        assert_true(clock_mono_ms() < end);
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n <= 0)
            return;
        assert_true(nghttp2_session_mem_recv(c->s, buf, (size_t)n) == n);
    }
}

static void h2c_close_conn(struct h2c *c)
{
    nghttp2_session_del(c->s);
    close(c->fd);
}

/* ---- setup --------------------------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int make_certs(const char *d)
{
    return sh("cd '%s' && {"
              " K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
              " openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca &&"
              " openssl req -x509 $K -keyout other.key -out other.crt -days 2 -subj /CN=other &&"
              " openssl req $K -keyout srv.key -out srv.csr -subj /CN=localhost &&"
              " printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n'"
              "   > srv.ext &&"
              " openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
              "   -extfile srv.ext -out srv.crt &&"
              " openssl req $K -keyout cli.key -out cli.csr -subj /CN=client &&"
              " printf 'extendedKeyUsage=clientAuth\\n' > cli.ext &&"
              " openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
              "   -extfile cli.ext -out cli.crt &&"
              " openssl req $K -keyout bad.key -out bad.csr -subj /CN=intruder &&"
              " openssl x509 -req -in bad.csr -CA other.crt -CAkey other.key -CAcreateserial"
              "   -days 2 -extfile cli.ext -out bad.crt; } >/dev/null 2>&1",
              d);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/test_server.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    if (make_certs(g_dir) != 0) {
        fprintf(stderr, "openssl failed\n");
        sh("rm -rf '%s'", g_dir);
        return -1;
    }
    char ca[300], crt[300], key[300], err[256];
    snprintf(ca, sizeof ca, "%s/ca.crt", g_dir);
    snprintf(crt, sizeof crt, "%s/srv.crt", g_dir);
    snprintf(key, sizeof key, "%s/srv.key", g_dir);
    struct tls_files files = {.ca_file = ca, .cert_file = crt, .key_file = key};
    g_tls = tls_server_new(&files, err, sizeof err);
    if (!g_tls) {
        fprintf(stderr, "tls_server_new: %s\n", err);
        sh("rm -rf '%s'", g_dir);
        return -1;
    }
    snprintf(g_curl_tls, sizeof g_curl_tls, "--cacert %s/ca.crt --cert %s/cli.crt --key %s/cli.key",
             g_dir, g_dir, g_dir);
    struct server_config cfg = {.listen = "127.0.0.1:0",
                                .tls_listen = "127.0.0.1:0",
                                .tls = g_tls,
                                .header_timeout_ms = 2000};
    start(&g_srv, &cfg);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stop(&g_srv, 2000);
    tls_ctx_free(g_tls);
    if (g_dir[0])
        sh("rm -rf '%s'", g_dir);
    return 0;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_keepalive(void **state)
{
    (void)state;
    struct rconn rc;
    rc_open(&rc, g_srv.port);
    struct resp r;
    for (int i = 0; i < 5; i++) {
        send_str(rc.fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(rc_response(&rc, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello\n");
        assert_non_null(strstr(r.head, "Content-Type: text/plain\r\n"));
        assert_non_null(strstr(r.head, "Server: etcd-agent\r\n"));
        assert_null(strstr(r.head, "Connection: close"));
    }
    /* a large body on the same connection, then one more small one */
    send_str(rc.fd, "GET /big HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.body_len, 1u << 20);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"not found\"}");
    assert_non_null(strstr(r.head, "X-Extra: 1\r\n"));
    rc_close(&rc);
}

static void test_pipelining(void **state)
{
    (void)state;
    struct rconn rc;
    rc_open(&rc, g_srv.port);
    char reqs[4096];
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(reqs + n, sizeof reqs - n,
                              i == 7 ? "HEAD /hello HTTP/1.1\r\n\r\n"
                                     : "GET /echo?i=%d HTTP/1.1\r\nX-Echo: v%d\r\n\r\n",
                              i, i);
    send_all(rc.fd, reqs, n);
    struct resp r;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rc_response(&rc, &r, i == 7), 0);
        assert_int_equal(r.status, 200);
        if (i == 7) {
            assert_non_null(strstr(r.head, "Content-Length: 6\r\n")); /* HEAD: length, no body */
            continue;
        }
        char want[64];
        snprintf(want, sizeof want, "GET /echo?i=%d v%d", i, i);
        assert_string_equal(r.body, want);
    }
    /* a streamed response in the middle of a pipeline keeps the order */
    send_str(
        rc.fd,
        "GET /stream?total=300000&chunk=1000 HTTP/1.1\r\n\r\nGET /echo?after HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.body_len, 300000);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_string_equal(r.body, "GET /echo?after -");
    free_src(take_src());
    /* borrowed bodies (body_ref), pipelined: each answer has its own length and bytes */
    unsigned first = g_ref_calls;
    send_str(rc.fd, "GET /ref HTTP/1.1\r\n\r\nGET /ref HTTP/1.1\r\n\r\nGET /ref HTTP/1.1\r\n\r\n");
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(rc_response(&rc, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, REF_BUF - 100 * ((first + i) % 50));
        assert_null(memchr(r.body, 0xff, r.body_len < sizeof r.body ? r.body_len : sizeof r.body));
    }
    /* the last one asks to close */
    send_str(rc.fd, "GET /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
                    "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(rc_wait_eof(&rc));
    assert_int_equal(rc.len, 0); /* nothing for the request after close */
    rc_close(&rc);
}

static void test_http10_and_close(void **state)
{
    (void)state;
    struct rconn rc;
    struct resp r;
    rc_open(&rc, g_srv.port);
    send_str(rc.fd, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);

    rc_open(&rc, g_srv.port);
    send_str(rc.fd, "GET /close HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_string_equal(r.body, "bye");
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);

    /* half-close after sending: responses still arrive */
    rc_open(&rc, g_srv.port);
    send_str(rc.fd, "GET /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    shutdown(rc.fd, SHUT_WR);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);
}

static void expect_error(const char *req, size_t len, int status)
{
    struct rconn rc;
    struct resp r;
    rc_open(&rc, g_srv.port);
    send_all(rc.fd, req, len);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.status, status);
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(r.body, "{\"error\":\""));
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);
}

static void test_malformed_and_limits(void **state)
{
    (void)state;
    struct server_stats before, after;
    server_stats(g_srv.srv, &before);
    expect_error("garbage\r\n\r\n", 11, 400);
    expect_error("GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", 28, 400);
    expect_error("GET / HTTP/3.0\r\n\r\n", 18, 505);
    size_t big = HTTP_MAX_HEADER_BYTES + 100;
    char *req = malloc(big + 64);
    assert_non_null(req);
    int n = snprintf(req, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'b', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    expect_error(req, (size_t)n + big + 4, 431);
    n = snprintf(req, 64, "GET /");
    memset(req + n, 'u', HTTP_MAX_REQUEST_LINE + 10);
    memcpy(req + n + HTTP_MAX_REQUEST_LINE + 10, " HTTP/1.1\r\n\r\n", 13);
    expect_error(req, (size_t)n + HTTP_MAX_REQUEST_LINE + 23, 414);
    free(req);
    expect_error("POST /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 44, 413);
    /* whitespace the header callbacks never see still counts against the head's size */
    char *pad = malloc(40000);
    assert_non_null(pad);
    n = snprintf(pad, 64, "GET / HTTP/1.1\r\nX-Pad:");
    memset(pad + n, ' ', 30000);
    memcpy(pad + n + 30000, "v\r\n\r\n", 5);
    expect_error(pad, (size_t)n + 30005, 431);
    free(pad);
    /* the 413 survives a client that keeps sending its body (lingering close, no RST) */
    size_t blen = 1u << 20;
    char *post = malloc(blen + 128);
    assert_non_null(post);
    n = snprintf(post, 128, "POST /x HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", blen);
    memset(post + n, 'p', blen);
    expect_error(post, (size_t)n + blen, 413);
    free(post);
    server_stats(g_srv.srv, &after);
    assert_true(after.protocol_errors >= before.protocol_errors + 8);

    /* a small POST body is fine and the connection stays usable */
    struct rconn rc;
    struct resp r;
    rc_open(&rc, g_srv.port);
    send_str(rc.fd,
             "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_string_equal(r.body, "POST /echo? -");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_string_equal(r.body, "hello\n");
    /* Expect: 100-continue gets its interim response before the body is sent */
    send_str(rc.fd, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    while (!memmem(rc.buf, rc.len, "\r\n\r\n", 4))
        assert_true(rc_fill(&rc) > 0);
    assert_memory_equal(rc.buf, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    memmove(rc.buf, rc.buf + 25, rc.len - 25);
    rc.len -= 25;
    send_str(rc.fd, "ok");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_string_equal(r.body, "POST /echo? -");
    rc_close(&rc);
}

static void test_h2c(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -o /dev/null -w '%%{http_code} %%{http_version}'"
                          " http://127.0.0.1:%d/nope",
                          g_srv.port),
                     0);
    /* one URL per curl: curl 7.88 cannot reuse a prior-knowledge connection (curl#10634);
     * several streams on one connection are tested over TLS below */
    assert_string_equal(out, "404 2");
    char body[300];
    snprintf(body, sizeof body, "%s/h2c.out", g_dir);
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -o %s -w '%%{http_code}' -H 'X-Echo: e'"
                          " 'http://127.0.0.1:%d/echo?a=1'",
                          body, g_srv.port),
                     0);
    assert_string_equal(out, "200");
    assert_true(file_contains(body, "GET /echo?a=1 e"));
    /* HEAD and a big body */
    assert_int_equal(
        curl(out, sizeof out,
             "--http2-prior-knowledge -I -o /dev/null -w '%%{http_code} %%{size_download}'"
             " http://127.0.0.1:%d/big",
             g_srv.port),
        0);
    assert_string_equal(out, "200 0");
    assert_int_equal(
        curl(out, sizeof out,
             "--http2-prior-knowledge -o /dev/null -w '%%{http_code} %%{size_download}'"
             " http://127.0.0.1:%d/big",
             g_srv.port),
        0);
    assert_string_equal(out, "200 1048576");
    /* header caps per stream */
    char big[9100];
    memset(big, 'a', 9000);
    big[9000] = '\0';
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -o /dev/null -w '%%{http_code}' -H 'X-Big: %s'"
                          " http://127.0.0.1:%d/hello",
                          big, g_srv.port),
                     0);
    assert_string_equal(out, "431");
    big[HTTP_MAX_REQUEST_LINE + 10] = '\0';
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -o /dev/null -w '%%{http_code}'"
                          " http://127.0.0.1:%d/%s",
                          g_srv.port, big),
                     0);
    assert_string_equal(out, "414");
    /* a small POST body */
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -o /dev/null -w '%%{http_code}' -d abc"
                          " http://127.0.0.1:%d/echo",
                          g_srv.port),
                     0);
    assert_string_equal(out, "200");
}

/* A large body over TLS on a connection the server closes: the closing close_notify must reach
 * the client, also when the body went out through the TLS coalescing buffer (its records are
 * flushed by hand; OpenSSL does not flush the write BIO after the alert). */
static void test_tls_close_notify(void **state)
{
    (void)state;
    char path[300];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    snprintf(path, sizeof path, "%s/ca.crt", g_dir);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
    snprintf(path, sizeof path, "%s/cli.crt", g_dir);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
    snprintf(path, sizeof path, "%s/cli.key", g_dir);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
    int fd = tcp_connect(g_srv.tls_port);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    static const char req[] = "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(SSL_write(ssl, req, (int)sizeof(req) - 1), (int)sizeof(req) - 1);
    static char buf[65536];
    size_t total = 0;
    int n;
    while ((n = SSL_read(ssl, buf, (int)sizeof buf)) > 0)
        total += (size_t)n;
    assert_true(total > (1u << 20));                                /* headers + the 1 MiB body */
    assert_int_equal(SSL_get_error(ssl, n), SSL_ERROR_ZERO_RETURN); /* not a bare EOF */
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
}

static void test_tls(void **state)
{
    (void)state;
    char out[512], body[300];
    snprintf(body, sizeof body, "%s/tls.out", g_dir);
    /* h2 via ALPN with a client certificate */
    assert_int_equal(curl(out, sizeof out,
                          "--http2 %s -o %s -w '%%{http_code} %%{http_version}'"
                          " https://127.0.0.1:%d/whoami",
                          g_curl_tls, body, g_srv.tls_port),
                     0);
    assert_string_equal(out, "200 2");
    assert_true(file_contains(body, "verified tls 20"));
    /* several requests on one HTTP/2 connection */
    assert_int_equal(curl(out, sizeof out,
                          "--http2 %s -o /dev/null -o /dev/null -o /dev/null "
                          "-w '%%{http_code} %%{http_version} %%{num_connects};'"
                          " https://127.0.0.1:%d/hello https://127.0.0.1:%d/nope "
                          "https://127.0.0.1:%d/big",
                          g_curl_tls, g_srv.tls_port, g_srv.tls_port, g_srv.tls_port),
                     0);
    assert_string_equal(out, "200 2 1;404 2 0;200 2 0;");
    /* HTTP/1.1 over TLS */
    assert_int_equal(curl(out, sizeof out,
                          "--http1.1 %s -o %s -o /dev/null -w '%%{http_code} %%{http_version}'"
                          " https://127.0.0.1:%d/whoami https://127.0.0.1:%d/whoami",
                          g_curl_tls, body, g_srv.tls_port, g_srv.tls_port),
                     0);
    assert_string_equal(out, "200 1.1200 1.1");
    assert_true(file_contains(body, "verified tls 11"));
    /* big body over TLS (partial writes) */
    assert_int_equal(curl(out, sizeof out,
                          "--http2 %s -o /dev/null -w '%%{size_download}'"
                          " https://127.0.0.1:%d/big",
                          g_curl_tls, g_srv.tls_port),
                     0);
    assert_string_equal(out, "1048576");
    /* no client certificate: the handshake fails */
    struct server_stats before, after;
    server_stats(g_srv.srv, &before);
    int rc = curl(out, sizeof out,
                  "--http2 --cacert %s/ca.crt -o /dev/null https://127.0.0.1:%d/"
                  "whoami",
                  g_dir, g_srv.tls_port);
    assert_int_not_equal(rc, 0);
    /* a certificate from another CA: refused too */
    rc = curl(out, sizeof out,
              "--http2 --cacert %s/ca.crt --cert %s/bad.crt --key %s/bad.key -o /dev/null "
              "https://127.0.0.1:%d/whoami",
              g_dir, g_dir, g_dir, g_srv.tls_port);
    assert_int_not_equal(rc, 0);
    int64_t end = clock_mono_ms() + WAIT_MS;
    do {
        server_stats(g_srv.srv, &after);
    } while (after.tls_handshake_errors < before.tls_handshake_errors + 2 &&
             clock_mono_ms() < end && (sleep_ms(10), 1));
    assert_true(after.tls_handshake_errors >= before.tls_handshake_errors + 2);
    /* plain HTTP on the TLS port is not served */
    struct rconn c;
    rc_open(&c, g_srv.tls_port);
    send_str(c.fd, "GET /hello HTTP/1.1\r\n\r\n");
    assert_true(rc_wait_eof(&c));
    assert_null(memmem(c.buf, c.len, "hello", 5));
    rc_close(&c);
}

static void test_slowloris(void **state)
{
    (void)state;
    struct server_stats before, after;
    server_stats(g_srv.srv, &before);
    struct rconn slow;
    rc_open(&slow, g_srv.port);
    send_str(slow.fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    struct timeval tv = {0, 100000};
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool dropped = false;
    int served = 0;
    int64_t end = clock_mono_ms() + WAIT_MS + 2000;
    while (!dropped && clock_mono_ms() < end) {
        /* trickle a header line; the connection stays "in its head" */
        if (send(slow.fd, "X-A: b\r\n", 8, MSG_NOSIGNAL) < 0) {
            dropped = true;
            break;
        }
        ssize_t n = recv(slow.fd, slow.buf, slow.cap, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            dropped = true;
            break;
        }
        if (n > 0) {
            slow.buf[n < 64 ? n : 63] = '\0';
            assert_non_null(strstr(slow.buf, "HTTP/1.1 408"));
        }
        /* other clients keep being served meanwhile */
        struct rconn rc;
        struct resp r;
        rc_open(&rc, g_srv.port);
        send_str(rc.fd, "GET /hello HTTP/1.1\r\n\r\n");
        assert_int_equal(rc_response(&rc, &r, false), 0);
        assert_int_equal(r.status, 200);
        rc_close(&rc);
        served++;
    }
    assert_true(dropped);
    assert_true(served > 0);
    /* a TLS client that never finishes its handshake is dropped too */
    struct rconn hs;
    rc_open(&hs, g_srv.tls_port);
    send_all(hs.fd, "\x16\x03\x01", 3); /* the start of a ClientHello, then silence */
    assert_true(rc_wait_eof(&hs));
    rc_close(&hs);
    server_stats(g_srv.srv, &after);
    assert_true(after.header_timeouts > before.header_timeouts);
    rc_close(&slow);
}

/* A busy pipelining client whose reads always end inside the next request is not a
 * slowloris: each request head gets its own deadline. */
static void test_header_deadline_per_request(void **state)
{
    (void)state;
    struct rconn rc;
    struct resp r;
    rc_open(&rc, g_srv.port);
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t half = strlen(req) / 2;
    send_all(rc.fd, req, half);
    int64_t end = clock_mono_ms() + 3000; /* longer than the 2 s header timeout */
    int n = 0;
    while (clock_mono_ms() < end) {
        sleep_ms(250);
        char two[128]; /* completes one request and starts the next, in one segment */
        int len = snprintf(two, sizeof two, "%s%.*s", req + half, (int)half, req);
        send_all(rc.fd, two, (size_t)len);
        assert_int_equal(rc_response(&rc, &r, false), 0);
        assert_int_equal(r.status, 200);
        n++;
    }
    assert_true(n >= 4);
    rc_close(&rc);
}

static void test_idle_connections(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2 * N + 200)
        skip();
    if (rl.rlim_cur < 2 * N + 200) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct server_stats st;
    server_stats(g_srv.srv, &st);
    uint64_t base = st.connections_total; /* earlier tests' connections may still be closing */
    int *fds = calloc(N, sizeof *fds);
    assert_non_null(fds);
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_connect(g_srv.port);
        assert_true(fds[i] >= 0);
    }
    int64_t end = clock_mono_ms() + WAIT_MS;
    do {
        server_stats(g_srv.srv, &st);
    } while (st.connections_total < base + N && clock_mono_ms() < end && (sleep_ms(10), 1));
    if (st.connections_total < base + N || st.connections_open < N)
        fail_msg("open %llu, accepted %llu (base %llu), rejected %llu, idle timeouts %llu",
                 (unsigned long long)st.connections_open, (unsigned long long)st.connections_total,
                 (unsigned long long)base, (unsigned long long)st.connections_rejected,
                 (unsigned long long)st.idle_timeouts);
    /* requests keep being answered: raw keep-alive, h2c and TLS */
    struct rconn rc;
    struct resp r;
    rc_open(&rc, g_srv.port);
    for (int i = 0; i < 50; i++) {
        send_str(rc.fd, "GET /hello HTTP/1.1\r\n\r\n");
        assert_int_equal(rc_response(&rc, &r, false), 0);
        assert_int_equal(r.status, 200);
    }
    rc_close(&rc);
    char out[64];
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -o /dev/null -w '%%{http_code}'"
                          " http://127.0.0.1:%d/hello",
                          g_srv.port),
                     0);
    assert_string_equal(out, "200");
    assert_int_equal(curl(out, sizeof out,
                          "%s -o /dev/null -w '%%{http_code}' "
                          "https://127.0.0.1:%d/hello",
                          g_curl_tls, g_srv.tls_port),
                     0);
    assert_string_equal(out, "200");
    for (int i = 0; i < N; i++)
        close(fds[i]);
    free(fds);
    end = clock_mono_ms() + WAIT_MS;
    do {
        server_stats(g_srv.srv, &st);
    } while (st.connections_open >= N && clock_mono_ms() < end && (sleep_ms(10), 1));
    assert_true(st.connections_open < N); /* the server noticed the closes */
}

static void test_stream_h1(void **state)
{
    (void)state;
    char out[256], file[300];
    snprintf(file, sizeof file, "%s/s1.out", g_dir);
    /* known length, slow producer in another thread */
    assert_int_equal(
        curl(out, sizeof out,
             "-o %s -w '%%{http_code}' 'http://127.0.0.1:%d/stream?total=3000000&delay=1'", file,
             g_srv.port),
        0);
    assert_string_equal(out, "200");
    assert_true(file_has_pattern(file, 3000000));
    struct tsrc *s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_true(s->completed);
    free_src(s);
    /* unknown length: chunked */
    assert_int_equal(
        curl(out, sizeof out,
             "-D %s.h -o %s -w '%%{http_code}' 'http://127.0.0.1:%d/stream?total=1000001&cl=0'",
             file, file, g_srv.port),
        0);
    assert_true(file_has_pattern(file, 1000001));
    char hdr[320];
    snprintf(hdr, sizeof hdr, "%s.h", file);
    assert_true(file_contains(hdr, "Transfer-Encoding: chunked"));
    s = take_src();
    assert_true(s->completed);
    free_src(s);
    /* deferred headers */
    assert_int_equal(curl(out, sizeof out,
                          "-D %s -o /dev/null -w '%%{http_code} %%{size_download}' "
                          "'http://127.0.0.1:%d/stream?total=5000&defer=1&delay=50'",
                          hdr, g_srv.port),
                     0);
    assert_string_equal(out, "200 5000");
    assert_true(file_contains(hdr, "X-Deferred: yes"));
    free_src(take_src());
    /* HEAD with a source: headers only, source closed completed */
    assert_int_equal(curl(out, sizeof out,
                          "-I -o /dev/null -w '%%{http_code}' "
                          "'http://127.0.0.1:%d/stream?total=5000'",
                          g_srv.port),
                     0);
    s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_true(s->completed);
    free_src(s);
}

static void test_stream_abort_h1(void **state)
{
    (void)state;
    char out[256], file[300];
    snprintf(file, sizeof file, "%s/a1.out", g_dir);
    /* known length: short body then close; curl: 18 (partial file) */
    int rc =
        curl(out, sizeof out,
             "-o %s -w '%%{http_code}' 'http://127.0.0.1:%d/stream?total=3000000&abort=1000000'",
             file, g_srv.port);
    assert_int_equal(rc, 18);
    assert_int_equal(file_size(file), 1000000);
    struct tsrc *s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_false(s->completed);
    free_src(s);
    /* chunked: no terminating chunk */
    rc = curl(out, sizeof out, "-o %s 'http://127.0.0.1:%d/stream?total=3000000&abort=100000&cl=0'",
              file, g_srv.port);
    assert_int_not_equal(rc, 0);
    s = take_src();
    assert_false(s->completed);
    free_src(s);
}

static void test_stream_h2(void **state)
{
    (void)state;
    char out[256], file[300], hdr[300];
    snprintf(file, sizeof file, "%s/s2.out", g_dir);
    snprintf(hdr, sizeof hdr, "%s/s2.hdr", g_dir);
    assert_int_equal(curl(out, sizeof out,
                          "--http2-prior-knowledge -D %s -o %s -w '%%{http_code}' "
                          "'http://127.0.0.1:%d/stream?total=2000000&trailers=1&delay=1'",
                          hdr, file, g_srv.port),
                     0);
    assert_string_equal(out, "200");
    assert_true(file_has_pattern(file, 2000000));
    struct tsrc *s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_true(s->completed);
    free_src(s);
    /* over TLS, unknown length, deferred headers */
    assert_int_equal(curl(out, sizeof out,
                          "--http2 %s -D %s -o %s -w '%%{http_code} %%{http_version}' "
                          "'https://127.0.0.1:%d/stream?total=777777&cl=0&defer=1'",
                          g_curl_tls, hdr, file, g_srv.tls_port),
                     0);
    assert_string_equal(out, "200 2");
    assert_true(file_has_pattern(file, 777777));
    assert_true(file_contains(hdr, "x-deferred: yes"));
    free_src(take_src());
    /* trailers, and several streams at once on one h2c connection */
    struct h2c c;
    h2c_open(&c, g_srv.port);
    struct h2c_stream *a = h2c_get(&c, "/hello");
    struct h2c_stream *b = h2c_get(&c, "/stream?total=300000&trailers=1&chunk=1000");
    struct h2c_stream *d = h2c_get(&c, "/nope");
    h2c_run(&c);
    assert_int_equal(a->status, 200);
    assert_int_equal(a->body, 6);
    assert_int_equal(d->status, 404);
    assert_int_equal(b->status, 200);
    assert_int_equal(b->body, 300000);
    assert_true(b->pattern_ok);
    assert_int_equal(b->error_code, NGHTTP2_NO_ERROR);
    assert_string_equal(b->trailer, "x-test-trailer: done");
    s = take_src();
    assert_true(s->completed);
    free_src(s);
    /* abort: RST_STREAM(INTERNAL_ERROR) after some data */
    b = h2c_get(&c, "/stream?total=300000&abort=100000");
    h2c_run(&c);
    assert_int_equal(b->status, 200);
    assert_int_equal(b->body, 100000);
    assert_int_equal(b->error_code, NGHTTP2_INTERNAL_ERROR);
    s = take_src();
    assert_false(s->completed);
    free_src(s);
    h2c_close_conn(&c);

    /* borrowed bodies (body_ref) on concurrent streams: each stream got its own bytes */
    h2c_open(&c, g_srv.port);
    struct h2c_stream *refs[4];
    unsigned first = g_ref_calls;
    for (int i = 0; i < 4; i++)
        refs[i] = h2c_get(&c, "/ref");
    h2c_run(&c);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(refs[i]->status, 200);
        assert_int_equal(refs[i]->body, REF_BUF - 100 * ((first + i) % 50));
        assert_true(refs[i]->pattern_ok);
    }
    h2c_close_conn(&c);

    /* abort -> RST_STREAM: curl reports an error */
    int rc = curl(
        out, sizeof out,
        "--http2-prior-knowledge -o %s 'http://127.0.0.1:%d/stream?total=3000000&abort=500000'",
        file, g_srv.port);
    assert_int_not_equal(rc, 0);
    s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_false(s->completed);
    free_src(s);
}

static void test_stream_client_gone_and_slow(void **state)
{
    (void)state;
    /* a client that does not read: the server stops pulling (bounded buffering) */
    struct rconn rc;
    rc_open(&rc, g_srv.port);
    int small = 64 * 1024;
    setsockopt(rc.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_str(rc.fd, "GET /stream?total=100000000000&cl=0 HTTP/1.1\r\n\r\n");
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (src_consumed() == 0 && clock_mono_ms() < end)
        sleep_ms(10);
    uint64_t prev = 0, cur;
    for (int i = 0; i < 50; i++) { /* wait until pulling stalls */
        sleep_ms(100);
        cur = src_consumed();
        if (cur == prev)
            break;
        prev = cur;
    }
    cur = src_consumed();
    assert_true(cur > 0);
    assert_true(cur < 32u * 1024 * 1024); /* socket buffers + our low-water mark, not GBs */
    /* read a little, then vanish: close(false) exactly once */
    assert_true(rc_fill(&rc) > 0);
    rc_close(&rc);
    struct tsrc *s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_false(s->completed);
    free_src(s);

    /* HTTP/2 client vanishing mid-stream */
    char out[64];
    int r = curl(out, sizeof out,
                 "--http2-prior-knowledge --max-time 1 -o /dev/null "
                 "'http://127.0.0.1:%d/stream?total=100000000000&delay=10'",
                 g_srv.port);
    assert_int_equal(r, 28); /* timeout */
    s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_false(s->completed);
    free_src(s);
}

static void test_max_connections(void **state)
{
    (void)state;
    struct tserver ts = {0};
    struct server_config cfg = {.listen = "127.0.0.1:0", .max_connections = 3};
    start(&ts, &cfg);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = tcp_connect(ts.port);
    struct server_stats st;
    int64_t end = clock_mono_ms() + WAIT_MS;
    do {
        server_stats(ts.srv, &st);
    } while (st.connections_open < 3 && clock_mono_ms() < end && (sleep_ms(5), 1));
    assert_int_equal(st.connections_open, 3);
    struct rconn rc;
    struct resp r;
    rc_open(&rc, ts.port);
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.status, 503);
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);
    server_stats(ts.srv, &st);
    assert_int_equal(st.connections_rejected, 1);
    /* one leaves, a new one is served */
    close(fds[0]);
    end = clock_mono_ms() + WAIT_MS;
    do {
        server_stats(ts.srv, &st);
    } while (st.connections_open > 2 && clock_mono_ms() < end && (sleep_ms(5), 1));
    rc_open(&rc, ts.port);
    send_str(rc.fd, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.status, 200);
    rc_close(&rc);
    close(fds[1]);
    close(fds[2]);
    stop(&ts, 1000);
}

static void *stop_when_streaming(void *arg)
{
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (src_consumed() == 0 && clock_mono_ms() < end)
        sleep_ms(5);
    server_stop_graceful(arg, 60000);
    return NULL;
}

static void test_graceful_stop(void **state)
{
    (void)state;
    struct tserver ts = {0};
    struct server_config cfg = {.listen = "127.0.0.1:0"};
    start(&ts, &cfg);
    /* an idle keep-alive connection and an in-flight slow stream */
    struct rconn idle, rc;
    struct resp r;
    rc_open(&idle, ts.port);
    send_str(idle.fd, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(rc_response(&idle, &r, false), 0);
    rc_open(&rc, ts.port);
    send_str(rc.fd, "GET /stream?total=2000000&delay=5 HTTP/1.1\r\n\r\n");
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (src_consumed() == 0 && clock_mono_ms() < end)
        sleep_ms(5);
    server_stop_graceful(ts.srv, 60000);
    server_stop_graceful(ts.srv, 1); /* repeated: harmless, the first grace counts */
    /* the idle one is closed, new ones are refused */
    assert_true(rc_wait_eof(&idle));
    rc_close(&idle);
    end = clock_mono_ms() + WAIT_MS;
    int fd;
    while ((fd = tcp_connect(ts.port)) >= 0 && clock_mono_ms() < end) {
        close(fd);
        sleep_ms(10);
    }
    assert_true(fd < 0);
    /* the in-flight response completes, then the connection closes */
    assert_int_equal(rc_response(&rc, &r, false), 0);
    assert_int_equal(r.body_len, 2000000); /* its head went out before the stop */
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);
    struct tsrc *s = take_src();
    assert_true(s->completed);
    free_src(s);
    pthread_join(ts.th, NULL);
    ts.running = false;
    assert_int_equal(ts.rc, 0);
    server_free(ts.srv);

    /* HTTP/2: the stream in flight completes, then GOAWAY and close */
    start(&ts, &cfg);
    struct h2c c;
    h2c_open(&c, ts.port);
    struct h2c_stream *b = h2c_get(&c, "/stream?total=1000000&delay=5");
    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stop_when_streaming, ts.srv), 0);
    h2c_run(&c);
    pthread_join(stopper, NULL);
    assert_int_equal(b->status, 200);
    assert_int_equal(b->body, 1000000);
    assert_int_equal(b->error_code, NGHTTP2_NO_ERROR);
    uint8_t tmp[4096];
    ssize_t got;
    while ((got = recv(c.fd, tmp, sizeof tmp, 0)) > 0) /* GOAWAY, then EOF */
        nghttp2_session_mem_recv(c.s, tmp, (size_t)got);
    assert_int_equal(got, 0);
    h2c_close_conn(&c);
    pthread_join(ts.th, NULL);
    ts.running = false;
    assert_int_equal(ts.rc, 0);
    server_free(ts.srv);
    s = take_src();
    assert_true(s->completed);
    free_src(s);

    /* a stream that never ends is cut at the end of the grace period */
    start(&ts, &cfg);
    rc_open(&rc, ts.port);
    send_str(rc.fd, "GET /stream?total=100000000000&delay=1000 HTTP/1.1\r\n\r\n");
    end = clock_mono_ms() + WAIT_MS;
    while (src_consumed() == 0 && clock_mono_ms() < end)
        sleep_ms(5);
    int64_t t0 = clock_mono_ms();
    stop(&ts, 300);
    assert_true(clock_mono_ms() - t0 < WAIT_MS);
    s = take_src();
    assert_int_equal(s->close_calls, 1);
    assert_false(s->completed);
    free_src(s);
    assert_true(rc_wait_eof(&rc));
    rc_close(&rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_http10_and_close),
        cmocka_unit_test(test_malformed_and_limits),
        cmocka_unit_test(test_h2c),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_tls_close_notify),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_header_deadline_per_request),
        cmocka_unit_test(test_idle_connections),
        cmocka_unit_test(test_stream_h1),
        cmocka_unit_test(test_stream_abort_h1),
        cmocka_unit_test(test_stream_h2),
        cmocka_unit_test(test_stream_client_gone_and_slow),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_graceful_stop),
    };
    if (getenv("TEST_FILTER")) /* e.g. TEST_FILTER='test_h2*' */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
