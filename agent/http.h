/* http.h - the contract between the agent's HTTP server (server.c, http1.c, http2.c) and its
 * request handlers (routes.c and friends).
 *
 * The server owns sockets, TLS, parsing, limits and timeouts; it turns each complete request
 * (HTTP/1.1 or HTTP/2) into a struct http_request and calls the one handler it was given.
 * The handler fills a struct http_response: either a whole body, or a body source that the
 * server pulls from as the client can take it (large or slow responses: snapshots). Handlers
 * run on the event-loop thread and must not block: anything that talks to etcd runs on other
 * threads (probe loop, snapshot worker) and hands results over through the body source. */
#ifndef ER_HTTP_H
#define ER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bounds.h"

struct http_header {
    const char *name; /* lowercase */
    const char *value;
};

struct http_request {
    const char *method; /* "GET", "HEAD", "POST", ... */
    const char *path;   /* decoded path without the query, e.g. "/readyz" */
    const char *query;  /* raw query after '?', "" if none */
    const struct http_header *headers;
    size_t n_headers;
    int version;          /* 11 for HTTP/1.1, 20 for HTTP/2 */
    bool tls;             /* arrived on the TLS listener */
    bool client_verified; /* TLS with a client certificate verified against the CA */
    const char *peer;     /* "ip:port" of the client */
};

/* Find a header (name lowercase) or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);
/* True if the query has `key` (as "key" or "key=..."); value copied into val if non-NULL. */
bool http_query_param(const struct http_request *req, const char *key, char *val, size_t val_len);

/* Return values of a body source's read(). */
#define HTTP_BODY_AGAIN (-1) /* nothing now; the source calls http_body_wakeup() when it has */
#define HTTP_BODY_ABORT                                                                            \
    (-2) /* fail the response: close (HTTP/1.1) / RST_STREAM (HTTP/2) so                           \
          * the client cannot take a partial body as complete */

struct http_response;
struct http_body_wakeup; /* opaque handle the server gives a source to wake it (thread-safe) */

struct http_body_source {
    /* Copy up to len bytes into buf. Returns >0 bytes, 0 at the end of the body,
     * HTTP_BODY_AGAIN or HTTP_BODY_ABORT. Called on the event-loop thread. */
    ssize_t (*read)(void *ctx, uint8_t *buf, size_t len);
    /* Optional: trailers to send after the body on HTTP/2 (e.g. x-etcd-snapshot-sha256);
     * called once after read() returned 0. Fill at most max headers; return how many. */
    size_t (*trailers)(void *ctx, struct http_header *out, size_t max);
    /* Called exactly once when the response is finished, aborted or the client went away. */
    void (*close)(void *ctx, bool completed);
    /* The server calls this right after taking the source, before the first read(). */
    void (*attach)(void *ctx, struct http_body_wakeup *wakeup);
    /* Optional, used only with http_response.defer_headers: fills resp->status,
     * content_type, content_length and extra headers once they are known (e.g. a snapshot's
     * length arrives with etcd's first message). Called on the event-loop thread after
     * attach() and again after each wakeup until it returns 0; returns HTTP_BODY_AGAIN while
     * not ready, HTTP_BODY_ABORT to drop the request without a response. */
    int (*headers)(void *ctx, struct http_response *resp);
    void *ctx;
};

/* Thread-safe: ask the server to call read() again soon. Valid until close() was called. */
void http_body_wakeup(struct http_body_wakeup *w);

struct http_response {
    int status;
    const char *content_type; /* required unless status 204/304 */
    char *body;               /* malloc'd, freed by the server; or NULL */
    size_t body_len;
    const char *body_ref; /* instead of body (when body is NULL): bytes the handler keeps, e.g.
                           * a cached rendering, body_len long. Never freed by the server, which
                           * copies them before it calls any handler again. */
    struct http_body_source *source; /* instead of body: streamed (copied by the server) */
    int64_t content_length;          /* with source: known length, or -1 (chunked on 1.1) */
    struct http_header extra[HTTP_MAX_EXTRA_HEADERS]; /* e.g. Allow, Retry-After; strings
                                                       * must be static or outlive the call */
    size_t n_extra;
    char extra_storage[HTTP_EXTRA_HEADER_STORAGE]; /* scratch for building extra header values */
    bool close;                                    /* close the connection after this response */
    bool defer_headers; /* with source: status line and headers are sent only
                         * once source->headers() returned 0 */
};

/* Handler: fills resp. Must not block. For HEAD, the server sends headers only. */
typedef void (*http_handler_fn)(void *arg, const struct http_request *req,
                                struct http_response *resp);

/* Helpers for handlers */
/* Set a whole body (copied). content_type e.g. "application/json". */
int http_response_set_body(struct http_response *resp, int status, const char *content_type,
                           const char *body, size_t len);
/* Add a header; value is copied into extra_storage. Returns 0 or -ENOSPC. */
int http_response_add_header(struct http_response *resp, const char *name, const char *value);

/* The one error body of the agent, for every route and for the server's own refusals:
 *     {"error":"<msg>","status":<status>}\n     (Content-Type: application/json)
 * msg is escaped for JSON (quote, backslash, control characters as \u00XX); a byte outside
 * ASCII becomes '?', so the body is valid JSON whatever msg holds; a message too long for
 * HTTP_ERROR_BODY_MAX is cut at a character, the object always closed. */
#define HTTP_ERROR_CONTENT_TYPE "application/json"
/* Render into buf (len >= HTTP_ERROR_BODY_MAX for a whole message): returns the body's length,
 * without the NUL it writes; 0 (empty string) when len cannot hold even an empty message. */
size_t http_error_body(char *buf, size_t len, int status, const char *msg);
/* Set resp to that body with that status. Returns 0; on -ENOMEM resp is still a complete
 * answer: status 500 with a static "out of memory" body. */
int http_response_error(struct http_response *resp, int status, const char *msg);

#endif
