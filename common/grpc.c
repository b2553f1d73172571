/* grpc.c - blocking gRPC client calls over one HTTP/2 (nghttp2) + TLS connection per channel.
 *
 * Endpoints, connect/handshake with timeouts, failover, the HTTP/2 session, deadlines and the
 * gRPC framing and status mapping live here. TLS contexts are tls.c's; message encoding and the
 * meaning of calls are etcd.c's. */
#include "grpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "array.h"
#include "bounds.h"
#include "clock.h"
#include "hex.h"

#define GRPC_PREFIX 5
#define GRPC_USER_AGENT "etcd-recovery-grpc/1"

struct grpc_endpoint {
    char *raw;
    char host[GRPC_MAX_HOST]; /* without brackets */
    char port[8];
    char authority[GRPC_MAX_AUTHORITY]; /* host:port, [v6]:port */
};

struct grpc_call {
    int32_t stream_id;
    const uint8_t *req;
    size_t req_len, sent; /* sent counts the 5-byte prefix too */
    uint8_t prefix[GRPC_PREFIX];
    struct grpc_framer framer;
    bool unary;
    grpc_message_fn fn;
    void *arg;
    uint8_t *resp;
    size_t resp_len, n_messages;
    bool have_headers;
    int http_status;
    char content_type[GRPC_MAX_CONTENT_TYPE];
    bool have_grpc_status;
    char grpc_status[GRPC_MAX_STATUS_VALUE];
    bool have_grpc_message;
    char grpc_message[GRPC_MAX_STATUS_MESSAGE];
    bool closed;
    uint32_t close_error;
    int local_code; /* non-zero once we aborted the stream ourselves */
    char local_msg[GRPC_MAX_STATUS_MESSAGE];
};

struct grpc_conn {
    int fd;
    SSL *ssl;
    BIO_METHOD *bio_meth;
    nghttp2_session *sess;
    size_t ep;
    bool broken, goaway, read_wants_write, write_wants_read;
    char why[GRPC_MAX_STATUS_MESSAGE];
    struct grpc_call *call; /* the one call in flight, or NULL */
    long long last_rx_ms;
    size_t out_off, out_len;
    uint8_t out[GRPC_IO_CHUNK];
    uint8_t in[GRPC_IO_CHUNK];
};

struct grpc_channel {
    struct grpc_endpoint eps[GRPC_MAX_ENDPOINTS];
    size_t n_eps;
    size_t next; /* where the next connect starts: the last endpoint that worked */
    struct tls_ctx *tls;
    int connect_timeout_ms;
    uint32_t window;
    struct grpc_conn *conn;
};

static void set_msg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    /* human-readable reasons: truncation is acceptable */
    if (vsnprintf(buf, len, fmt, ap) < 0 && len)
        buf[0] = '\0';
    va_end(ap);
}

/* ---- framing and status helpers ------------------------------------------------------- */

void grpc_framer_init(struct grpc_framer *f, size_t max_message)
{
    memset(f, 0, sizeof *f);
    f->max_message = max_message ? max_message : GRPC_MAX_MESSAGE;
}

void grpc_framer_free(struct grpc_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->buf_cap = 0;
}

bool grpc_framer_idle(const struct grpc_framer *f)
{
    return !f->in_message && f->hdr_have == 0;
}

void grpc_frame_header(uint8_t out[5], size_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* Validates a complete 5-byte prefix and starts a message. */
static int framer_start(struct grpc_framer *f, const uint8_t hdr[5])
{
    uint32_t len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];

    if (hdr[0] != 0)
        return -EPROTO; /* compressed (or reserved flags): we never accept compression */
    if (len > f->max_message)
        return -EMSGSIZE;
    f->need = len;
    f->have = 0;
    f->in_message = true;
    return 0;
}

static int framer_deliver(struct grpc_framer *f, const uint8_t *msg, size_t len, grpc_message_fn fn,
                          void *arg)
{
    static const uint8_t empty[1];

    f->in_message = false;
    f->hdr_have = 0;
    if (fn && fn(arg, len ? msg : empty, len) != 0)
        return -ECANCELED;
    return 0;
}

int grpc_framer_feed(struct grpc_framer *f, const uint8_t *data, size_t len,
                     grpc_message_fn on_message, void *arg)
{
    size_t take;
    int rv;

    while (len > 0) {
        if (!f->in_message) {
            if (f->hdr_have == 0 && len >= GRPC_PREFIX) {
                /* whole prefix in the input: no copy */
                if ((rv = framer_start(f, data)) < 0)
                    return rv;
                data += GRPC_PREFIX;
                len -= GRPC_PREFIX;
            } else {
                take = GRPC_PREFIX - f->hdr_have;
                take = take < len ? take : len;
                memcpy(f->hdr + f->hdr_have, data, take);
                f->hdr_have += take;
                data += take;
                len -= take;
                if (f->hdr_have < GRPC_PREFIX)
                    return 0;
                if ((rv = framer_start(f, f->hdr)) < 0)
                    return rv;
            }
            if (f->need == 0 || len >= f->need) {
                /* whole message in the input: hand it over in place */
                size_t n = f->need;
                if ((rv = framer_deliver(f, data, n, on_message, arg)) < 0)
                    return rv;
                data += n;
                len -= n;
                continue;
            }
            if (len == 0)
                return 0; /* the input ended right after the prefix */
        }
        take = f->need - f->have;
        take = take < len ? take : len;
        if (f->buf_cap < f->have + take) {
            /* grow with the data actually received, not with what the prefix claims */
            size_t cap =
                f->buf_cap * 2 > GRPC_FRAMER_MIN_BUF ? f->buf_cap * 2 : GRPC_FRAMER_MIN_BUF;
            uint8_t *nb;
            if (cap < f->have + take)
                cap = f->have + take;
            if (cap > f->need)
                cap = f->need;
            nb = realloc(f->buf, cap);
            if (!nb)
                return -ENOMEM;
            f->buf = nb;
            f->buf_cap = cap;
        }
        memcpy(f->buf + f->have, data, take);
        f->have += take;
        data += take;
        len -= take;
        if (f->have == f->need && (rv = framer_deliver(f, f->buf, f->need, on_message, arg)) < 0)
            return rv;
    }
    return 0;
}

const char *grpc_code_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    static _Thread_local char other[24];

    if (code >= 0 && (size_t)code < ARRAY_SIZE(names))
        return names[code];
    set_msg(other, sizeof other, "CODE_%d", code);
    return other;
}

void grpc_timeout_header(char out[16], int timeout_ms)
{
    long long ms = timeout_ms > 0 ? timeout_ms : 0;

    /* the value may have at most 8 digits; prefer whole seconds when exact */
    if (ms > 0 && ms % 1000 == 0)
        set_msg(out, 16, "%lldS", ms / 1000);
    else if (ms <= 99999999)
        set_msg(out, 16, "%lldm", ms);
    else
        set_msg(out, 16, "%lldS", (ms + 999) / 1000); /* round up: never shorter than asked */
}

void grpc_percent_decode(char *s)
{
    char *w = s;

    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0) {
            *w++ = (char)(hi << 4 | lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

void grpc_status_from_trailers(struct grpc_status *st, const char *grpc_status,
                               const char *grpc_message)
{
    unsigned long code = 0;
    const char *p;

    if (!grpc_status) {
        st->code = GRPC_INTERNAL;
        st->transport = true;
        set_msg(st->message, sizeof st->message, "missing grpc-status");
        return;
    }
    for (p = grpc_status; *p >= '0' && *p <= '9' && code <= 1000000; p++)
        code = code * 10 + (unsigned long)(*p - '0');
    if (p == grpc_status || *p != '\0' || code > 1000000) {
        st->code = GRPC_INTERNAL;
        st->transport = true;
        set_msg(st->message, sizeof st->message, "malformed grpc-status \"%.32s\"", grpc_status);
        return;
    }
    st->code = (int)code;
    st->transport = false;
    st->message[0] = '\0';
    if (grpc_message) {
        set_msg(st->message, sizeof st->message, "%s", grpc_message);
        grpc_percent_decode(st->message);
    }
    if (st->message[0] == '\0' && st->code != GRPC_OK)
        set_msg(st->message, sizeof st->message, "%s", grpc_code_name(st->code));
}

/* ---- endpoints ------------------------------------------------------------------------ */

static int parse_endpoint(const char *s, struct grpc_endpoint *ep, char *err, size_t err_len)
{
    const char *p = s, *host, *hend, *port = NULL, *end;
    size_t hlen, plen;
    unsigned long pnum = 0;
    bool v6 = false;

    if (strncmp(p, "https://", 8) == 0) {
        p += 8;
    } else if (strstr(p, "://")) {
        set_msg(err, err_len, "endpoint %.128s: only https:// is supported", s);
        return -EINVAL;
    }
    end = p + strcspn(p, "/"); /* ignore a trailing path ("https://h:2379/") */
    if (*p == '[') {
        host = p + 1;
        hend = memchr(host, ']', (size_t)(end - host));
        if (!hend) {
            set_msg(err, err_len, "endpoint %.128s: missing ']'", s);
            return -EINVAL;
        }
        v6 = true;
        if (hend + 1 < end) {
            if (hend[1] != ':') {
                set_msg(err, err_len, "endpoint %.128s: junk after ']'", s);
                return -EINVAL;
            }
            port = hend + 2;
        }
    } else {
        host = p;
        hend = memchr(p, ':', (size_t)(end - p));
        if (hend)
            port = hend + 1;
        else
            hend = end;
        if (port && memchr(port, ':', (size_t)(end - port))) {
            set_msg(err, err_len, "endpoint %.128s: IPv6 addresses need brackets", s);
            return -EINVAL;
        }
    }
    hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof ep->host) {
        set_msg(err, err_len, "endpoint %.128s: bad host", s);
        return -EINVAL;
    }
    memcpy(ep->host, host, hlen);
    ep->host[hlen] = '\0';
    if (port) {
        plen = (size_t)(end - port);
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9' || pnum > 65535) {
                pnum = 0;
                break;
            }
            pnum = pnum * 10 + (unsigned long)(port[i] - '0');
        }
        if (plen == 0 || pnum == 0 || pnum > 65535) {
            set_msg(err, err_len, "endpoint %.128s: bad port", s);
            return -EINVAL;
        }
    } else {
        pnum = 2379; /* etcd's client port */
    }
    set_msg(ep->port, sizeof ep->port, "%lu", pnum);
    set_msg(ep->authority, sizeof ep->authority, v6 ? "[%s]:%s" : "%s:%s", ep->host, ep->port);
    ep->raw = strdup(s);
    if (!ep->raw) {
        set_msg(err, err_len, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* ---- connection ----------------------------------------------------------------------- */

/* OpenSSL's socket BIO writes with write(2): a peer that closed would raise SIGPIPE in a
 * program that did not ignore it. This BIO is the socket BIO with send(MSG_NOSIGNAL). */
static int bio_write_nosignal(BIO *b, const char *in, int inl)
{
    int fd = -1;
    ssize_t n;

    BIO_get_fd(b, &fd);
    errno = 0;
    n = send(fd, in, (size_t)inl, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (n <= 0 && BIO_sock_should_retry((int)n))
        BIO_set_retry_write(b);
    return (int)n;
}

static BIO_METHOD *bio_method_new(void)
{
    const BIO_METHOD *sock = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "socket-nosignal");

    if (!m)
        return NULL;
    BIO_meth_set_write(m, bio_write_nosignal);
    BIO_meth_set_read(m, BIO_meth_get_read(sock));
    BIO_meth_set_puts(m, BIO_meth_get_puts(sock));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock));
    BIO_meth_set_create(m, BIO_meth_get_create(sock));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock));
    return m;
}

static void conn_free(struct grpc_conn *c, bool graceful)
{
    if (!c)
        return;
    if (graceful && c->sess && c->ssl && !c->broken) {
        /* best effort, never blocks: GOAWAY and close_notify so the server logs no error */
        if (nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR) == 0 &&
            nghttp2_session_send(c->sess) == 0 && c->out_len > c->out_off) {
            ERR_clear_error();
            (void)SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        }
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl);
    }
    nghttp2_session_del(c->sess);
    SSL_free(c->ssl); /* frees the BIO, which does not close fd */
    BIO_meth_free(c->bio_meth);
    if (c->fd >= 0)
        close(c->fd);
    ERR_clear_error();
    free(c);
}

static void conn_break(struct grpc_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_break(struct grpc_conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->broken)
        return; /* keep the first reason */
    c->broken = true;
    va_start(ap, fmt);
    if (vsnprintf(c->why, sizeof c->why, fmt, ap) < 0)
        c->why[0] = '\0';
    va_end(ap);
}

/* Writes buffered output. Returns 0 when all is written or the socket is full. */
static void conn_flush(struct grpc_conn *c)
{
    char why[200];
    int n, e;

    c->write_wants_read = false;
    while (!c->broken && c->out_off < c->out_len) {
        ERR_clear_error();
        errno = 0;
        n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        e = SSL_get_error(c->ssl, n);
        c->write_wants_read = e == SSL_ERROR_WANT_READ;
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_SYSCALL && errno)
            conn_break(c, "write: %s", strerror(errno));
        else
            conn_break(c, "tls: %s", tls_error_string(c->ssl, why, sizeof why));
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    struct grpc_conn *c = user;
    size_t room;

    (void)s;
    (void)flags;
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    room = sizeof c->out - c->out_len;
    if (room == 0)
        return NGHTTP2_ERR_WOULDBLOCK; /* output threshold: flush first */
    len = len < room ? len : room;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return (ssize_t)len;
}

/* Hands nghttp2's output to TLS until either side would block. */
static void conn_send(struct grpc_conn *c)
{
    int rv;

    while (!c->broken) {
        conn_flush(c);
        if (c->broken || c->out_len > 0 || !nghttp2_session_want_write(c->sess))
            return;
        if ((rv = nghttp2_session_send(c->sess)) != 0) {
            conn_break(c, "http2: %s", nghttp2_strerror(rv));
            return;
        }
        if (c->out_len == 0)
            return;
    }
}

/* Reads what TLS has, feeding nghttp2 (whose callbacks run the framer and the user's
 * callback right here). Beyond one chunk, only TLS's read-ahead buffer (GRPC_TLS_READ_BUFFER
 * of ciphertext) is read before the consumer has taken it. */
static void conn_recv(struct grpc_conn *c)
{
    char why[200];
    ssize_t rv;
    int n, e;

    c->read_wants_write = false;
    for (int i = 0; i < GRPC_READ_BATCH && !c->broken; i++) {
        ERR_clear_error();
        errno = 0;
        n = SSL_read(c->ssl, c->in, (int)sizeof c->in);
        if (n > 0) {
            c->last_rx_ms = clock_mono_ms();
            rv = nghttp2_session_mem_recv(c->sess, c->in, (size_t)n);
            c->last_rx_ms = clock_mono_ms(); /* the callbacks' time is not the server's silence */
            if (rv < 0)
                conn_break(c, "http2: %s", nghttp2_strerror((int)rv));
            if (c->call && c->call->closed)
                return; /* the rest waits for the next call */
            continue;
        }
        e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_WANT_WRITE) {
            c->read_wants_write = true;
            return;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            conn_break(c, "connection closed by peer");
        else if (e == SSL_ERROR_SYSCALL && errno)
            conn_break(c, "read: %s", strerror(errno));
        else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
            conn_break(c, "connection closed by peer");
        else
            conn_break(c, "tls: %s", tls_error_string(c->ssl, why, sizeof why));
    }
}

/* ---- nghttp2 callbacks ---------------------------------------------------------------- */

static struct grpc_call *stream_call(struct grpc_conn *c, int32_t stream_id)
{
    return c->call && c->call->stream_id == stream_id ? c->call : NULL;
}

static void call_abort(nghttp2_session *s, struct grpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_abort(nghttp2_session *s, struct grpc_call *call, int code, const char *fmt, ...)
{
    va_list ap;

    if (call->local_code)
        return;
    call->local_code = code;
    va_start(ap, fmt);
    if (vsnprintf(call->local_msg, sizeof call->local_msg, fmt, ap) < 0)
        call->local_msg[0] = '\0';
    va_end(ap);
    (void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
}

static ssize_t on_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct grpc_call *call = src->ptr;
    size_t done = 0, take;

    (void)s;
    (void)stream_id;
    (void)user;
    if (call->sent < GRPC_PREFIX) {
        take = GRPC_PREFIX - call->sent;
        take = take < len ? take : len;
        memcpy(buf, call->prefix + call->sent, take);
        call->sent += take;
        done += take;
    }
    if (call->sent >= GRPC_PREFIX && done < len) {
        size_t off = call->sent - GRPC_PREFIX;
        take = call->req_len - off;
        take = take < len - done ? take : len - done;
        if (take)
            memcpy(buf + done, call->req + off, take);
        call->sent += take;
        done += take;
    }
    if (call->sent == GRPC_PREFIX + call->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)done;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct grpc_call *call = stream_call(user, frame->hd.stream_id);
    int vlen = valuelen > 512 ? 512 : (int)valuelen;

    (void)s;
    (void)flags;
    if (!call || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
    if (IS(":status")) {
        call->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            call->http_status = call->http_status * 10 + (value[i] - '0');
    } else if (IS("content-type")) {
        set_msg(call->content_type, sizeof call->content_type, "%.*s", vlen, (const char *)value);
    } else if (IS("grpc-status")) {
        call->have_grpc_status = true;
        set_msg(call->grpc_status, sizeof call->grpc_status, "%.*s", vlen, (const char *)value);
    } else if (IS("grpc-message")) {
        call->have_grpc_message = true;
        set_msg(call->grpc_message, sizeof call->grpc_message, "%.*s", vlen, (const char *)value);
    }
#undef IS
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct grpc_conn *c = user;
    struct grpc_call *call;

    (void)s;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true; /* no new streams here; streams it refused close REFUSED_STREAM */
        return 0;
    }
    call = stream_call(c, frame->hd.stream_id);
    if (call && frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE)
        call->have_headers = true;
    return 0;
}

static int call_on_message(void *arg, const uint8_t *msg, size_t len)
{
    struct grpc_call *call = arg;

    call->n_messages++;
    if (!call->unary)
        return call->fn(call->arg, msg, len);
    if (call->n_messages > 1)
        return 1; /* reported as a protocol error by the caller of the framer */
    if (len) {
        call->resp = malloc(len);
        if (!call->resp)
            return 1;
        memcpy(call->resp, msg, len);
    }
    call->resp_len = len;
    return 0;
}

static bool grpc_content_type(const char *ct)
{
    /* "application/grpc" or "application/grpc+proto", "application/grpc;..." */
    return strncmp(ct, "application/grpc", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == '+' || ct[16] == ';');
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user)
{
    struct grpc_call *call = stream_call(user, stream_id);
    int rv;

    (void)flags;
    if (!call || call->local_code)
        return 0;
    if (call->http_status != 200 || !grpc_content_type(call->content_type))
        return 0; /* not a gRPC body; the status is reported from the headers */
    rv = grpc_framer_feed(&call->framer, data, len, call_on_message, call);
    if (rv == -ECANCELED && call->unary && call->n_messages > 1)
        call_abort(s, call, GRPC_INTERNAL, "unary response has more than one message");
    else if (rv == -ECANCELED && call->unary)
        call_abort(s, call, GRPC_RESOURCE_EXHAUSTED, "out of memory for the response");
    else if (rv == -ECANCELED)
        call_abort(s, call, GRPC_CANCELLED, "cancelled by the message callback");
    else if (rv == -EMSGSIZE)
        call_abort(s, call, GRPC_RESOURCE_EXHAUSTED, "response message larger than %zu bytes",
                   call->framer.max_message);
    else if (rv == -EPROTO)
        call_abort(s, call, GRPC_INTERNAL, "compressed response message (not requested)");
    else if (rv < 0)
        call_abort(s, call, GRPC_RESOURCE_EXHAUSTED, "out of memory for a response message");
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    struct grpc_call *call = stream_call(user, stream_id);

    (void)s;
    if (call) {
        call->closed = true;
        call->close_error = error_code;
    }
    return 0;
}

static int conn_session_new(struct grpc_channel *ch, struct grpc_conn *c, char *err, size_t err_len)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, ch->window},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, GRPC_MAX_FRAME},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_MAX_HEADER_LIST},
    };
    int rv;

    if ((rv = nghttp2_session_callbacks_new(&cbs)) != 0)
        goto out;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if ((rv = nghttp2_session_client_new(&c->sess, cbs, c)) != 0)
        goto out;
    if ((rv = nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv))) != 0)
        goto out;
    /* the connection window starts at 64 KiB whatever SETTINGS say: raise it as well */
    rv = nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, (int32_t)ch->window);
out:
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        set_msg(err, err_len, "http2 session: %s", nghttp2_strerror(rv));
    return rv ? -ENOMEM : 0;
}

/* Waits for fd; returns >0 ready, 0 timed out, <0 -errno. deadline_ms 0 = none. */
static int wait_fd(int fd, short events, long long deadline_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    long long left;
    int rv;

    for (;;) {
        left = deadline_ms ? deadline_ms - clock_mono_ms() : -1;
        if (deadline_ms && left <= 0)
            return 0;
        rv = poll(&p, 1, left < 0 ? -1 : (int)left);
        if (rv >= 0)
            return rv;
        if (errno != EINTR)
            return -errno;
    }
}

static int tcp_connect(const struct grpc_endpoint *ep, long long deadline, int timeout_ms,
                       bool *timed_out, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    unsigned char tmp[sizeof(struct in6_addr)];
    int fd = -1, rv, soerr, one = 1;
    socklen_t sl = sizeof soerr;

    if (inet_pton(AF_INET, ep->host, tmp) == 1 || inet_pton(AF_INET6, ep->host, tmp) == 1)
        hints.ai_flags |= AI_NUMERICHOST;
    /* getaddrinfo has no timeout; Kubernetes names resolve from /etc/hosts or a local DNS */
    rv = getaddrinfo(ep->host, ep->port, &hints, &res);
    if (rv != 0) {
        set_msg(err, err_len, "resolve %s: %s", ep->host,
                rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
        return -EHOSTUNREACH;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            set_msg(err, err_len, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            rv = wait_fd(fd, POLLOUT, deadline);
            if (rv == 0) {
                *timed_out = true;
                set_msg(err, err_len, "connect %s: timed out after %d ms", ep->authority,
                        timeout_ms);
                close(fd);
                fd = -1;
                break; /* the time is spent */
            }
            soerr = rv < 0 ? -rv : 0;
            if (!soerr && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            if (!soerr)
                break;
            errno = soerr;
        }
        set_msg(err, err_len, "connect %s: %s", ep->authority, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd >= 0 ? fd : -ECONNREFUSED;
}

/* TCP connect + TLS handshake + HTTP/2 session to endpoint idx, all before `deadline`. */
static struct grpc_conn *conn_open(struct grpc_channel *ch, size_t idx, long long deadline,
                                   int timeout_ms, bool *timed_out, char *err, size_t err_len)
{
    const struct grpc_endpoint *ep = &ch->eps[idx];
    struct grpc_conn *c = calloc(1, sizeof *c);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    char why[200];
    BIO *bio;
    int rv, e;

    if (!c) {
        set_msg(err, err_len, "out of memory");
        return NULL;
    }
    c->ep = idx;
    c->fd = tcp_connect(ep, deadline, timeout_ms, timed_out, err, err_len);
    if (c->fd < 0)
        goto fail;
    c->ssl = tls_client_ssl(ch->tls, ep->host);
    c->bio_meth = bio_method_new();
    bio = c->bio_meth ? BIO_new(c->bio_meth) : NULL;
    if (!c->ssl || !bio) {
        BIO_free(bio);
        set_msg(err, err_len, "tls setup for %s: %s", ep->authority,
                tls_error_string(NULL, why, sizeof why));
        goto fail;
    }
    BIO_set_fd(bio, c->fd, BIO_NOCLOSE);
    SSL_set_bio(c->ssl, bio, bio);
    /* Read ahead into a buffer of several records: one read() per GRPC_TLS_READ_BUFFER rather
     * than two per 16 KiB record (header, then body), which halves a snapshot's syscalls.
     * Every wait checks SSL_has_pending() first, which covers bytes read ahead. */
    SSL_set_read_ahead(c->ssl, 1);
    SSL_set_default_read_buffer_len(c->ssl, GRPC_TLS_READ_BUFFER);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        rv = SSL_connect(c->ssl);
        if (rv == 1)
            break;
        e = SSL_get_error(c->ssl, rv);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            rv = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
            if (rv > 0)
                continue;
            if (rv == 0) {
                *timed_out = true;
                set_msg(err, err_len, "tls handshake with %s: timed out after %d ms", ep->authority,
                        timeout_ms);
            } else {
                set_msg(err, err_len, "tls handshake with %s: poll: %s", ep->authority,
                        strerror(-rv));
            }
            goto fail;
        }
        if (e == SSL_ERROR_SYSCALL && errno)
            set_msg(err, err_len, "tls handshake with %s: %s", ep->authority, strerror(errno));
        else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
            set_msg(err, err_len, "tls handshake with %s: connection closed by peer",
                    ep->authority);
        else
            set_msg(err, err_len, "tls handshake with %s: %s", ep->authority,
                    tls_error_string(c->ssl, why, sizeof why));
        goto fail;
    }
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        set_msg(err, err_len, "tls handshake with %s: server did not select HTTP/2 (ALPN h2)",
                ep->authority);
        goto fail;
    }
    if (conn_session_new(ch, c, err, err_len) < 0)
        goto fail;
    c->last_rx_ms = clock_mono_ms();
    return c;
fail:
    conn_free(c, false);
    return NULL;
}

/* Before reusing an idle connection: process what arrived meanwhile (GOAWAY, EOF, PING). */
static bool conn_usable(struct grpc_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    if (!c->broken && !c->goaway && (SSL_has_pending(c->ssl) || poll(&p, 1, 0) > 0))
        conn_recv(c);
    return !c->broken && !c->goaway &&
           (nghttp2_session_want_read(c->sess) || nghttp2_session_want_write(c->sess));
}

static void status_init(struct grpc_status *st)
{
    st->code = GRPC_OK;
    st->transport = false;
    st->message[0] = '\0';
    st->endpoint[0] = '\0';
}

static void status_set(struct grpc_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void status_set(struct grpc_status *st, int code, const char *fmt, ...)
{
    va_list ap;

    st->code = code;
    st->transport = true;
    va_start(ap, fmt);
    if (vsnprintf(st->message, sizeof st->message, fmt, ap) < 0)
        st->message[0] = '\0';
    va_end(ap);
}

static void status_endpoint(struct grpc_status *st, const struct grpc_endpoint *ep)
{
    set_msg(st->endpoint, sizeof st->endpoint, "%s", ep->raw);
}

/* Makes sure ch->conn is usable, connecting in turn from the last good endpoint. */
static int channel_connect(struct grpc_channel *ch, long long deadline, int call_timeout_ms,
                           struct grpc_status *st)
{
    char err[GRPC_MAX_STATUS_MESSAGE], all[GRPC_MAX_STATUS_MESSAGE] = "";
    size_t used = 0;

    if (ch->conn && conn_usable(ch->conn))
        return 0;
    grpc_channel_close(ch);
    for (size_t k = 0; k < ch->n_eps; k++) {
        size_t idx = (ch->next + k) % ch->n_eps;
        long long now = clock_mono_ms(), ep_deadline = now + ch->connect_timeout_ms;
        int budget = ch->connect_timeout_ms;
        bool timed_out = false, by_call = false;

        if (deadline && deadline <= now) {
            status_set(st, GRPC_DEADLINE_EXCEEDED,
                       "deadline of %d ms exceeded while connecting%s%s", call_timeout_ms,
                       used ? ": " : "", all);
            return st->code;
        }
        if (deadline && deadline < ep_deadline) {
            ep_deadline = deadline;
            budget = (int)(deadline - now);
            by_call = true;
        }
        err[0] = '\0';
        status_endpoint(st, &ch->eps[idx]);
        ch->conn = conn_open(ch, idx, ep_deadline, budget, &timed_out, err, sizeof err);
        if (ch->conn) {
            ch->next = idx;
            return 0;
        }
        if (timed_out && by_call) {
            status_set(st, GRPC_DEADLINE_EXCEEDED, "deadline of %d ms exceeded: %s",
                       call_timeout_ms, err);
            return st->code;
        }
        if (used < sizeof all) {
            int n = snprintf(all + used, sizeof all - used, "%s%s", used ? "; " : "", err);
            used = n < 0 ? sizeof all : used + (size_t)n;
        }
    }
    status_set(st, GRPC_UNAVAILABLE, "%s", all);
    return st->code;
}

static int http_to_grpc(int http)
{
    switch (http) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

static int rst_to_grpc(uint32_t code)
{
    switch (code) {
    case NGHTTP2_REFUSED_STREAM:
        return GRPC_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return GRPC_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return GRPC_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return GRPC_PERMISSION_DENIED;
    default:
        return GRPC_INTERNAL;
    }
}

/* Outcome of a stream that closed normally or was reset. */
static void call_status(struct grpc_call *call, struct grpc_status *st)
{
    if (call->local_code) {
        status_set(st, call->local_code, "%s", call->local_msg);
    } else if (!call->have_headers && call->close_error) {
        status_set(st, rst_to_grpc(call->close_error), "stream reset by server: %s",
                   nghttp2_http2_strerror(call->close_error));
    } else if (!call->have_headers) {
        status_set(st, GRPC_INTERNAL, "stream closed without response headers");
    } else if (call->http_status != 200) {
        status_set(st, http_to_grpc(call->http_status), "HTTP status %d from server",
                   call->http_status);
    } else if (!grpc_content_type(call->content_type)) {
        status_set(st, GRPC_INTERNAL, "unexpected content-type \"%s\"", call->content_type);
    } else if (call->have_grpc_status) {
        grpc_status_from_trailers(st, call->grpc_status,
                                  call->have_grpc_message ? call->grpc_message : NULL);
        if (st->code == GRPC_OK && !grpc_framer_idle(&call->framer))
            status_set(st, GRPC_INTERNAL, "response ended inside a message");
        else if (st->code == GRPC_OK && call->unary && call->n_messages != 1)
            status_set(st, GRPC_INTERNAL, "unary response without a message");
    } else if (call->close_error) {
        status_set(st, rst_to_grpc(call->close_error), "stream reset by server: %s",
                   nghttp2_http2_strerror(call->close_error));
    } else {
        grpc_status_from_trailers(st, NULL, NULL);
    }
}

/* Drives the connection until the call's stream closes or a limit expires. */
static void call_run(struct grpc_channel *ch, struct grpc_call *call, long long deadline,
                     int timeout_ms, int idle_ms, struct grpc_status *st)
{
    struct grpc_conn *c = ch->conn;
    const struct grpc_endpoint *ep = &ch->eps[c->ep];
    struct pollfd p = {.fd = c->fd};
    long long now, wait, idle_deadline, idle_left;
    int rv;

    for (;;) {
        conn_send(c);
        if (call->closed || c->broken)
            break;
        if (!SSL_has_pending(c->ssl)) {
            now = clock_mono_ms();
            wait = -1;
            if (deadline) {
                if (now >= deadline) {
                    status_set(st, GRPC_DEADLINE_EXCEEDED, "deadline of %d ms exceeded (%s)",
                               timeout_ms, ep->authority);
                    goto expired;
                }
                wait = deadline - now;
            }
            if (idle_ms) {
                /* idle only if nothing arrives: data waiting after a slow callback is not */
                idle_deadline = c->last_rx_ms + idle_ms;
                idle_left = idle_deadline > now ? idle_deadline - now : 0;
                if (wait < 0 || idle_left < wait)
                    wait = idle_left;
            }
            p.events = POLLIN;
            /* a write that waits for the peer (TLS key update) must not spin on POLLOUT */
            if ((c->out_len > c->out_off && !c->write_wants_read) || c->read_wants_write)
                p.events |= POLLOUT;
            p.revents = 0;
            rv = poll(&p, 1, wait < 0 ? -1 : (int)wait);
            if (rv < 0 && errno != EINTR) {
                conn_break(c, "poll: %s", strerror(errno));
                break;
            }
            if (rv < 0)
                continue;
            if (rv == 0) {
                if (idle_ms && clock_mono_ms() >= c->last_rx_ms + idle_ms) {
                    status_set(st, GRPC_DEADLINE_EXCEEDED, "no data from %s for %d ms",
                               ep->authority, idle_ms);
                    goto expired;
                }
                continue;
            }
        }
        conn_recv(c);
    }
    if (call->closed) {
        call_status(call, st);
        return;
    }
    status_set(st, GRPC_UNAVAILABLE, "connection to %s lost: %s", ep->authority, c->why);
    return;
expired:
    /* Tell the server, then drop the connection: a server that misses a deadline may be
     * stopped or partitioned, and the next call should connect afresh (and fail over). */
    (void)nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
    conn_send(c);
    c->broken = true;
}

static int call_do(struct grpc_channel *ch, const char *path, const uint8_t *req, size_t req_len,
                   int timeout_ms, int idle_ms, bool unary, grpc_message_fn fn, void *arg,
                   uint8_t **resp, size_t *resp_len, struct grpc_status *st)
{
    long long deadline = timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0;
    char tmo[16];
    struct grpc_call call;
    int attempt;

    status_init(st);
    if (resp)
        *resp = NULL;
    if (resp_len)
        *resp_len = 0;
    if (!path || path[0] != '/' || (req_len && !req) || (!unary && !fn)) {
        status_set(st, GRPC_INVALID_ARGUMENT, "bad call arguments");
        return st->code;
    }
    if (req_len > UINT32_MAX) {
        status_set(st, GRPC_RESOURCE_EXHAUSTED, "request too large");
        return st->code;
    }
    for (attempt = 1;; attempt++) {
        const struct grpc_endpoint *ep;
        long long left = 0;
        int32_t sid;

        if (channel_connect(ch, deadline, timeout_ms, st) != GRPC_OK)
            return st->code;
        if (deadline && (left = deadline - clock_mono_ms()) <= 0) {
            status_set(st, GRPC_DEADLINE_EXCEEDED, "deadline of %d ms exceeded before sending",
                       timeout_ms);
            return st->code;
        }
        /* the server gets what is left of the deadline after connecting */
        grpc_timeout_header(tmo, (int)left);
        /* channel_connect returned GRPC_OK, so ch->conn is set (the analyzer does not follow
         * status_set setting a non-OK code on every path that leaves it NULL) */
        ep = &ch->eps[ch->conn->ep]; // NOLINT(clang-analyzer-core.NullDereference)
        status_endpoint(st, ep);
        memset(&call, 0, sizeof call);
        call.req = req;
        call.req_len = req_len;
        grpc_frame_header(call.prefix, req_len);
        grpc_framer_init(&call.framer, GRPC_MAX_MESSAGE);
        call.unary = unary;
        call.fn = fn;
        call.arg = arg;
        {
#define HDR(n, v)                                                                                  \
    {(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, strlen(v),               \
     NGHTTP2_NV_FLAG_NO_COPY_NAME}
            nghttp2_nv hdrs[] = {
                HDR(":method", "POST"),
                HDR(":scheme", "https"),
                HDR(":path", path),
                HDR(":authority", ep->authority),
                HDR("te", "trailers"),
                HDR("content-type", "application/grpc"),
                HDR("user-agent", GRPC_USER_AGENT),
                HDR("grpc-timeout", tmo),
            };
#undef HDR
            nghttp2_data_provider body = {.source.ptr = &call, .read_callback = on_read_body};
            size_t nh = ARRAY_SIZE(hdrs) - (timeout_ms > 0 ? 0 : 1);

            sid = nghttp2_submit_request(ch->conn->sess, NULL, hdrs, nh, &body, &call);
        }
        if (sid < 0) {
            /* nothing was sent (e.g. stream IDs exhausted): a new connection is safe */
            grpc_framer_free(&call.framer);
            grpc_channel_close(ch);
            if (attempt < GRPC_MAX_CALL_ATTEMPTS)
                continue;
            status_set(st, GRPC_UNAVAILABLE, "http2 request: %s", nghttp2_strerror(sid));
            return st->code;
        }
        call.stream_id = sid;
        ch->conn->call = &call;
        ch->conn->last_rx_ms = clock_mono_ms();
        call_run(ch, &call, deadline, timeout_ms, idle_ms, st);
        ch->conn->call = NULL;
        grpc_framer_free(&call.framer);
        if (ch->conn->broken) {
            grpc_channel_close(ch);
        }
        /* A stream the server refused (REFUSED_STREAM, or above a GOAWAY's last stream) was
         * never processed: retrying it elsewhere cannot apply it twice. */
        if (call.closed && !call.local_code && !call.have_headers &&
            call.close_error == NGHTTP2_REFUSED_STREAM && attempt < GRPC_MAX_CALL_ATTEMPTS) {
            free(call.resp);
            grpc_channel_close(ch);
            continue;
        }
        break;
    }
    if (st->code == GRPC_OK && unary) {
        *resp = call.resp;
        *resp_len = call.resp_len;
    } else {
        free(call.resp);
    }
    return st->code;
}

int grpc_call_unary(struct grpc_channel *ch, const char *path, const uint8_t *req, size_t req_len,
                    int timeout_ms, uint8_t **resp, size_t *resp_len, struct grpc_status *st)
{
    if (!resp || !resp_len) {
        status_init(st);
        status_set(st, GRPC_INVALID_ARGUMENT, "bad call arguments");
        return st->code;
    }
    return call_do(ch, path, req, req_len, timeout_ms, 0, true, NULL, NULL, resp, resp_len, st);
}

int grpc_call_stream(struct grpc_channel *ch, const char *path, const uint8_t *req, size_t req_len,
                     int timeout_ms, int idle_timeout_ms, grpc_message_fn on_message, void *arg,
                     struct grpc_status *st)
{
    return call_do(ch, path, req, req_len, timeout_ms, idle_timeout_ms > 0 ? idle_timeout_ms : 0,
                   false, on_message, arg, NULL, NULL, st);
}

/* ---- channel -------------------------------------------------------------------------- */

struct grpc_channel *grpc_channel_new(const struct grpc_channel_config *cfg, char *err,
                                      size_t err_len)
{
    struct grpc_channel *ch = NULL;

    if (!cfg || !cfg->endpoints || cfg->n_endpoints == 0 || cfg->n_endpoints > GRPC_MAX_ENDPOINTS) {
        set_msg(err, err_len, "need 1 to %d endpoints", GRPC_MAX_ENDPOINTS);
        return NULL;
    }
    if (!cfg->tls) {
        set_msg(err, err_len, "a TLS context is required");
        return NULL;
    }
    if (cfg->window_size > (uint32_t)NGHTTP2_MAX_WINDOW_SIZE ||
        (cfg->window_size && cfg->window_size < NGHTTP2_INITIAL_WINDOW_SIZE)) {
        set_msg(err, err_len, "window size %u out of range", cfg->window_size);
        return NULL;
    }
    if (cfg->connect_timeout_ms < 0) {
        set_msg(err, err_len, "negative connect timeout");
        return NULL;
    }
    ch = calloc(1, sizeof *ch);
    if (!ch) {
        set_msg(err, err_len, "out of memory");
        return NULL;
    }
    ch->tls = cfg->tls;
    ch->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : GRPC_DEFAULT_CONNECT_TIMEOUT_MS;
    ch->window = cfg->window_size ? cfg->window_size : GRPC_STREAM_WINDOW;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        if (!cfg->endpoints[i] || parse_endpoint(cfg->endpoints[i], &ch->eps[i], err, err_len)) {
            if (!cfg->endpoints[i])
                set_msg(err, err_len, "endpoint %zu is NULL", i);
            grpc_channel_free(ch);
            return NULL;
        }
        ch->n_eps = i + 1;
    }
    return ch;
}

void grpc_channel_close(struct grpc_channel *ch)
{
    if (!ch || !ch->conn)
        return;
    conn_free(ch->conn, true);
    ch->conn = NULL;
}

void grpc_channel_free(struct grpc_channel *ch)
{
    if (!ch)
        return;
    grpc_channel_close(ch);
    for (size_t i = 0; i < ch->n_eps; i++)
        free(ch->eps[i].raw);
    free(ch);
}

const char *grpc_channel_endpoint(const struct grpc_channel *ch)
{
    return ch && ch->conn ? ch->eps[ch->conn->ep].raw : NULL;
}
