/* server.h - the agent's HTTP server: one epoll event-loop thread serving HTTP/1.1 (keep-alive,
 * pipelining) and HTTP/2 (h2c with prior knowledge on the plain listener, h2 via ALPN on the
 * TLS listener), with hard limits, timeouts and graceful stop.
 *
 * Requests are handed to one http_handler_fn (agent/http.h); what a handler may do and how
 * streamed bodies are pulled is described there. Handlers and body-source callbacks run on the
 * thread that called server_run(). Everything else (routes, metrics, probe loop) is elsewhere.
 *
 * Protocol policy (HTTP/1.1): Host is not required; request line > HTTP_MAX_REQUEST_LINE -> 414,
 * header bytes/count over HTTP_MAX_HEADER_BYTES/HTTP_MAX_HEADERS -> 431, body over
 * SERVER_MAX_REQUEST_BODY -> 413 (bodies are counted, not given to handlers), versions other
 * than 1.0/1.1 -> 505, anything unparseable -> 400; each with {"error":"..."} and a close.
 * HTTP/1.0 always closes. Every response carries "Server: etcd-agent", the handler's
 * Content-Type, and Content-Length (Transfer-Encoding: chunked for sources of unknown length;
 * none for 1xx/204/304). Pipelined requests are answered in order; the next one is parsed only
 * when the previous response is queued and less than SERVER_MAX_OUTPUT is waiting. HTTP/2
 * applies the same header caps per stream (431/414 as a response on that stream). */
#ifndef ER_SERVER_H
#define ER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "bounds.h"
#include "tls.h"

struct server;

/* Called once per finished response (also for the server's own 400/408/413/431/503 answers,
 * where req may be NULL), on the loop thread, e.g. for request metrics. `status` is what was
 * sent; `completed` is false when the response was aborted or the client went away. */
typedef void (*server_done_fn)(void *arg, const struct http_request *req, int status,
                               bool completed);

struct server_config {
    /* "ip:port", "[v6]:port" or "host:port"; port 0 picks a free one (see server_port).
     * At least one of listen / tls_listen is required. */
    const char *listen;      /* plain: HTTP/1.1 and h2c (prior knowledge) */
    const char *tls_listen;  /* TLS: ALPN h2 -> HTTP/2, else HTTP/1.1 */
    struct tls_ctx *tls;     /* required with tls_listen (tls_server_new); borrowed, must
                              * outlive the server. tls_ctx_current() is taken for each new
                              * connection so rotated certificates apply to new clients. */
    http_handler_fn handler; /* required */
    void *handler_arg;
    server_done_fn on_done; /* optional */
    void *done_arg;
    /* 0 selects the default in brackets. */
    unsigned max_connections;   /* [HTTP_MAX_CONNECTIONS]; beyond it: accept + close */
    unsigned header_timeout_ms; /* [HTTP_HEADER_TIMEOUT_MS] from the first byte of a request
                                 * (or the TLS handshake's start) to its complete head */
    unsigned idle_timeout_ms;   /* [HTTP_IDLE_TIMEOUT_MS] keep-alive idle, and no write
                                 * progress while output is pending */
};

/* Counters, read with server_stats() from any thread. */
struct server_stats {
    uint64_t connections_open;
    uint64_t connections_total;    /* accepted */
    uint64_t connections_rejected; /* over max_connections */
    uint64_t requests_total;       /* handed to the handler (HTTP/1.1 and HTTP/2) */
    uint64_t requests_h2;          /* of which HTTP/2 */
    uint64_t protocol_errors;      /* 400/413/431 sent by the server, h2 protocol errors */
    uint64_t header_timeouts;      /* slowloris drops (and 408s) */
    uint64_t idle_timeouts;
    uint64_t tls_handshake_errors;
    uint64_t streams_aborted; /* body sources that ended with HTTP_BODY_ABORT or lost
                               * their client */
};

/* Binds and listens (SO_REUSEADDR, backlog 1024), sets up epoll. Does not start serving.
 * Sets SIGPIPE to SIG_IGN for the process (OpenSSL writes with write(2)). Returns NULL with
 * err filled (the address and the reason). */
struct server *server_new(const struct server_config *cfg, char *err, size_t err_len);

/* The bound port of the plain (tls=false) or TLS listener; 0 if that listener is not
 * configured. Useful with port 0 in tests. */
int server_port(const struct server *srv, bool tls);

/* Serves until server_stop_graceful() was called and every connection is closed (or the
 * grace period ended). Call from one thread only. Returns 0, or a negative errno if the event
 * loop itself failed. */
int server_run(struct server *srv);

/* Stop accepting, let in-flight responses finish within grace_ms, then close everything and
 * make server_run return. Async-signal-safe and thread-safe (writes an eventfd); repeated
 * calls are harmless (the first grace period counts). */
void server_stop_graceful(struct server *srv, unsigned grace_ms);

/* Snapshot of the counters. Thread-safe. */
void server_stats(const struct server *srv, struct server_stats *out);

/* Frees everything. Only after server_run returned (or if it never ran). */
void server_free(struct server *srv);

#endif
