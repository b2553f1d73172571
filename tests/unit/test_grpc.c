/* test_grpc.c - unit tests for the gRPC framing, status mapping and header helpers.
 *
 * No network: the client's calls are tested against real etcd in tests/integration/test_grpc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "array.h"
#include "clock.h"
#include "etcd.h"
#include "testutil.h"
#include "grpc.h"

#define MAX_SEEN 16

struct seen {
    size_t n;
    size_t len[MAX_SEEN];
    uint8_t first[MAX_SEEN]; /* first byte of each message (0 for empty) */
    uint32_t sum[MAX_SEEN];
    size_t cancel_at; /* return non-zero on this message (1-based); 0 = never */
};

static int collect(void *arg, const uint8_t *msg, size_t len)
{
    struct seen *s = arg;
    uint32_t sum = 0;

    assert_non_null(msg);
    assert_true(s->n < MAX_SEEN);
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + msg[i];
    s->len[s->n] = len;
    s->first[s->n] = len ? msg[0] : 0;
    s->sum[s->n] = sum;
    s->n++;
    return s->cancel_at && s->n == s->cancel_at;
}

/* Appends a framed message of len bytes (byte i = seed + i) to out. */
static size_t frame(uint8_t *out, size_t len, uint8_t seed)
{
    grpc_frame_header(out, len);
    for (size_t i = 0; i < len; i++)
        out[5 + i] = (uint8_t)(seed + i);
    return len + 5;
}

static uint32_t sum_of(size_t len, uint8_t seed)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (uint8_t)(seed + i);
    return sum;
}

static void test_frame_header(void **state)
{
    uint8_t h[5];

    (void)state;
    grpc_frame_header(h, 0x01020304);
    assert_memory_equal(h, "\x00\x01\x02\x03\x04", 5);
    grpc_frame_header(h, 0);
    assert_memory_equal(h, "\x00\x00\x00\x00\x00", 5);
}

static void test_framer_byte_by_byte(void **state)
{
    uint8_t buf[3000];
    size_t len = frame(buf, 1000, 7);
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    len += frame(buf + len, 0, 0);
    len += frame(buf + len, 1500, 99);
    grpc_framer_init(&f, 0);
    assert_int_equal(f.max_message, GRPC_MAX_MESSAGE);
    assert_true(grpc_framer_idle(&f));
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(grpc_framer_feed(&f, buf + i, 1, collect, &s), 0);
        if (i == 2)
            assert_false(grpc_framer_idle(&f)); /* inside a prefix */
        if (i == 500)
            assert_false(grpc_framer_idle(&f)); /* inside a message */
    }
    assert_true(grpc_framer_idle(&f));
    assert_int_equal(s.n, 3);
    assert_int_equal(s.len[0], 1000);
    assert_int_equal(s.sum[0], sum_of(1000, 7));
    assert_int_equal(s.len[1], 0);
    assert_int_equal(s.len[2], 1500);
    assert_int_equal(s.sum[2], sum_of(1500, 99));
    grpc_framer_free(&f);
}

static void test_framer_many_in_one_feed(void **state)
{
    uint8_t buf[1024];
    size_t len = 0;
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    for (int i = 0; i < 10; i++)
        len += frame(buf + len, (size_t)i * 9, (uint8_t)i);
    grpc_framer_init(&f, 100);
    assert_int_equal(grpc_framer_feed(&f, buf, len, collect, &s), 0);
    assert_int_equal(s.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(s.len[i], (size_t)i * 9);
        assert_int_equal(s.sum[i], sum_of((size_t)i * 9, (uint8_t)i));
    }
    assert_true(grpc_framer_idle(&f));
    grpc_framer_free(&f);
}

/* Every split point of two messages into two feeds, and into three. */
static void test_framer_all_splits(void **state)
{
    uint8_t buf[256];
    size_t len = frame(buf, 40, 1);

    (void)state;
    len += frame(buf + len, 60, 2);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b += 7) {
            struct grpc_framer f;
            struct seen s = {0};

            grpc_framer_init(&f, 64);
            assert_int_equal(grpc_framer_feed(&f, buf, a, collect, &s), 0);
            assert_int_equal(grpc_framer_feed(&f, buf + a, b - a, collect, &s), 0);
            assert_int_equal(grpc_framer_feed(&f, buf + b, len - b, collect, &s), 0);
            assert_int_equal(s.n, 2);
            assert_int_equal(s.sum[0], sum_of(40, 1));
            assert_int_equal(s.sum[1], sum_of(60, 2));
            assert_true(grpc_framer_idle(&f));
            grpc_framer_free(&f);
        }
    }
}

static void test_framer_oversize(void **state)
{
    uint8_t buf[64];
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    frame(buf, 10, 0);
    grpc_framer_init(&f, 9);
    assert_int_equal(grpc_framer_feed(&f, buf, 15, collect, &s), -EMSGSIZE);
    assert_int_equal(s.n, 0);
    grpc_framer_free(&f);

    /* the limit itself is fine; detected from a prefix split across feeds */
    grpc_framer_init(&f, 10);
    assert_int_equal(grpc_framer_feed(&f, buf, 15, collect, &s), 0);
    assert_int_equal(s.n, 1);
    grpc_frame_header(buf, 0xffffffffu);
    assert_int_equal(grpc_framer_feed(&f, buf, 2, collect, &s), 0);
    assert_int_equal(grpc_framer_feed(&f, buf + 2, 3, collect, &s), -EMSGSIZE);
    grpc_framer_free(&f);

    /* the default limit */
    grpc_framer_init(&f, 0);
    grpc_frame_header(buf, GRPC_MAX_MESSAGE + 1);
    assert_int_equal(grpc_framer_feed(&f, buf, 5, collect, &s), -EMSGSIZE);
    grpc_framer_free(&f);
}

static void test_framer_compressed(void **state)
{
    uint8_t buf[16];
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    frame(buf, 3, 0);
    buf[0] = 1;
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 8, collect, &s), -EPROTO);
    assert_int_equal(s.n, 0);
    grpc_framer_free(&f);
    /* split prefix too, and a reserved flag bit */
    buf[0] = 0x80;
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 1, collect, &s), 0);
    assert_int_equal(grpc_framer_feed(&f, buf + 1, 7, collect, &s), -EPROTO);
    grpc_framer_free(&f);
}

static void test_framer_cancel(void **state)
{
    uint8_t buf[128];
    size_t len = 0;
    struct grpc_framer f;
    struct seen s = {.cancel_at = 2};

    (void)state;
    for (int i = 0; i < 3; i++)
        len += frame(buf + len, 20, (uint8_t)i);
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, len, collect, &s), -ECANCELED);
    assert_int_equal(s.n, 2); /* the third is never delivered */
    grpc_framer_free(&f);

    /* cancel on a message that was reassembled from pieces */
    memset(&s, 0, sizeof s);
    s.cancel_at = 1;
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 10, collect, &s), 0);
    assert_int_equal(grpc_framer_feed(&f, buf + 10, 20, collect, &s), -ECANCELED);
    assert_int_equal(s.n, 1);
    grpc_framer_free(&f);
}

static void test_framer_truncated(void **state)
{
    uint8_t buf[64];
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    frame(buf, 30, 0);
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 20, collect, &s), 0);
    assert_false(grpc_framer_idle(&f)); /* a stream ending here is truncated */
    assert_int_equal(s.n, 0);
    grpc_framer_free(&f);
    grpc_framer_free(&f); /* idempotent */
}

static void test_status_mapping(void **state)
{
    struct grpc_status st;

    (void)state;
    memset(&st, 0x55, sizeof st);
    grpc_status_from_trailers(&st, "0", NULL);
    assert_int_equal(st.code, GRPC_OK);
    assert_false(st.transport);
    assert_string_equal(st.message, "");

    grpc_status_from_trailers(&st, "5", "etcdserver: member not found");
    assert_int_equal(st.code, GRPC_NOT_FOUND);
    assert_false(st.transport);
    assert_string_equal(st.message, "etcdserver: member not found");

    grpc_status_from_trailers(&st, "14", "peer%20URL%20%2Fexists%3a%E2%9C%93");
    assert_int_equal(st.code, GRPC_UNAVAILABLE);
    assert_string_equal(st.message, "peer URL /exists:\xe2\x9c\x93");

    /* a code without a message still says something */
    grpc_status_from_trailers(&st, "9", NULL);
    assert_int_equal(st.code, GRPC_FAILED_PRECONDITION);
    assert_string_equal(st.message, "FAILED_PRECONDITION");

    grpc_status_from_trailers(&st, NULL, "ignored");
    assert_int_equal(st.code, GRPC_INTERNAL);
    assert_true(st.transport);
    assert_string_equal(st.message, "missing grpc-status");

    grpc_status_from_trailers(&st, "", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);
    assert_true(st.transport);
    grpc_status_from_trailers(&st, "4x", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);
    grpc_status_from_trailers(&st, "-1", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);
    grpc_status_from_trailers(&st, "99999999999999999999", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);

    /* unknown codes are kept */
    grpc_status_from_trailers(&st, "42", NULL);
    assert_int_equal(st.code, 42);
    assert_string_equal(st.message, "CODE_42");

    /* long messages are truncated, still terminated */
    {
        char big[1000];
        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        grpc_status_from_trailers(&st, "2", big);
        assert_int_equal(strlen(st.message), GRPC_MAX_STATUS_MESSAGE - 1);
    }
}

static void test_percent_decode(void **state)
{
    char a[] = "a%20b%zz%4%41%";
    char b[] = "%e4%B8%ad";
    char c[] = "";
    char d[] = "100%";

    (void)state;
    grpc_percent_decode(a);
    assert_string_equal(a, "a b%zz%4A%");
    grpc_percent_decode(b);
    assert_string_equal(b, "\xe4\xb8\xad");
    grpc_percent_decode(c);
    assert_string_equal(c, "");
    grpc_percent_decode(d);
    assert_string_equal(d, "100%");
}

static void test_code_names(void **state)
{
    (void)state;
    assert_string_equal(grpc_code_name(GRPC_OK), "OK");
    assert_string_equal(grpc_code_name(GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    assert_string_equal(grpc_code_name(GRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
    assert_string_equal(grpc_code_name(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(grpc_code_name(17), "CODE_17");
    assert_string_equal(grpc_code_name(-3), "CODE_-3");
}

static void test_timeout_header(void **state)
{
    char t[16];

    (void)state;
    grpc_timeout_header(t, 250);
    assert_string_equal(t, "250m");
    grpc_timeout_header(t, 30000);
    assert_string_equal(t, "30S");
    grpc_timeout_header(t, 1500);
    assert_string_equal(t, "1500m");
    grpc_timeout_header(t, 1);
    assert_string_equal(t, "1m");
    grpc_timeout_header(t, 0);
    assert_string_equal(t, "0m");
    grpc_timeout_header(t, 99999999);
    assert_string_equal(t, "99999999m");
    /* beyond 8 digits of milliseconds: seconds, rounded up */
    grpc_timeout_header(t, 100000001);
    assert_string_equal(t, "100001S");
    grpc_timeout_header(t, 2147483647);
    assert_string_equal(t, "2147484S");
    assert_true(strlen(t) <= 9);
}

static void test_channel_config(void **state)
{
    const char *good[] = {"https://127.0.0.1:2379", "localhost:2380", "[::1]:2379",
                          "https://[fe80::1]:1/", "etcd-0.etcd"};
    const char *bad[] = {"http://127.0.0.1:2379",
                         "127.0.0.1:",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "::1:2379",
                         "[::1",
                         "[::1]x",
                         "https://:2379",
                         "h:12a"};
    struct tls_files files = {"/nonexistent-ca", NULL, NULL};
    struct grpc_channel_config cfg = {0};
    struct grpc_channel *ch;
    char err[256];

    (void)state;
    /* a channel needs a TLS context, but never touches it before connecting */
    cfg.tls = (struct tls_ctx *)(uintptr_t)1;
    cfg.endpoints = good;
    cfg.n_endpoints = ARRAY_SIZE(good);
    ch = grpc_channel_new(&cfg, err, sizeof err);
    assert_non_null(ch);
    assert_null(grpc_channel_endpoint(ch));
    grpc_channel_close(ch);
    grpc_channel_free(ch);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cfg.endpoints = &bad[i];
        cfg.n_endpoints = 1;
        err[0] = '\0';
        assert_null(grpc_channel_new(&cfg, err, sizeof err));
        assert_true(err[0] != '\0');
    }
    cfg.endpoints = good;
    cfg.n_endpoints = 0;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    cfg.n_endpoints = GRPC_MAX_ENDPOINTS + 1;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    cfg.n_endpoints = 1;
    cfg.window_size = 0x80000000u;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    cfg.window_size = 0;
    cfg.tls = NULL;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    assert_null(tls_client_new(&files, err, sizeof err));
}

/* ---- the client against a scripted HTTP/2 server -----------------------------------------
 * A small nghttp2 server in a thread answers by :path with well-formed and malformed gRPC
 * responses, so that every way a response can go wrong is exercised without etcd. */

#define WIRE_STREAM_MESSAGES 50
/* upper bounds against hangs, scaled under valgrind/ASan (tests/run.sh) */
#define WIRE_CALL_TIMEOUT_MS (10000 * test_time_scale())
#define WIRE_WAIT_MS (5000 * test_time_scale())
#define WIRE_WBUF (64 * 1024)

static char wire_dir[] = "/tmp/test_grpc.XXXXXX";
static struct tls_ctx *wire_server_tls, *wire_client_tls;
static int wire_lfd = -1, wire_port;
static pthread_t wire_thread;
static SSL_CTX *wire_plain_ctx; /* a server without ALPN (an HTTP/1-only server) */
static atomic_bool wire_no_alpn;
static bool wire_thread_started;
static atomic_int wire_conn_fd = -1; /* the connection being served, for the teardown */
static atomic_int wire_connections, wire_requests, wire_refused, wire_last_rst;
static char wire_endpoint[64];

struct sconn {
    nghttp2_session *sess;
    SSL *ssl;
    bool close_now;
    int32_t sid;
    char path[128];
    char timeout[32];
    uint8_t *body;
    size_t len, off;
    nghttp2_nv trailers[2];
    size_t n_trailers;
    size_t pause_at; /* /t/ping-pause: body offset where DATA waits for our PING's ACK */
    bool ping_sent, ping_acked;
    size_t wlen; /* output gathered per nghttp2_session_send: one TLS write, few records */
    uint8_t wbuf[WIRE_WBUF];
};

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), strlen(n), strlen(v),                \
            NGHTTP2_NV_FLAG_NONE                                                                   \
    }

static ssize_t srv_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
    struct sconn *c = u;
    size_t room = sizeof c->wbuf - c->wlen;

    (void)s;
    (void)flags;
    if (room == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    len = len < room ? len : room;
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    return (ssize_t)len;
}

/* Sends everything nghttp2 has (blocking socket). */
static int srv_pump(struct sconn *c)
{
    for (int i = 0; i < WIRE_WAIT_MS; i++) {
        if (nghttp2_session_send(c->sess) != 0)
            return -1;
        if (c->wlen == 0)
            return 0;
        /* tls.c's contexts allow partial writes */
        for (size_t off = 0; off < c->wlen;) {
            int n;
            ERR_clear_error();
            n = SSL_write(c->ssl, c->wbuf + off, (int)(c->wlen - off));
            if (n <= 0)
                return -1;
            off += (size_t)n;
        }
        c->wlen = 0;
    }
    return -1;
}

static ssize_t srv_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *u)
{
    struct sconn *c = u;
    size_t n = c->len - c->off < length ? c->len - c->off : length;

    (void)src;
    if (c->pause_at && c->off == c->pause_at && !c->ping_acked) {
        if (!c->ping_sent)
            nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, NULL);
        c->ping_sent = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (c->pause_at && c->off < c->pause_at && n > c->pause_at - c->off)
        n = c->pause_at - c->off;
    if (n)
        memcpy(buf, c->body + c->off, n);
    c->off += n;
    if (c->off == c->len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (c->n_trailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(s, sid, c->trailers, c->n_trailers);
        }
    }
    return (ssize_t)n;
}

static void body_add(struct sconn *c, const void *msg, size_t len, uint8_t flag)
{
    uint8_t *nb = realloc(c->body, c->len + 5 + len);

    assert_non_null(nb);
    c->body = nb;
    grpc_frame_header(c->body + c->len, len);
    c->body[c->len] = flag;
    if (len)
        memcpy(c->body + c->len + 5, msg, len);
    c->len += 5 + len;
}

/* Pattern of stream message i (sizes cross frame and chunk boundaries). */
static size_t stream_msg(int i, uint8_t *out)
{
    size_t len = (size_t)(i * 997) % 40000;

    for (size_t k = 0; k < len; k++)
        out[k] = (uint8_t)(i + k);
    return len;
}

static void srv_respond(nghttp2_session *s, struct sconn *c)
{
    nghttp2_nv ok[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider prd = {.read_callback = srv_read_body};
    const char *p = c->path;

    atomic_fetch_add(&wire_requests, 1);
    free(c->body);
    c->body = NULL;
    c->len = c->off = c->pause_at = 0;
    c->ping_sent = c->ping_acked = false;
    c->n_trailers = 1;
    c->trailers[0] = (nghttp2_nv)NV("grpc-status", "0");
    if (strcmp(p, "/t/ok") == 0) {
        body_add(c, "hello", 5, 0);
    } else if (strcmp(p, "/t/empty") == 0) {
        body_add(c, "", 0, 0);
    } else if (strcmp(p, "/t/timeout") == 0) {
        body_add(c, c->timeout, strlen(c->timeout), 0);
    } else if (strcmp(p, "/t/two") == 0) {
        body_add(c, "a", 1, 0);
        body_add(c, "b", 1, 0);
    } else if (strcmp(p, "/t/none") == 0) {
        /* no message at all, status OK */
    } else if (strcmp(p, "/t/big") == 0) {
        body_add(c, "x", 1, 0);
        grpc_frame_header(c->body + c->len - 6, GRPC_MAX_MESSAGE + 1);
    } else if (strcmp(p, "/t/compressed") == 0) {
        body_add(c, "zz", 2, 1);
    } else if (strcmp(p, "/t/nostatus") == 0) {
        body_add(c, "hello", 5, 0);
        c->trailers[0] = (nghttp2_nv)NV("x-other", "1");
    } else if (strcmp(p, "/t/truncated") == 0) {
        body_add(c, "0123456789", 10, 0);
        c->len -= 4;
    } else if (strcmp(p, "/t/stream") == 0) {
        uint8_t *m = malloc(40000);
        assert_non_null(m);
        for (int i = 0; i < WIRE_STREAM_MESSAGES; i++)
            body_add(c, m, stream_msg(i, m), 0);
        free(m);
    } else if (strcmp(p, "/t/ping-pause") == 0) {
        /* message 0, then a PING; message 1 only after the client ACKs it, which it does
         * only when its read loop comes back to the socket */
        uint8_t m[1000];
        body_add(c, m, stream_msg(0, m), 0);
        c->pause_at = c->len;
        body_add(c, m, stream_msg(1, m), 0);
    } else if (strcmp(p, "/t/404") == 0) {
        nghttp2_nv h[] = {NV(":status", "404")};
        nghttp2_submit_response(s, c->sid, h, 1, NULL);
        return;
    } else if (strcmp(p, "/t/html") == 0) {
        nghttp2_nv h[] = {NV(":status", "200"), NV("content-type", "text/html")};
        nghttp2_submit_response(s, c->sid, h, 2, NULL);
        return;
    } else if (strcmp(p, "/t/message") == 0) {
        nghttp2_nv h[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                          NV("grpc-status", "9"), NV("grpc-message", "not%20yet%3A%20wait")};
        nghttp2_submit_response(s, c->sid, h, 4, NULL);
        return;
    } else if (strcmp(p, "/t/refuse-once") == 0 && atomic_fetch_add(&wire_refused, 1) == 0) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_REFUSED_STREAM);
        return;
    } else if (strcmp(p, "/t/refuse-once") == 0) {
        body_add(c, "second", 6, 0);
    } else if (strcmp(p, "/t/rst") == 0) {
        nghttp2_submit_headers(s, NGHTTP2_FLAG_NONE, c->sid, NULL, ok, 2, NULL);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_INTERNAL_ERROR);
        return;
    } else if (strcmp(p, "/t/eof") == 0) {
        c->close_now = true;
        return;
    } else if (strcmp(p, "/t/goaway") == 0) {
        /* answer, then tell the client this connection takes nothing more */
        body_add(c, "bye", 3, 0);
        nghttp2_submit_response(s, c->sid, ok, 2, &prd);
        nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_NO_ERROR, NULL, 0);
        return;
    } else if (strcmp(p, "/t/hang") == 0) {
        return;
    } else if (strncmp(p, "/etcdserverpb.", 14) == 0) {
        body_add(c, "\xff\xff\xff", 3, 0); /* a field tag whose varint never ends */
    } else {
        nghttp2_nv h[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                          NV("grpc-status", "12")};
        nghttp2_submit_response(s, c->sid, h, 3, NULL);
        return;
    }
    nghttp2_submit_response(s, c->sid, ok, 2, &prd);
}

static int srv_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *u)
{
    struct sconn *c = u;

    (void)s;
    (void)flags;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        snprintf(c->path, sizeof c->path, "%.*s", (int)valuelen, (const char *)value);
    if (namelen == 12 && memcmp(name, "grpc-timeout", 12) == 0)
        snprintf(c->timeout, sizeof c->timeout, "%.*s", (int)valuelen, (const char *)value);
    return 0;
}

static int srv_on_begin(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    struct sconn *c = u;

    (void)s;
    c->sid = f->hd.stream_id;
    c->path[0] = c->timeout[0] = '\0';
    return 0;
}

static int srv_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    struct sconn *c = u;

    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) && c->ping_sent) {
        c->ping_acked = true;
        nghttp2_session_resume_data(s, c->sid);
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        srv_respond(s, u);
    return 0;
}

static int srv_on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *u)
{
    (void)s;
    (void)sid;
    (void)u;
    if (code)
        atomic_store(&wire_last_rst, (int)code);
    return 0;
}

static void srv_conn(int fd)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10}};
    struct sconn c = {0};
    uint8_t buf[16384];
    int n;

    c.ssl = SSL_new(atomic_load(&wire_no_alpn) ? wire_plain_ctx : tls_ctx_current(wire_server_tls));
    SSL_set_fd(c.ssl, fd);
    if (SSL_accept(c.ssl) != 1) {
        SSL_free(c.ssl);
        ERR_clear_error();
        return;
    }
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, srv_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, srv_on_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, srv_on_begin);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, srv_on_close);
    nghttp2_session_server_new(&c.sess, cbs, &c);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(c.sess, NGHTTP2_FLAG_NONE, iv, 1);
    while (srv_pump(&c) == 0 && !c.close_now &&
           (nghttp2_session_want_read(c.sess) || nghttp2_session_want_write(c.sess))) {
        ERR_clear_error();
        n = SSL_read(c.ssl, buf, sizeof buf);
        if (n <= 0 || nghttp2_session_mem_recv(c.sess, buf, (size_t)n) < 0)
            break;
    }
    /* lingering close: a close with unread input would send RST, and the client's kernel
     * would drop the response it has not read yet */
    ERR_clear_error();
    SSL_shutdown(c.ssl);
    shutdown(fd, SHUT_WR);
    {
        struct timeval tv = {.tv_sec = WIRE_WAIT_MS / 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (read(fd, buf, sizeof buf) > 0)
            ;
    }
    nghttp2_session_del(c.sess);
    SSL_free(c.ssl);
    ERR_clear_error();
    free(c.body);
}

static void *srv_main(void *arg)
{
    sigset_t pipe;
    int fd;

    (void)arg;
    /* the server writes to clients that may be gone; the client side (main thread) keeps
     * SIGPIPE's default action, so a client write raising it would fail the test */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    while ((fd = accept(wire_lfd, NULL, NULL)) >= 0) {
        atomic_fetch_add(&wire_connections, 1);
        atomic_store(&wire_conn_fd, fd);
        srv_conn(fd);
        atomic_store(&wire_conn_fd, -1);
        close(fd);
    }
    return NULL;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* rm -rf without a shell */
static int rm_tree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static int sh(const char *cmd)
{
    return system(cmd);
}

static int wire_setup_inner(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    char cmd[1024], ca[256], crt[256], key[256], err[256];
    struct tls_files sf = {NULL, crt, key}, cf = {ca, NULL, NULL};

    if (!mkdtemp(wire_dir))
        return -1;
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 2 -subj /CN=ca -keyout ca.key -out ca.crt 2>/dev/null && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=s "
             "-keyout s.key -out s.csr 2>/dev/null && printf "
             "'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' "
             ">ext && openssl x509 -req -in s.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-days 2 -extfile ext -out s.crt 2>/dev/null",
             wire_dir);
    if (sh(cmd) != 0)
        return -1;
    snprintf(ca, sizeof ca, "%s/ca.crt", wire_dir);
    snprintf(crt, sizeof crt, "%s/s.crt", wire_dir);
    snprintf(key, sizeof key, "%s/s.key", wire_dir);
    wire_server_tls = tls_server_new(&sf, err, sizeof err);
    wire_plain_ctx = SSL_CTX_new(TLS_server_method());
    if (!wire_plain_ctx || SSL_CTX_use_certificate_chain_file(wire_plain_ctx, crt) != 1 ||
        SSL_CTX_use_PrivateKey_file(wire_plain_ctx, key, SSL_FILETYPE_PEM) != 1)
        return -1;
    wire_client_tls = tls_client_new(&cf, err, sizeof err);
    if (!wire_server_tls || !wire_client_tls)
        return -1;
    wire_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (wire_lfd < 0 || bind(wire_lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(wire_lfd, 16) < 0 || getsockname(wire_lfd, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    wire_port = ntohs(sa.sin_port);
    snprintf(wire_endpoint, sizeof wire_endpoint, "127.0.0.1:%d", wire_port);
    if (pthread_create(&wire_thread, NULL, srv_main, NULL) != 0)
        return -1;
    wire_thread_started = true;
    return 0;
}

static int wire_teardown(void **state)
{
    (void)state;
    if (wire_thread_started) {
        int fd = atomic_load(&wire_conn_fd);
        /* a failed test may leave a client connection open: end it and accept() */
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        shutdown(wire_lfd, SHUT_RDWR);
        pthread_join(wire_thread, NULL);
    }
    if (wire_lfd >= 0)
        close(wire_lfd);
    tls_ctx_free(wire_server_tls);
    SSL_CTX_free(wire_plain_ctx);
    tls_ctx_free(wire_client_tls);
    if (strstr(wire_dir, "XXXXXX"))
        return 0; /* mkdtemp never ran */
    return rm_tree(wire_dir);
}

/* A setup that fails half way cleans up itself: cmocka skips the teardown then. */
static int wire_setup(void **state)
{
    if (wire_setup_inner() == 0)
        return 0;
    wire_teardown(state);
    return -1;
}

static struct grpc_channel *wire_channel(void)
{
    const char *eps[] = {wire_endpoint};
    struct grpc_channel_config cfg = {.endpoints = eps,
                                      .n_endpoints = 1,
                                      .tls = wire_client_tls,
                                      .connect_timeout_ms = WIRE_CALL_TIMEOUT_MS};
    char err[256];
    struct grpc_channel *ch = grpc_channel_new(&cfg, err, sizeof err);

    assert_non_null(ch);
    return ch;
}

static int wire_unary(struct grpc_channel *ch, const char *path, int timeout_ms, char *out,
                      size_t out_size, struct grpc_status *st)
{
    uint8_t *resp = (uint8_t *)&resp; /* must be reset by the call */
    size_t len = 1;
    int code = grpc_call_unary(ch, path, (const uint8_t *)"req", 3, timeout_ms, &resp, &len, st);

    if (code != GRPC_OK) {
        assert_null(resp);
        assert_int_equal(len, 0);
    }
    if (out) {
        assert_true(len < out_size);
        memcpy(out, resp ? (const char *)resp : "", len);
        out[len] = '\0';
    }
    free(resp);
    return code;
}

static void test_wire_unary(void **state)
{
    struct grpc_channel *ch = wire_channel();
    struct grpc_status st;
    char out[64];
    int conns;

    (void)state;
    if (wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st) != GRPC_OK)
        fail_msg("first call: %s %s", grpc_code_name(st.code), st.message);
    assert_string_equal(out, "hello");
    assert_string_equal(st.endpoint, wire_endpoint);
    conns = atomic_load(&wire_connections);
    assert_int_equal(wire_unary(ch, "/t/empty", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st),
                     GRPC_OK);
    assert_string_equal(out, "");

    /* the server sees what is left of the deadline, in milliseconds or seconds */
    assert_int_equal(wire_unary(ch, "/t/timeout", 5000, out, sizeof out, &st), GRPC_OK);
    assert_true(out[0] >= '1' && out[0] <= '9');
    assert_true(strtol(out, NULL, 10) <= (out[strlen(out) - 1] == 'S' ? 5 : 5000));
    assert_int_equal(wire_unary(ch, "/t/timeout", 0, out, sizeof out, &st), GRPC_OK);
    assert_string_equal(out, ""); /* no deadline: no header */

    /* trailers-only with a percent-encoded message */
    assert_int_equal(wire_unary(ch, "/t/message", WIRE_CALL_TIMEOUT_MS, NULL, 0, &st),
                     GRPC_FAILED_PRECONDITION);
    assert_string_equal(st.message, "not yet: wait");
    assert_false(st.transport);
    assert_int_equal(wire_unary(ch, "/t/unknown", WIRE_CALL_TIMEOUT_MS, NULL, 0, &st),
                     GRPC_UNIMPLEMENTED);
    /* all on one connection */
    assert_int_equal(atomic_load(&wire_connections), conns);
    grpc_channel_free(ch);
}

static void test_wire_connect(void **state)
{
    char ep[64];
    const char *eps[] = {ep};
    struct grpc_channel_config cfg = {.endpoints = eps,
                                      .n_endpoints = 1,
                                      .tls = wire_client_tls,
                                      .connect_timeout_ms = WIRE_CALL_TIMEOUT_MS};
    struct grpc_channel *ch;
    struct grpc_status st;
    char out[64], err[256];

    (void)state;
    /* by name: resolved (localhost may give ::1 first, where nothing listens), SNI, DNS SAN */
    snprintf(ep, sizeof ep, "https://localhost:%d", wire_port);
    ch = grpc_channel_new(&cfg, err, sizeof err);
    assert_non_null(ch);
    assert_int_equal(wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st), GRPC_OK);
    assert_string_equal(out, "hello");
    assert_string_equal(grpc_channel_endpoint(ch), ep);
    grpc_channel_free(ch);

    /* a TLS server that does not speak HTTP/2 */
    atomic_store(&wire_no_alpn, true);
    ch = wire_channel();
    assert_int_equal(wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, NULL, 0, &st), GRPC_UNAVAILABLE);
    atomic_store(&wire_no_alpn, false);
    assert_non_null(strstr(st.message, "ALPN h2"));
    assert_null(grpc_channel_endpoint(ch));
    grpc_channel_free(ch);
}

static void test_wire_malformed(void **state)
{
    static const struct {
        const char *path;
        int code;
        const char *msg;
    } cases[] = {
        {"/t/two", GRPC_INTERNAL, "more than one message"},
        {"/t/none", GRPC_INTERNAL, "without a message"},
        {"/t/big", GRPC_RESOURCE_EXHAUSTED, "larger than"},
        {"/t/compressed", GRPC_INTERNAL, "compressed"},
        {"/t/nostatus", GRPC_INTERNAL, "missing grpc-status"},
        {"/t/truncated", GRPC_INTERNAL, "inside a message"},
        {"/t/404", GRPC_UNIMPLEMENTED, "HTTP status 404"},
        {"/t/html", GRPC_INTERNAL, "content-type"},
        {"/t/rst", GRPC_INTERNAL, "reset by server"},
    };
    struct grpc_channel *ch = wire_channel();
    struct grpc_status st;

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        assert_int_equal(wire_unary(ch, cases[i].path, WIRE_CALL_TIMEOUT_MS, NULL, 0, &st),
                         cases[i].code);
        if (!strstr(st.message, cases[i].msg))
            fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].path, st.message, cases[i].msg);
        assert_true(st.transport);
    }
    /* none of these broke the connection */
    assert_non_null(grpc_channel_endpoint(ch));
    grpc_channel_free(ch);
}

/* Every common/etcd call refuses an answer it cannot decode: a local INTERNAL naming it. */
static void test_wire_etcd_undecodable(void **state)
{
    struct grpc_channel *ch = wire_channel();
    struct grpc_status st[9];
    struct etcd_member_list ml;
    struct etcd_member added;
    struct etcd_status es;
    struct etcd_alarm *alarms = NULL;
    size_t n_alarms;
    uint32_t hash;
    int64_t crev, count;
    const char *peers[] = {"https://127.0.0.1:2380"};
    const int t = WIRE_CALL_TIMEOUT_MS;

    (void)state;
    assert_int_equal(etcd_member_list(ch, t, &ml, &st[0]), GRPC_INTERNAL);
    assert_int_equal(etcd_member_add(ch, peers, 1, true, t, &added, NULL, &st[1]), GRPC_INTERNAL);
    assert_int_equal(etcd_member_remove(ch, 7, t, NULL, &st[2]), GRPC_INTERNAL);
    assert_int_equal(etcd_status(ch, t, &es, &st[3]), GRPC_INTERNAL);
    assert_int_equal(etcd_alarm_list(ch, t, NULL, &alarms, &n_alarms, &st[4]), GRPC_INTERNAL);
    assert_int_equal(etcd_range_serializable(ch, "k", t, NULL, &count, &st[5]), GRPC_INTERNAL);
    assert_int_equal(etcd_put(ch, "k", (const uint8_t *)"v", 1, t, &st[6]), GRPC_INTERNAL);
    assert_int_equal(etcd_hashkv(ch, 0, t, NULL, &hash, &crev, &st[7]), GRPC_INTERNAL);
    assert_int_equal(etcd_defragment(ch, t, &st[8]), GRPC_INTERNAL);
    for (size_t i = 0; i < ARRAY_SIZE(st); i++) {
        if (!strstr(st[i].message, "malformed message"))
            fail_msg("call %zu: \"%s\"", i, st[i].message);
        assert_true(st[i].transport);
    }
    assert_null(alarms);
    assert_int_equal(etcd_status(ch, t, &es, NULL), GRPC_INTERNAL); /* no status wanted */
    grpc_channel_free(ch);
}

static void test_wire_refused_retried(void **state)
{
    struct grpc_channel *ch = wire_channel();
    struct grpc_status st;
    char out[64];
    int conns = atomic_load(&wire_connections), reqs = atomic_load(&wire_requests);

    (void)state;
    atomic_store(&wire_refused, 0);
    assert_int_equal(wire_unary(ch, "/t/refuse-once", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st),
                     GRPC_OK);
    assert_string_equal(out, "second");
    assert_int_equal(atomic_load(&wire_requests), reqs + 2);
    assert_int_equal(atomic_load(&wire_connections), conns + 2);
    grpc_channel_free(ch);
}

static void test_wire_goaway_and_eof(void **state)
{
    struct grpc_channel *ch = wire_channel();
    struct grpc_status st;
    char out[64];
    int conns = atomic_load(&wire_connections), reqs;

    (void)state;
    /* GOAWAY after a response: that call is fine, the next one uses a new connection */
    assert_int_equal(wire_unary(ch, "/t/goaway", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st),
                     GRPC_OK);
    assert_string_equal(out, "bye");
    if (wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st) != GRPC_OK)
        fail_msg("after GOAWAY: %s %s", grpc_code_name(st.code), st.message);
    assert_int_equal(atomic_load(&wire_connections), conns + 2);

    /* EOF after the request was sent: not retried (it may have been applied) */
    reqs = atomic_load(&wire_requests);
    assert_int_equal(wire_unary(ch, "/t/eof", WIRE_CALL_TIMEOUT_MS, NULL, 0, &st),
                     GRPC_UNAVAILABLE);
    assert_true(st.transport);
    assert_non_null(strstr(st.message, "lost"));
    assert_int_equal(atomic_load(&wire_requests), reqs + 1);
    assert_null(grpc_channel_endpoint(ch));
    /* and the next call reconnects */
    assert_int_equal(wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, out, sizeof out, &st), GRPC_OK);
    grpc_channel_free(ch);
}

static int wire_count(void *arg, const uint8_t *msg, size_t len)
{
    (void)arg;
    (void)msg;
    (void)len;
    fail_msg("no message expected");
    return 1;
}

static void test_wire_deadline(void **state)
{
    struct grpc_channel *ch = wire_channel();
    struct grpc_status st;
    long long t0;

    (void)state;
    /* connect first: the deadline below must hit the stream, not a slow handshake */
    assert_int_equal(wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, NULL, 0, &st), GRPC_OK);
    atomic_store(&wire_last_rst, 0);
    t0 = clock_mono_ms();
    assert_int_equal(wire_unary(ch, "/t/hang", 300, NULL, 0, &st), GRPC_DEADLINE_EXCEEDED);
    assert_true(clock_mono_ms() - t0 >= 290);
    assert_true(st.transport);
    /* the server was told */
    for (long long until = clock_mono_ms() + WIRE_WAIT_MS;
         atomic_load(&wire_last_rst) == 0 && clock_mono_ms() < until;)
        usleep(1000);
    assert_int_equal(atomic_load(&wire_last_rst), NGHTTP2_CANCEL);

    /* a stream with only an idle limit */
    t0 = clock_mono_ms();
    assert_int_equal(grpc_call_stream(ch, "/t/hang", NULL, 0, 0, 300, wire_count, NULL, &st),
                     GRPC_DEADLINE_EXCEEDED);
    assert_true(clock_mono_ms() - t0 >= 290);
    assert_non_null(strstr(st.message, "no data from"));
    grpc_channel_free(ch);
}

struct wire_stream {
    int n, cancel_at, slow; /* slow: the first `slow` messages take SLOW_CALLBACK_US each */
    uint8_t *want;
};

#define SLOW_CALLBACK_US 300000
#define SHORT_IDLE_MS 200

static int wire_on_message(void *arg, const uint8_t *msg, size_t len)
{
    struct wire_stream *w = arg;
    size_t want = stream_msg(w->n, w->want);

    assert_int_equal(len, want);
    assert_memory_equal(msg, w->want, len);
    if (w->n < w->slow)
        usleep(SLOW_CALLBACK_US);
    w->n++;
    return w->cancel_at && w->n == w->cancel_at;
}

static void test_wire_stream(void **state)
{
    struct grpc_channel *ch = wire_channel();
    struct wire_stream w = {.want = malloc(40000)};
    struct grpc_status st;
    int conns;

    (void)state;
    assert_non_null(w.want);
    if (grpc_call_stream(ch, "/t/stream", NULL, 0, WIRE_CALL_TIMEOUT_MS, WIRE_CALL_TIMEOUT_MS,
                         wire_on_message, &w, &st) != GRPC_OK)
        fail_msg("stream: %s %s", grpc_code_name(st.code), st.message);
    assert_int_equal(w.n, WIRE_STREAM_MESSAGES);
    conns = atomic_load(&wire_connections);

    /* cancelled from the callback; the connection stays usable */
    w.n = 0;
    w.cancel_at = 3;
    assert_int_equal(grpc_call_stream(ch, "/t/stream", NULL, 0, 0, 0, wire_on_message, &w, &st),
                     GRPC_CANCELLED);
    assert_int_equal(w.n, 3);
    assert_int_equal(wire_unary(ch, "/t/ok", WIRE_CALL_TIMEOUT_MS, NULL, 0, &st), GRPC_OK);
    assert_int_equal(atomic_load(&wire_connections), conns);

    /* a consumer slower than the idle limit is not an idle server: the server holds message 1
     * until the client's loop has come back from the slow callback for message 0 */
    w.n = 0;
    w.cancel_at = 0;
    w.slow = 1;
    if (grpc_call_stream(ch, "/t/ping-pause", NULL, 0, 0, SHORT_IDLE_MS, wire_on_message, &w,
                         &st) != GRPC_OK)
        fail_msg("slow consumer: %s %s", grpc_code_name(st.code), st.message);
    assert_int_equal(w.n, 2);
    w.slow = 0;

    /* a unary-style response to a streaming call is one message */
    w.n = 0;
    w.cancel_at = 0;
    assert_int_equal(grpc_call_stream(ch, "/t/empty", NULL, 0, 0, 0, wire_on_message, &w, &st),
                     GRPC_OK);
    assert_int_equal(w.n, 1);
    free(w.want);
    grpc_channel_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_framer_byte_by_byte),
        cmocka_unit_test(test_framer_many_in_one_feed),
        cmocka_unit_test(test_framer_all_splits),
        cmocka_unit_test(test_framer_oversize),
        cmocka_unit_test(test_framer_compressed),
        cmocka_unit_test(test_framer_cancel),
        cmocka_unit_test(test_framer_truncated),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_timeout_header),
        cmocka_unit_test(test_channel_config),
    };
    const struct CMUnitTest wire[] = {
        cmocka_unit_test(test_wire_unary),           cmocka_unit_test(test_wire_connect),
        cmocka_unit_test(test_wire_malformed),       cmocka_unit_test(test_wire_etcd_undecodable),
        cmocka_unit_test(test_wire_refused_retried), cmocka_unit_test(test_wire_goaway_and_eof),
        cmocka_unit_test(test_wire_deadline),        cmocka_unit_test(test_wire_stream),
    };
    int failed = cmocka_run_group_tests_name("grpc helpers", tests, NULL, NULL);

    return failed +
           cmocka_run_group_tests_name("grpc on the wire", wire, wire_setup, wire_teardown);
}
