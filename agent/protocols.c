/* protocols.c - the HTTP protocols the agent's server offers, in the order it asks them to
 * claim a connection: HTTP/2 (its preface, or ALPN "h2"), then HTTP/1.1, the fallback. The
 * server core (server.c) knows only this list and struct conn_ops; each protocol's module
 * (http2.c, http1.c) fills its own table. */
#include "server_internal.h"
#include "array.h"

const struct conn_ops *const server_protocols[] = {&http2_conn_ops, &http1_conn_ops};
const size_t server_n_protocols = ARRAY_SIZE(server_protocols);
