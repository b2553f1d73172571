/* grpc.h - a small gRPC client over HTTP/2 (nghttp2) and TLS (OpenSSL).
 *
 * A channel is one HTTP/2 connection to one endpoint of a list; it is made lazily, reused
 * across calls, and remade (trying the next endpoints in turn, each with a connect timeout)
 * when it breaks. Calls are blocking and one at a time per channel: a thread that needs
 * concurrency owns its own channel. Streaming responses are handed to a callback message by
 * message; nothing buffers a whole stream. Deadlines are sent as grpc-timeout and enforced
 * locally as well.
 *
 * The wire framing of gRPC messages (grpc_framer_*) and the mapping of grpc-status are
 * exposed for the unit tests and fuzzers. Message encoding is proto.c/etcd.c's. */
#ifndef ER_GRPC_H
#define ER_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "tls.h"

/* gRPC status codes (positive, as on the wire) */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* Outcome of a call. code is a grpc_code; failures that never reached a server answer are
 * mapped too: connect/TLS failure or connection lost -> GRPC_UNAVAILABLE, local deadline ->
 * GRPC_DEADLINE_EXCEEDED, malformed response -> GRPC_INTERNAL, callback abort -> GRPC_CANCELLED.
 * message is human-readable: the server's grpc-message (percent-decoded) or our reason,
 * e.g. "connect 127.0.0.1:2379: connection refused", "tls: certificate verify failed". */
struct grpc_status {
    int code;
    bool transport; /* true if the error is local/transport (no grpc-status was received) */
    char message[GRPC_MAX_STATUS_MESSAGE];
    char endpoint[128]; /* the endpoint that answered or failed last */
};

struct grpc_channel_config {
    const char *const *endpoints; /* "https://host:port" or "host:port" (TLS assumed) */
    size_t n_endpoints;           /* 1 .. GRPC_MAX_ENDPOINTS */
    struct tls_ctx *tls;          /* borrowed; must outlive the channel */
    int connect_timeout_ms;       /* per endpoint; 0 -> GRPC_DEFAULT_CONNECT_TIMEOUT_MS */
    uint32_t window_size;         /* stream+connection window, 65535 .. 2^31-1;
                                     0 -> GRPC_STREAM_WINDOW */
};

struct grpc_channel;

/* Copies the endpoint strings. Does not connect. NULL on bad config (err filled). */
struct grpc_channel *grpc_channel_new(const struct grpc_channel_config *cfg, char *err,
                                      size_t err_len);
void grpc_channel_free(struct grpc_channel *ch);
/* Drop the connection (next call reconnects). */
void grpc_channel_close(struct grpc_channel *ch);
/* Endpoint of the current connection, or NULL if none. */
const char *grpc_channel_endpoint(const struct grpc_channel *ch);

/* Unary call. path e.g. "/etcdserverpb.Cluster/MemberList"; req is the serialized request.
 * On GRPC_OK *resp is a malloc'd serialized response (caller frees; may be NULL with len 0).
 * A call that fails to connect tries the next endpoint; a call that was sent is never
 * retried here (it may have taken effect), except once when the server refused the stream
 * unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream ID). A local deadline also
 * drops the connection (the server may be stopped), so the next call reconnects.
 * Returns st->code. */
int grpc_call_unary(struct grpc_channel *ch, const char *path, const uint8_t *req, size_t req_len,
                    int timeout_ms, uint8_t **resp, size_t *resp_len, struct grpc_status *st);

/* Called once per complete response message; the buffer is valid only during the call.
 * Return 0 to continue, non-zero to cancel the stream (RST_STREAM CANCEL; the call then
 * returns GRPC_CANCELLED). */
typedef int (*grpc_message_fn)(void *arg, const uint8_t *msg, size_t len);

/* Server-streaming call: like grpc_call_unary but each response message goes to on_message.
 * timeout_ms bounds the whole call (0 = none); idle_timeout_ms bounds the gap between two
 * received frames (0 = none). Returns st->code. */
int grpc_call_stream(struct grpc_channel *ch, const char *path, const uint8_t *req, size_t req_len,
                     int timeout_ms, int idle_timeout_ms, grpc_message_fn on_message, void *arg,
                     struct grpc_status *st);

/* ---- exposed for tests and fuzzers ---------------------------------------------------- */

/* Reassembles length-prefixed gRPC messages from DATA payloads of any split. */
struct grpc_framer {
    uint8_t hdr[5];
    size_t hdr_have;
    uint8_t *buf; /* current message, grown up to max_message */
    size_t buf_cap, need, have;
    size_t max_message; /* 0 -> GRPC_MAX_MESSAGE */
    bool in_message;
};

void grpc_framer_init(struct grpc_framer *f, size_t max_message);
void grpc_framer_free(struct grpc_framer *f);
/* Feed bytes; calls on_message for each complete message. Returns 0, -EMSGSIZE for a message
 * over max_message, -EPROTO for a compressed-flag message (we never ask for compression),
 * -ECANCELED if on_message returned non-zero, -ENOMEM. After an error the framer is unusable. */
int grpc_framer_feed(struct grpc_framer *f, const uint8_t *data, size_t len,
                     grpc_message_fn on_message, void *arg);
/* True if no partial message is pending (a stream that ends otherwise is truncated). */
bool grpc_framer_idle(const struct grpc_framer *f);

/* Write the 5-byte prefix for a message of len bytes. */
void grpc_frame_header(uint8_t out[5], size_t len);

/* Fill st from trailer values (either may be NULL: missing grpc-status is GRPC_INTERNAL
 * "missing grpc-status"); grpc-message is percent-decoded. */
void grpc_status_from_trailers(struct grpc_status *st, const char *grpc_status,
                               const char *grpc_message);
/* "OK", "CANCELLED", ... "UNAUTHENTICATED", or "CODE_<n>". */
const char *grpc_code_name(int code);
/* Format "timeout_ms" as a grpc-timeout value ("250m", "30S"), at most 8 digits. */
void grpc_timeout_header(char out[16], int timeout_ms);
/* Percent-decode in place (grpc-message); invalid escapes are kept literally. */
void grpc_percent_decode(char *s);

#endif
