/* server_internal.h - what server.c (sockets, TLS, event loop, timers), http1.c and http2.c
 * share: the connection object, the output buffer, body-source wakeups and the HTTP/1.1 request
 * parser layer (tested and fuzzed on its own). Not for handlers: they see agent/http.h only. */
#ifndef ER_SERVER_INTERNAL_H
#define ER_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <openssl/ssl.h>

#include "bounds.h"
#include "http.h"
#include "server.h"

/* Large bodies over TLS: records (16 KiB each) are gathered in a buffer and written with one
 * write() instead of one per record (syscalls are costly here). Its size: SERVER_MAX_OUTPUT of
 * plaintext plus the records' overhead (at most 29 bytes per 16 KiB record with AES-GCM), so
 * that one flush of the whole output is one write, not 256 KiB and then a few hundred bytes. */

/* ---- growable output buffer (http_util.c) ---------------------------------------------- */
struct http_buf {
    uint8_t *data;
    size_t off; /* first unsent byte */
    size_t len; /* end of data */
    size_t cap;
};
/* Make room for n more bytes at data+len. Returns 0 or -ENOMEM. */
int http_buf_reserve(struct http_buf *b, size_t n);
int http_buf_append(struct http_buf *b, const void *p, size_t n);
static inline size_t http_buf_pending(const struct http_buf *b)
{
    return b->len - b->off;
}
void http_buf_free(struct http_buf *b);

/* Split a request target into a decoded path and the raw query, in place: target is
 * modified (NUL at '?'/'#', path percent-decoded). Rejects invalid escapes, %00 and targets
 * that are neither origin-form ("/...") nor "*" nor absolute-form (path taken from it).
 * Returns 0 or -EINVAL. */
int http_split_target(char *target, const char **path, const char **query);
/* Status reason phrase ("OK", "Not Found", ...). */
const char *http_reason(int status);

/* ---- body-source wakeups (server.c) -------------------------------------------------- */
struct conn;
struct http_body_wakeup {
    struct conn *c;
    int32_t stream_id; /* HTTP/2 stream, 0 for HTTP/1.1 */
    bool queued;       /* on the server's wakeup list (under its lock) */
    struct http_body_wakeup *prev, *next;
};
void server_wakeup_init(struct http_body_wakeup *w, struct conn *c, int32_t stream_id);
/* Remove from the pending list; call before freeing w. */
void server_wakeup_cancel(struct http_body_wakeup *w);

/* ---- connections (server.c) ---------------------------------------------------------- */
enum conn_proto { CONN_DETECT, CONN_H1, CONN_H2 };

struct conn {
    int kind; /* epoll tag; first member */
    int fd;
    struct server *srv;
    SSL *ssl;
    BIO *tls_wbuf; /* while a large body goes out: TLS records coalesced before write() */
    enum conn_proto proto;
    bool tls;
    bool handshaking;
    bool client_verified;
    bool dead;       /* closed; freed at the end of the loop iteration */
    bool rd_blocked; /* protocol does not want input now (backpressure, streaming) */
    bool peer_eof;   /* read returned 0 */
    bool close_after_flush;
    bool lingering; /* FIN sent; discarding input until the peer closes */
    bool ssl_read_wants_write;
    bool ssl_write_wants_read;
    bool on_ready;   /* on the server's ready list */
    bool progressed; /* bytes moved during this event (timer refresh) */
    uint32_t events; /* registered with epoll */
    int timer;       /* which timer list: 0 none, 1 header, 2 idle */
    int64_t deadline_ms;
    struct conn *tprev, *tnext; /* timer list */
    struct conn *prev, *next;   /* all connections */
    struct conn *rnext;         /* ready list */
    struct conn *dnext;         /* closed, to be freed */
    struct http_buf out;
    uint8_t *stash; /* received bytes the protocol could not take yet */
    size_t stash_len;
    void *proto_state; /* struct http1_conn / struct http2_conn */
    char peer[SERVER_PEER_MAX];
};

enum conn_timer { CONN_TIMER_NONE = 0, CONN_TIMER_HEADER = 1, CONN_TIMER_IDLE = 2 };

const struct server_config *server_config(const struct server *srv);
bool server_stopping(const struct server *srv);
/* Counter bumps (atomic). */
void server_count(struct server *srv, size_t offset);
#define SERVER_COUNT(srv, field) server_count((srv), offsetof(struct server_stats, field))
/* Ask the loop to process c again this iteration (input stashed/buffered in TLS, output). */
void server_conn_kick(struct conn *c);
/* Close now: protocol state freed (sources closed with completed=false). */
void server_conn_close(struct conn *c);
/* Set the connection's timer kind; restart = restart the deadline even if already set. */
void server_conn_timer(struct conn *c, enum conn_timer t, bool restart);
/* Keep bytes the protocol could not consume (appended). Returns 0 or -ENOMEM. */
int server_conn_stash(struct conn *c, const uint8_t *p, size_t n);
void server_conn_unstash(struct conn *c, size_t consumed);
struct http1_parser;
/* HTTP/1 parsers are big (caps); idle ones are cached by the server. */
struct http1_parser *server_parser_get(struct server *srv);
void server_parser_put(struct server *srv, struct http1_parser *p);
void server_done(struct server *srv, const struct http_request *req, int status, bool completed);

/* ---- HTTP/1.1 request parser layer (http1.c) ----------------------------------------- */
enum http1_result { HTTP1_NEED_MORE = 0, HTTP1_REQUEST = 1, HTTP1_ERROR = 2 };

struct http1_parser {
    http_parser hp;
    struct http_request req; /* valid after HTTP1_REQUEST until the next parse */
    struct http_header headers[HTTP_MAX_HEADERS + 1];
    size_t n_headers;
    int error_status; /* with HTTP1_ERROR: 400, 413, 414, 431, 505 */
    const char *error_msg;
    bool started; /* a request's first byte was seen */
    bool head_done;
    bool complete;
    bool keep_alive; /* valid with HTTP1_REQUEST */
    bool expect_continue;
    int last; /* 0 none, 1 field, 2 value */
    size_t url_len;
    size_t header_bytes;
    size_t body_len;
    size_t store_len;
    char store[HTTP_REQUEST_STORE_MAX];
};
void http1_parser_init(struct http1_parser *p);
/* Feed bytes. Returns HTTP1_NEED_MORE (all consumed), HTTP1_REQUEST (one complete request;
 * *consumed tells how much of data belongs to it, the rest is for the next call after
 * http1_parser_next) or HTTP1_ERROR (error_status/error_msg set; the connection must close). */
enum http1_result http1_parse(struct http1_parser *p, const uint8_t *data, size_t len,
                              size_t *consumed);
/* Ready for the next request on the same connection. */
void http1_parser_next(struct http1_parser *p);

/* Response head for HTTP/1.1 into b. content_length < 0 -> chunked. */
int http1_format_head(struct http_buf *b, const struct http_response *resp, int64_t content_length,
                      bool keep_alive);

/* connection glue */
int http1_conn_init(struct conn *c);
void http1_conn_free(struct conn *c);
/* New input. Returns 0 or negative to close now. */
int http1_on_data(struct conn *c, const uint8_t *data, size_t len);
/* Output drained / wakeup / stash: make progress. Returns 0 or negative to close now. */
int http1_progress(struct conn *c);
void http1_wakeup(struct conn *c);
void http1_stop(struct conn *c); /* graceful stop */
void http1_header_timeout(struct conn *c);
bool http1_idle(const struct conn *c); /* nothing in flight */

/* ---- HTTP/2 (http2.c) ---------------------------------------------------------------- */
int http2_conn_init(struct conn *c);
void http2_conn_free(struct conn *c);
int http2_on_data(struct conn *c, const uint8_t *data, size_t len);
int http2_progress(struct conn *c);
void http2_wakeup(struct conn *c, int32_t stream_id);
void http2_stop(struct conn *c);
/* True when nghttp2 wants neither to read nor to write. */
bool http2_done(const struct conn *c);
bool http2_idle(const struct conn *c);

#endif
