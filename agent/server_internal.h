/* server_internal.h - what server.c (sockets, TLS, event loop, timers), http1.c and http2.c
 * share: the connection object, the protocol operations table (struct conn_ops), the output
 * buffer, body-source wakeups and the HTTP/1.1 request parser layer (tested and fuzzed on its
 * own). Not for handlers: they see agent/http.h only. */
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
struct conn_ops;
enum conn_timer { CONN_TIMER_NONE = 0, CONN_TIMER_HEADER = 1, CONN_TIMER_IDLE = 2 };

struct conn {
    int kind; /* epoll tag; first member */
    int fd;
    struct server *srv;
    SSL *ssl;
    BIO *tls_wbuf; /* while a large body goes out: TLS records coalesced before write() */
    const struct conn_ops *proto; /* the protocol spoken; NULL while not known yet */
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
    bool on_ready;         /* on the server's ready list */
    bool progressed;       /* bytes moved during this event (timer refresh) */
    uint32_t events;       /* registered with epoll */
    enum conn_timer timer; /* which timer list the connection is on */
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

/* ---- protocols (http1.c, http2.c, protocols.c) ---------------------------------------- */
/* One HTTP protocol on a connection, as a table of operations filled once by its module (the
 * model is Redis's ConnectionType). The server core calls only these: it never asks which
 * protocol a connection speaks. Each returns 0 or a negative errno where it returns int; a
 * negative return means "close the connection now". */
enum conn_sniff { CONN_SNIFF_NO, CONN_SNIFF_YES, CONN_SNIFF_MORE };
struct conn_ops {
    const char *name; /* for logs */
    const char *alpn; /* the TLS ALPN id that selects it (over TLS no sniffing is done) */
    /* Cleartext: do the connection's first bytes select this protocol? MORE: maybe, wait. */
    enum conn_sniff (*sniff)(const uint8_t *data, size_t len);
    int (*init)(struct conn *c);  /* sets c->proto_state; -ENOMEM */
    void (*free)(struct conn *c); /* aborts what is in flight; idempotent */
    /* Input from the peer; what the protocol cannot take now it stashes (server_conn_stash). */
    int (*on_data)(struct conn *c, const uint8_t *data, size_t len);
    /* Output drained, a wakeup or stashed input: make progress. */
    int (*progress)(struct conn *c);
    /* A body source of stream stream_id (0 on HTTP/1.1) has more for us. */
    void (*wakeup)(struct conn *c, int32_t stream_id);
    /* Graceful stop: finish what is in flight, accept nothing new (may close c). */
    void (*stop)(struct conn *c);
    /* The header timer fired: 0 keeps the connection (an answer such as 408 goes out first;
     * the protocol may also have closed it), negative closes it. */
    int (*header_timeout)(struct conn *c);
    bool (*idle)(const struct conn *c); /* nothing in flight, nothing queued */
    bool (*done)(const struct conn *c); /* the protocol ended the connection itself */
};
extern const struct conn_ops http1_conn_ops; /* http1.c */
extern const struct conn_ops http2_conn_ops; /* http2.c */
/* The protocols the server offers (protocols.c), in the order it asks them: the first whose
 * sniff() says yes (or whose alpn was negotiated) takes the connection; the last one is the
 * fallback and must accept anything. */
extern const struct conn_ops *const server_protocols[];
extern const size_t server_n_protocols;

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
/* Per-request scratch a protocol needs (an HTTP/1.1 parser with its capped store is ~12 KiB):
 * idle blocks of one size are kept by the server for reuse (malloc'd, or NULL; contents
 * undefined). put accepts NULL; a block of another size is freed. */
void *server_scratch_get(struct server *srv, size_t size);
void server_scratch_put(struct server *srv, void *p, size_t size);
void server_done(struct server *srv, const struct http_request *req, int status, bool completed);

/* ---- HTTP/1.1 request parser layer (http1.c) ----------------------------------------- */
enum http1_result { HTTP1_NEED_MORE = 0, HTTP1_REQUEST = 1, HTTP1_ERROR = 2 };

enum http1_last { HTTP1_LAST_NONE, HTTP1_LAST_FIELD, HTTP1_LAST_VALUE };

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
    enum http1_last last; /* what the previous header callback was */
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

#endif
