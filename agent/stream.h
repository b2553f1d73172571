/* stream.h - GET/HEAD /snapshot: a snapshot streamed from the local member's
 * Maintenance.Snapshot (zstd when asked), or with ?source=disk the stopped member's db
 * (disksource.h).
 *
 * Depends on snapctx.h, snapjob.h, spool.h, disksource.h and common/etcd, grpc. Used by
 * snapshot.c, which registers stream_route for /snapshot. */
#ifndef ER_STREAM_H
#define ER_STREAM_H

#include "disksource.h"
#include "http.h"
#include "snapctx.h"

struct stream_feature;

struct stream_feature *stream_new(struct snapctx *ctx, struct disksource *disk);
void stream_free(struct stream_feature *f);

/* The /snapshot route (http_handler_fn, arg = the stream_feature): GET or HEAD. */
void stream_route(void *arg, const struct http_request *req, struct http_response *resp);

#endif
