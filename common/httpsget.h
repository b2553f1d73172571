/* httpsget.h - one blocking HTTP/1.0 GET over TLS (or plain http://), bounded in size and time.
 *
 * For small pages of etcd's own HTTP side (its /metrics, for the backend quota); gRPC is
 * grpc.c's. HTTP/1.0 so the server closes the connection and never chunks: the body ends at
 * EOF. No redirects, no keep-alive, no proxy. */
#ifndef ER_HTTPSGET_H
#define ER_HTTPSGET_H

#include <stddef.h>

#include "tls.h"

/* GET base_url + path ("https://host:port" or "http://host:port"; tls is required for https).
 * On 200 returns 0 with *body malloc'd (NUL-terminated, *len bytes); otherwise a negative
 * errno (-EPROTO for a non-200 or malformed answer, -E2BIG above max_bytes, -ETIMEDOUT) with
 * err filled. */
int httpsget(struct tls_ctx *tls, const char *base_url, const char *path, size_t max_bytes,
             int timeout_ms, char **body, size_t *len, char *err, size_t err_len);

#endif
