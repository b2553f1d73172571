/* server.c - the agent's HTTP server core: listeners, accept, one level-triggered epoll loop,
 * TLS on non-blocking sockets, per-connection output buffers, timers (two FIFO lists, since
 * each kind has one constant timeout), body-source wakeups through an eventfd, graceful stop.
 * The protocols are reached only through their struct conn_ops (server_internal.h; the list is
 * protocols.c's), so this file names none of them; handlers see agent/http.h only. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "clock.h"
#include "bounds.h"
#include "log.h"
#include "server_internal.h"

enum { EV_LISTENER = 1, EV_CONN = 2, EV_WAKE = 3 };

struct listener {
    int kind;
    int fd;
    bool tls;
    int port;
};

struct tlist {
    struct conn *head, *tail;
};

struct server {
    struct server_config cfg;
    int epfd;
    struct listener lis[2];
    size_t n_lis;
    struct {
        int kind;
        int fd;
    } wake;
    struct conn *conns;
    size_t n_conns;
    struct tlist timers[3]; /* indexed by enum conn_timer; [0] unused */
    struct conn *ready;
    struct conn *dead;
    pthread_mutex_t wlock;
    struct http_body_wakeup *whead, *wtail;
    int stop_req;        /* atomic */
    unsigned stop_grace; /* atomic */
    bool stopping;
    bool listeners_paused;
    int64_t stop_deadline;
    int64_t accept_resume;
    int64_t now;
    struct server_stats stats;          /* atomic per field */
    void *scache[SERVER_SCRATCH_CACHE]; /* idle scratch blocks of scache_size bytes */
    size_t n_scache, scache_size;
    uint8_t *bcache[SERVER_BUF_CACHE];
    size_t n_bcache;
    uint8_t rbuf[SERVER_READ_CHUNK];
};

/* ---- small accessors for http1.c / http2.c -------------------------------------------- */

const struct server_config *server_config(const struct server *srv)
{
    return &srv->cfg;
}

bool server_stopping(const struct server *srv)
{
    return srv->stopping;
}

void server_count(struct server *srv, size_t offset)
{
    __atomic_fetch_add((uint64_t *)((char *)&srv->stats + offset), 1, __ATOMIC_RELAXED);
}

void server_done(struct server *srv, const struct http_request *req, int status, bool completed)
{
    if (srv->cfg.on_done)
        srv->cfg.on_done(srv->cfg.done_arg, req, status, completed);
}

void *server_scratch_get(struct server *srv, size_t size)
{
    if (srv->n_scache > 0 && size == srv->scache_size)
        return srv->scache[--srv->n_scache];
    return malloc(size);
}

void server_scratch_put(struct server *srv, void *p, size_t size)
{
    if (!p)
        return;
    if (srv->n_scache == 0)
        srv->scache_size = size;
    if (srv->n_scache < SERVER_SCRATCH_CACHE && size == srv->scache_size)
        srv->scache[srv->n_scache++] = p;
    else
        free(p);
}

int server_conn_stash(struct conn *c, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *s = realloc(c->stash, c->stash_len + n);
    if (!s)
        return -ENOMEM;
    memcpy(s + c->stash_len, p, n);
    c->stash = s;
    c->stash_len += n;
    return 0;
}

void server_conn_unstash(struct conn *c, size_t consumed)
{
    if (consumed >= c->stash_len) {
        free(c->stash);
        c->stash = NULL;
        c->stash_len = 0;
        return;
    }
    memmove(c->stash, c->stash + consumed, c->stash_len - consumed);
    c->stash_len -= consumed;
}

void server_conn_kick(struct conn *c)
{
    if (c->on_ready || c->dead)
        return;
    c->on_ready = true;
    c->rnext = c->srv->ready;
    c->srv->ready = c;
}

/* ---- timers --------------------------------------------------------------------------- */

static void timer_unlink(struct conn *c)
{
    if (c->timer == CONN_TIMER_NONE)
        return;
    struct tlist *l = &c->srv->timers[c->timer];
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        l->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        l->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->timer = CONN_TIMER_NONE;
}

void server_conn_timer(struct conn *c, enum conn_timer t, bool restart)
{
    struct server *srv = c->srv;
    if (t == c->timer && (!restart || t == CONN_TIMER_NONE))
        return;
    int64_t deadline =
        srv->now + (t == CONN_TIMER_HEADER ? srv->cfg.header_timeout_ms : srv->cfg.idle_timeout_ms);
    if (t == c->timer && c->deadline_ms == deadline && !c->tnext)
        return; /* already last with the same deadline */
    timer_unlink(c);
    if (t == CONN_TIMER_NONE)
        return;
    struct tlist *l = &srv->timers[t];
    c->timer = t;
    c->deadline_ms = deadline;
    c->tprev = l->tail;
    c->tnext = NULL;
    if (l->tail)
        l->tail->tnext = c;
    else
        l->head = c;
    l->tail = c;
}

/* ---- wakeups -------------------------------------------------------------------------- */

void server_wakeup_init(struct http_body_wakeup *w, struct conn *c, int32_t stream_id)
{
    memset(w, 0, sizeof *w);
    w->c = c;
    w->stream_id = stream_id;
}

void server_wakeup_cancel(struct http_body_wakeup *w)
{
    if (!w->c)
        return;
    struct server *srv = w->c->srv;
    pthread_mutex_lock(&srv->wlock);
    if (w->queued) {
        if (w->prev)
            w->prev->next = w->next;
        else
            srv->whead = w->next;
        if (w->next)
            w->next->prev = w->prev;
        else
            srv->wtail = w->prev;
        w->queued = false;
        w->prev = w->next = NULL;
    }
    pthread_mutex_unlock(&srv->wlock);
}

void http_body_wakeup(struct http_body_wakeup *w)
{
    if (!w || !w->c)
        return;
    struct server *srv = w->c->srv;
    bool signal_loop = false;
    pthread_mutex_lock(&srv->wlock);
    if (!w->queued) {
        w->queued = true;
        w->next = NULL;
        w->prev = srv->wtail;
        if (srv->wtail)
            srv->wtail->next = w;
        else
            srv->whead = w;
        srv->wtail = w;
        signal_loop = w->prev == NULL;
    }
    pthread_mutex_unlock(&srv->wlock);
    if (signal_loop) {
        uint64_t one = 1;
        ssize_t r = write(srv->wake.fd, &one, sizeof one);
        (void)r; /* EAGAIN: the counter is already non-zero, the loop will wake */
    }
}

/* ---- connection I/O ------------------------------------------------------------------- */

static void conn_process(struct conn *c);
static void conn_buf_release(struct conn *c);

/* Output not yet on the socket: plaintext in c->out, plus TLS records in the coalescing
 * buffer. */
static size_t conn_pending(const struct conn *c)
{
    size_t n = http_buf_pending(&c->out);
    if (c->tls_wbuf)
        n += (size_t)BIO_wpending(c->tls_wbuf);
    return n;
}

static void conn_update_events(struct conn *c, uint32_t hs_want)
{
    uint32_t want = 0;
    if (c->handshaking) {
        want = hs_want;
    } else {
        if ((!c->rd_blocked && !c->peer_eof && !c->close_after_flush) || c->ssl_write_wants_read)
            want |= EPOLLIN;
        if ((conn_pending(c) > 0 && !c->ssl_write_wants_read) || c->ssl_read_wants_write)
            want |= EPOLLOUT;
    }
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = want;
}

static void conn_tls_close_notify(struct conn *c);

void server_conn_close(struct conn *c)
{
    struct server *srv = c->srv;
    if (c->dead)
        return;
    c->dead = true;
    if (c->proto)
        c->proto->free(c);
    timer_unlink(c);
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        if (!c->handshaking && !c->lingering) {
            SSL_set_quiet_shutdown(c->ssl, 0);
            conn_tls_close_notify(c); /* never wait for the peer's */
        }
        SSL_free(c->ssl); /* frees the coalescing buffer with the write chain */
        c->ssl = NULL;
        c->tls_wbuf = NULL;
        ERR_clear_error();
    }
    close(c->fd);
    c->fd = -1;
    c->out.off = c->out.len = 0;
    conn_buf_release(c);
    free(c->stash);
    c->stash = NULL;
    c->stash_len = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->n_conns--;
    __atomic_fetch_sub(&srv->stats.connections_open, 1, __ATOMIC_RELAXED);
    c->dnext = srv->dead; /* freed at the end of the loop iteration (events may still name it) */
    srv->dead = c;
}

/* >0 bytes, 0 EOF, -EAGAIN, other negative: error. */
static ssize_t conn_recv(struct conn *c, uint8_t *buf, size_t len)
{
    if (!c->ssl) {
        for (;;) {
            ssize_t n = read(c->fd, buf, len);
            if (n >= 0)
                return n;
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, (int)len);
    if (n > 0) {
        c->ssl_read_wants_write = false;
        return n;
    }
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        c->ssl_read_wants_write = false;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->ssl_read_wants_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return errno == 0 ? 0 : -EIO; /* EOF without close_notify: treat as EOF */
    default:
        ERR_clear_error();
        return -EIO;
    }
}

/* Put a write buffer between TLS and the socket (on = true), or take it away once empty. The
 * buffer exists only while large bodies go out, so idle connections do not hold it. */
static void conn_tls_coalesce(struct conn *c, bool on)
{
    if (on) {
        BIO *sock = SSL_get_wbio(c->ssl), *buf = BIO_new(BIO_f_buffer());
        if (!buf || !sock || BIO_set_write_buffer_size(buf, SERVER_TLS_COALESCE) != 1 ||
            BIO_up_ref(sock) != 1) {
            BIO_free(buf);
            ERR_clear_error();
            return; /* not needed for correctness: write record by record */
        }
        BIO_push(buf, sock);        /* the chain owns the reference taken above */
        SSL_set0_wbio(c->ssl, buf); /* drops the wbio's own reference to sock */
        c->tls_wbuf = buf;
        return;
    }
    if (BIO_wpending(c->tls_wbuf) > 0)
        return;
    BIO *sock = BIO_pop(c->tls_wbuf); /* keeps the chain's reference */
    SSL_set0_wbio(c->ssl, sock);      /* frees the buffer */
    c->tls_wbuf = NULL;
}

/* Best-effort close_notify. OpenSSL flushes its write BIO after sending an alert, so the alert
 * also leaves through the coalescing buffer (test_server: test_tls_close_notify). */
static void conn_tls_close_notify(struct conn *c)
{
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
}

/* Push coalesced TLS records to the socket. Returns 0 (done or would block) or -EIO. */
static int conn_tls_drain(struct conn *c)
{
    if (!c->tls_wbuf || BIO_wpending(c->tls_wbuf) == 0)
        return 0;
    if (BIO_flush(c->tls_wbuf) <= 0 && !BIO_should_retry(c->tls_wbuf)) {
        ERR_clear_error();
        return -EIO;
    }
    if (BIO_wpending(c->tls_wbuf) == 0)
        c->progressed = true;
    return 0;
}

/* Write what we can. Returns 0 or a negative errno (connection is broken). */
static int conn_flush(struct conn *c)
{
    struct http_buf *b = &c->out;
    if (c->ssl && !c->tls_wbuf && http_buf_pending(b) >= SERVER_LOW_WATER)
        conn_tls_coalesce(c, true);
    while (http_buf_pending(b) > 0) {
        size_t n = http_buf_pending(b);
        if (!c->ssl) {
            ssize_t w = send(c->fd, b->data + b->off, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                return -errno;
            }
            b->off += (size_t)w;
        } else {
            ERR_clear_error();
            int w = SSL_write(c->ssl, b->data + b->off, n > INT32_MAX ? INT32_MAX : (int)n);
            if (w <= 0) {
                int e = SSL_get_error(c->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE) {
                    c->ssl_write_wants_read = false;
                    break;
                }
                if (e == SSL_ERROR_WANT_READ) {
                    c->ssl_write_wants_read = true;
                    break;
                }
                ERR_clear_error();
                return -EIO;
            }
            c->ssl_write_wants_read = false;
            b->off += (size_t)w;
        }
        c->progressed = true;
    }
    if (conn_tls_drain(c) < 0)
        return -EIO;
    if (http_buf_pending(b) == 0) {
        b->off = b->len = 0;
        if (b->cap > SERVER_LOW_WATER) /* a big response is out: give its memory back */
            http_buf_free(b);
    }
    return 0;
}

/* Output buffers: taken from the cache when a connection has something to do, given back when
 * it goes idle, so that thousands of idle keep-alive connections hold no buffer and busy ones
 * do not malloc per request. */
static void conn_buf_take(struct conn *c)
{
    struct server *srv = c->srv;
    if (c->out.data || srv->n_bcache == 0)
        return;
    c->out.data = srv->bcache[--srv->n_bcache];
    c->out.cap = SERVER_BUF_SIZE;
    c->out.off = c->out.len = 0;
}

static void conn_buf_release(struct conn *c)
{
    struct server *srv = c->srv;
    struct http_buf *b = &c->out;
    if (!b->data || http_buf_pending(b) > 0)
        return;
    if (b->cap == SERVER_BUF_SIZE && srv->n_bcache < SERVER_BUF_CACHE) {
        srv->bcache[srv->n_bcache++] = b->data;
        memset(b, 0, sizeof *b);
    } else {
        http_buf_free(b);
    }
}

static bool conn_idle(const struct conn *c)
{
    return c->proto ? c->proto->idle(c) : c->stash_len == 0;
}

/* Hand c to a protocol (its state set up); 0 or negative. */
static int conn_adopt(struct conn *c, const struct conn_ops *ops)
{
    int rc = ops->init(c);
    if (rc == 0)
        c->proto = ops;
    return rc;
}

/* First bytes on the plain listener: the first protocol whose sniff() says yes takes the
 * connection (the list ends with a fallback that takes anything). */
static int conn_detect(struct conn *c, const uint8_t *data, size_t len)
{
    if (server_conn_stash(c, data, len))
        return -ENOMEM;
    const struct conn_ops *ops = NULL;
    for (size_t i = 0; i < server_n_protocols && !ops; i++) {
        enum conn_sniff s = server_protocols[i]->sniff(c->stash, c->stash_len);
        if (s == CONN_SNIFF_MORE)
            return 0; /* maybe this one; wait for more */
        if (s == CONN_SNIFF_YES)
            ops = server_protocols[i];
    }
    if (!ops)
        return -EPROTO;
    int rc = conn_adopt(c, ops);
    if (rc)
        return rc;
    uint8_t *buf = c->stash;
    size_t blen = c->stash_len;
    c->stash = NULL;
    c->stash_len = 0;
    rc = ops->on_data(c, buf, blen);
    free(buf);
    return rc;
}

static int conn_on_data(struct conn *c, const uint8_t *data, size_t len)
{
    return c->proto ? c->proto->on_data(c, data, len) : conn_detect(c, data, len);
}

static int conn_progress(struct conn *c)
{
    return c->proto ? c->proto->progress(c) : 0;
}

/* After a TLS handshake: the protocol negotiated by ALPN, else the fallback (the last). */
static const struct conn_ops *conn_alpn_protocol(const unsigned char *alpn, unsigned len)
{
    for (size_t i = 0; i < server_n_protocols; i++) {
        const char *id = server_protocols[i]->alpn;
        if (id && strlen(id) == len && memcmp(alpn, id, len) == 0)
            return server_protocols[i];
    }
    return server_protocols[server_n_protocols - 1];
}

/* 1 done, 0 in progress (*want set), -1 failed (connection closed). */
static int conn_handshake(struct conn *c, uint32_t *want)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshaking = false;
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        c->client_verified = tls_ctx_verifies_clients(c->srv->cfg.tls) &&
                             SSL_get0_peer_certificate(c->ssl) != NULL &&
                             SSL_get_verify_result(c->ssl) == X509_V_OK;
        if (conn_adopt(c, conn_alpn_protocol(alpn, alpn_len)) != 0) {
            server_conn_close(c);
            return -1;
        }
        server_conn_timer(c, CONN_TIMER_IDLE, true);
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        *want = EPOLLIN;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = EPOLLOUT;
        return 0;
    }
    SERVER_COUNT(c->srv, tls_handshake_errors);
    if (e == SSL_ERROR_SSL) {
        char why[256];
        log_msg(LOG_DEBUG, "server: TLS handshake from %s failed: %s", c->peer,
                tls_error_string(c->ssl, why, sizeof why));
    }
    ERR_clear_error();
    server_conn_close(c);
    return -1;
}

/* Closing with unread input makes the kernel send RST, which can destroy the response the
 * client has not read yet (a 400 after a large body, a response to a "Connection: close"
 * request followed by more). So: send FIN, then read and discard until the client closes
 * too, for at most the header timeout. */
static void conn_linger(struct conn *c)
{
    if (c->proto)
        c->proto->free(c);
    c->proto = NULL;
    if (c->ssl)
        conn_tls_close_notify(c); /* the rest of the input is not decrypted */
    if (shutdown(c->fd, SHUT_WR) != 0) {
        server_conn_close(c);
        return;
    }
    c->lingering = true;
    c->rd_blocked = false;
    free(c->stash);
    c->stash = NULL;
    c->stash_len = 0;
    server_conn_timer(c, CONN_TIMER_HEADER, true);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = EPOLLIN;
}

static void linger_drain(struct conn *c)
{
    for (int i = 0; i < SERVER_READ_BUDGET; i++) {
        ssize_t n = read(c->fd, c->srv->rbuf, sizeof c->srv->rbuf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            break; /* EOF or error: done */
    }
    server_conn_close(c);
}

/* Do everything a connection can do now: flush, let the protocol progress, read, flush,
 * close when finished, re-arm epoll. Idempotent; called on events, wakeups and kicks. */
static void conn_process(struct conn *c)
{
    struct server *srv = c->srv;
    if (c->dead)
        return;
    c->progressed = false;
    if (c->lingering) {
        linger_drain(c);
        return;
    }
    conn_buf_take(c);
    if (c->handshaking) {
        uint32_t want = 0;
        int r = conn_handshake(c, &want);
        if (r < 0)
            return;
        if (r == 0) {
            conn_update_events(c, want);
            return;
        }
    }
    if (conn_pending(c) > 0 && conn_flush(c) < 0)
        goto close;
    if (http_buf_pending(&c->out) < SERVER_LOW_WATER && conn_progress(c) < 0)
        goto close;
    for (int i = 0; i < SERVER_READ_BUDGET; i++) {
        if (c->rd_blocked || c->peer_eof || c->close_after_flush || c->dead)
            break;
        ssize_t n = conn_recv(c, srv->rbuf, sizeof srv->rbuf);
        if (n == -EAGAIN)
            break;
        if (n < 0)
            goto close;
        if (n == 0) {
            c->peer_eof = true;
            break;
        }
        c->progressed = true;
        if (conn_on_data(c, srv->rbuf, (size_t)n) < 0)
            goto close;
        if (c->dead)
            return;
        if (http_buf_pending(&c->out) >= SERVER_LOW_WATER && conn_flush(c) < 0)
            goto close;
        if (!c->ssl && (size_t)n < sizeof srv->rbuf)
            break; /* socket drained; level-triggered epoll reports more (saves a read) */
    }
    if (c->dead)
        return;
    /* flush; while the socket takes everything, let the protocol produce more (bounded) */
    for (int i = 0; i < SERVER_READ_BUDGET; i++) {
        if (conn_flush(c) < 0)
            goto close;
        if (conn_pending(c) > 0)
            break; /* EPOLLOUT will bring us back */
        if (conn_progress(c) < 0)
            goto close;
        if (c->dead)
            return;
        if (http_buf_pending(&c->out) == 0)
            break;
        if (i == SERVER_READ_BUDGET - 1)
            server_conn_kick(c);
    }
    if (c->ssl && !c->rd_blocked && !c->peer_eof && !c->close_after_flush &&
        SSL_pending(c->ssl) > 0)
        server_conn_kick(c); /* decrypted bytes epoll cannot see */
    if (conn_pending(c) == 0) {
        if (c->close_after_flush && !c->peer_eof && !srv->stopping) {
            conn_linger(c);
            return;
        }
        if (c->close_after_flush || (c->peer_eof && conn_idle(c)) ||
            (srv->stopping && conn_idle(c)) || (c->proto && c->proto->done(c)))
            goto close;
    }
    if (!c->proto && !c->peer_eof)
        server_conn_timer(c, c->stash_len ? CONN_TIMER_HEADER : CONN_TIMER_IDLE, false);
    if (conn_idle(c)) {
        conn_buf_release(c);
        if (c->tls_wbuf)
            conn_tls_coalesce(c, false); /* no-op until the buffer drained */
    }
    conn_update_events(c, 0);
    return;
close:
    server_conn_close(c);
}

static void set_peer(struct conn *c, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", host, port);
    } else {
        snprintf(c->peer, sizeof c->peer, "unknown");
    }
}

static void conn_new(struct server *srv, int fd, bool tls, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->kind = EV_CONN;
    c->fd = fd;
    c->srv = srv;
    c->tls = tls;
    c->proto = NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_peer(c, ss);
    if (tls) {
        SSL_CTX *ctx = tls_ctx_current(srv->cfg.tls);
        c->ssl = ctx ? SSL_new(ctx) : NULL;
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
            SSL_free(c->ssl);
            ERR_clear_error();
            close(fd);
            free(c);
            return;
        }
        SSL_set_accept_state(c->ssl);
        SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS); /* idle TLS connections stay small */
        c->handshaking = true;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        SSL_free(c->ssl);
        close(fd);
        free(c);
        return;
    }
    c->events = EPOLLIN;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    SERVER_COUNT(srv, connections_total);
    SERVER_COUNT(srv, connections_open);
    /* the TLS handshake counts as part of the request head: a silent client is slowloris */
    server_conn_timer(c, tls ? CONN_TIMER_HEADER : CONN_TIMER_IDLE, true);
}

static void listeners_enable(struct server *srv, bool on)
{
    for (size_t i = 0; i < srv->n_lis; i++) {
        if (srv->lis[i].fd < 0)
            continue;
        struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = &srv->lis[i]};
        epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lis[i].fd, &ev);
    }
    srv->listeners_paused = !on;
}

static void on_accept(struct server *srv, struct listener *l)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nServer: etcd-agent\r\n"
                               "Content-Type: application/json\r\nContent-Length: 32\r\n"
                               "Connection: close\r\n\r\n{\"error\":\"too many connections\"}";
    for (int i = 0; i < SERVER_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss = {0}; /* the peer is logged even if accept4 left it short */
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_msg(LOG_WARN, "server: accept: %s; pausing accepts", strerror(errno));
                srv->accept_resume = srv->now + SERVER_ACCEPT_PAUSE_MS;
                listeners_enable(srv, false);
            }
            return;
        }
        if (srv->n_conns >= srv->cfg.max_connections || srv->stopping) {
            SERVER_COUNT(srv, connections_rejected);
            if (!l->tls) {
                ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)w;
            }
            close(fd);
            continue;
        }
        conn_new(srv, fd, l->tls, &ss);
    }
}

static void on_wake(struct server *srv)
{
    uint64_t v;
    ssize_t r = read(srv->wake.fd, &v, sizeof v);
    (void)r;
    for (;;) {
        pthread_mutex_lock(&srv->wlock);
        struct http_body_wakeup *w = srv->whead;
        if (w) {
            srv->whead = w->next;
            if (srv->whead)
                srv->whead->prev = NULL;
            else
                srv->wtail = NULL;
            w->queued = false;
            w->prev = w->next = NULL;
        }
        pthread_mutex_unlock(&srv->wlock);
        if (!w)
            break;
        /* w stays valid while its stream exists; the stream and its connection only go away
         * on this thread, so c is alive here */
        struct conn *c = w->c;
        if (c->dead)
            continue;
        if (c->proto)
            c->proto->wakeup(c, w->stream_id);
        server_conn_kick(c);
    }
}

static void begin_stop(struct server *srv)
{
    srv->stopping = true;
    unsigned grace = __atomic_load_n(&srv->stop_grace, __ATOMIC_ACQUIRE);
    srv->stop_deadline = srv->now + grace;
    for (size_t i = 0; i < srv->n_lis; i++) {
        if (srv->lis[i].fd >= 0) {
            epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->lis[i].fd, NULL);
            close(srv->lis[i].fd);
            srv->lis[i].fd = -1;
        }
    }
    struct conn *next;
    for (struct conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->handshaking || c->lingering || !c->proto) {
            server_conn_close(c);
            continue;
        }
        c->proto->stop(c);
        server_conn_kick(c);
    }
}

static void expire_timers(struct server *srv)
{
    struct tlist *hl = &srv->timers[CONN_TIMER_HEADER];
    while (hl->head && hl->head->deadline_ms <= srv->now) {
        struct conn *c = hl->head;
        timer_unlink(c);
        if (c->lingering) {
            server_conn_close(c);
            continue;
        }
        SERVER_COUNT(srv, header_timeouts);
        if (c->proto && c->proto->header_timeout(c) == 0)
            conn_process(c); /* e.g. HTTP/1.1's 408 goes out, then the connection closes */
        else
            server_conn_close(c);
    }
    struct tlist *il = &srv->timers[CONN_TIMER_IDLE];
    while (il->head && il->head->deadline_ms <= srv->now) {
        struct conn *c = il->head;
        timer_unlink(c);
        SERVER_COUNT(srv, idle_timeouts);
        server_conn_close(c);
    }
}

static int next_timeout(struct server *srv)
{
    int64_t next = INT64_MAX;
    for (enum conn_timer t = CONN_TIMER_HEADER; t <= CONN_TIMER_IDLE; t++)
        if (srv->timers[t].head && srv->timers[t].head->deadline_ms < next)
            next = srv->timers[t].head->deadline_ms;
    if (srv->stopping && srv->stop_deadline < next)
        next = srv->stop_deadline;
    if (srv->listeners_paused && srv->accept_resume < next)
        next = srv->accept_resume;
    if (srv->ready)
        return 0;
    if (next == INT64_MAX)
        return -1;
    int64_t d = next - clock_mono_ms();
    return d <= 0 ? 0 : d > 60000 ? 60000 : (int)d;
}

static void free_dead(struct server *srv)
{
    struct conn **pp = &srv->dead;
    while (*pp) {
        struct conn *c = *pp;
        if (c->on_ready) { /* still linked on the ready list: next iteration */
            pp = &c->dnext;
            continue;
        }
        *pp = c->dnext;
        free(c);
    }
}

int server_run(struct server *srv)
{
    struct epoll_event evs[SERVER_MAX_EVENTS];
    int rc = 0;
    srv->now = clock_mono_ms();
    for (;;) {
        srv->now = clock_mono_ms();
        if (!srv->stopping && __atomic_load_n(&srv->stop_req, __ATOMIC_ACQUIRE))
            begin_stop(srv);
        if (srv->stopping && (srv->n_conns == 0 || srv->now >= srv->stop_deadline))
            break;
        int n = epoll_wait(srv->epfd, evs, SERVER_MAX_EVENTS, next_timeout(srv));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        srv->now = clock_mono_ms();
        for (int i = 0; i < n; i++) {
            int kind = *(int *)evs[i].data.ptr;
            if (kind == EV_LISTENER) {
                struct listener *l = evs[i].data.ptr;
                if (l->fd >= 0 && !srv->stopping)
                    on_accept(srv, l);
            } else if (kind == EV_WAKE) {
                on_wake(srv);
            } else {
                struct conn *c = evs[i].data.ptr;
                if (c->dead)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    /* the peer is gone both ways (RST or full close): nothing to deliver */
                    server_conn_close(c);
                    continue;
                }
                conn_process(c);
            }
        }
        /* kicked connections; ones kicked while processing wait for the next round */
        struct conn *r = srv->ready;
        srv->ready = NULL;
        while (r) {
            struct conn *c = r;
            r = c->rnext;
            c->on_ready = false;
            c->rnext = NULL;
            conn_process(c); /* no-op for closed ones; they are on the dead list */
        }
        expire_timers(srv);
        if (srv->listeners_paused && !srv->stopping && srv->now >= srv->accept_resume)
            listeners_enable(srv, true);
        free_dead(srv);
    }
    while (srv->conns)
        server_conn_close(srv->conns);
    for (struct conn *c = srv->ready; c; c = c->rnext)
        c->on_ready = false;
    srv->ready = NULL;
    free_dead(srv);
    return rc;
}

/* ---- setup ---------------------------------------------------------------------------- */

static int listen_on(struct server *srv, const char *addr, bool tls, char *err, size_t err_len)
{
    char host[SERVER_MAX_ADDR];
    const char *port;
    if (snprintf(host, sizeof host, "%s", addr) >= (int)sizeof host) {
        snprintf(err, err_len, "listen address too long: %s", addr);
        return -EINVAL;
    }
    char *colon = strrchr(host, ':');
    if (!colon || !colon[1]) {
        snprintf(err, err_len, "listen address %s: want host:port", addr);
        return -EINVAL;
    }
    *colon = '\0';
    port = colon + 1;
    char *h = host;
    if (h[0] == '[') {
        size_t hl = strlen(h);
        if (hl < 2 || h[hl - 1] != ']') {
            snprintf(err, err_len, "listen address %s: bad IPv6 literal", addr);
            return -EINVAL;
        }
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(h[0] ? h : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "listen address %s: %s", addr, gai_strerror(gai));
        return -EINVAL;
    }
    int fd = -1, rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SERVER_BACKLOG) == 0)
            break;
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_len, "listen on %s: %s", addr, strerror(-rc));
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss); /* port 0 if getsockname fails */
    (void)getsockname(fd, (struct sockaddr *)&ss, &sl);
    struct listener *l = &srv->lis[srv->n_lis];
    l->kind = EV_LISTENER;
    l->fd = fd;
    l->tls = tls;
    l->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        rc = -errno;
        snprintf(err, err_len, "epoll_ctl: %s", strerror(errno));
        close(fd);
        l->fd = -1;
        return rc;
    }
    srv->n_lis++;
    return 0;
}

struct server *server_new(const struct server_config *cfg, char *err, size_t err_len)
{
    struct server *srv = NULL;
    if (!cfg->handler || (!cfg->listen && !cfg->tls_listen) || (cfg->tls_listen && !cfg->tls)) {
        snprintf(err, err_len,
                 "server: need a handler, a listen address, and TLS config with "
                 "the TLS listener");
        return NULL;
    }
    /* writes to a closed peer must fail with EPIPE, not kill the process (OpenSSL writes
     * through write(2), where MSG_NOSIGNAL cannot be given) */
    signal(SIGPIPE, SIG_IGN);
    /* http-parser's own bound on a request head (line, headers, whitespace our callbacks do
     * not see), process-wide; our per-field caps in http1.c are tighter */
    http_parser_set_max_header_size(HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES + 1024);
    srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, err_len, "server: out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    if (!srv->cfg.max_connections)
        srv->cfg.max_connections = HTTP_MAX_CONNECTIONS;
    if (!srv->cfg.header_timeout_ms)
        srv->cfg.header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
    if (!srv->cfg.idle_timeout_ms)
        srv->cfg.idle_timeout_ms = HTTP_IDLE_TIMEOUT_MS;
    srv->lis[0].fd = srv->lis[1].fd = -1;
    srv->wake.kind = EV_WAKE;
    srv->wake.fd = -1;
    pthread_mutex_init(&srv->wlock, NULL);
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    srv->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->epfd < 0 || srv->wake.fd < 0) {
        snprintf(err, err_len, "server: epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->wake};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->wake.fd, &ev) != 0) {
        snprintf(err, err_len, "server: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    if (cfg->listen && listen_on(srv, cfg->listen, false, err, err_len) != 0)
        goto fail;
    if (cfg->tls_listen && listen_on(srv, cfg->tls_listen, true, err, err_len) != 0)
        goto fail;
    return srv;
fail:
    server_free(srv);
    return NULL;
}

int server_port(const struct server *srv, bool tls)
{
    for (size_t i = 0; i < srv->n_lis; i++)
        if (srv->lis[i].tls == tls)
            return srv->lis[i].port;
    return 0;
}

void server_stop_graceful(struct server *srv, unsigned grace_ms)
{
    int expected = 0;
    if (__atomic_load_n(&srv->stop_req, __ATOMIC_ACQUIRE) == 0) {
        __atomic_store_n(&srv->stop_grace, grace_ms, __ATOMIC_RELEASE);
        __atomic_compare_exchange_n(&srv->stop_req, &expected, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE);
    }
    uint64_t one = 1;
    ssize_t r = write(srv->wake.fd, &one, sizeof one);
    (void)r;
}

void server_stats(const struct server *srv, struct server_stats *out)
{
    const uint64_t *src = (const uint64_t *)&srv->stats;
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    while (srv->conns)
        server_conn_close(srv->conns);
    srv->ready = NULL;
    for (struct conn *c = srv->dead; c; c = c->dnext)
        c->on_ready = false;
    free_dead(srv);
    for (size_t i = 0; i < 2; i++)
        if (srv->lis[i].fd >= 0)
            close(srv->lis[i].fd);
    if (srv->wake.fd >= 0)
        close(srv->wake.fd);
    if (srv->epfd >= 0)
        close(srv->epfd);
    while (srv->n_scache)
        free(srv->scache[--srv->n_scache]);
    while (srv->n_bcache)
        free(srv->bcache[--srv->n_bcache]);
    pthread_mutex_destroy(&srv->wlock);
    free(srv);
}
