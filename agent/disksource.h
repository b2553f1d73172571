/* disksource.h - streaming a file to a client from a reader thread (saved snapshots, and
 * GET/HEAD /snapshot?source=disk: member/snap/db of a stopped etcd followed by its sha256).
 *
 * Depends on snapctx.h, snapjob.h, spool.h and common/datadir, uring. Used by stream.c (the
 * /snapshot route hands ?source=disk here) and saved.c (file downloads). */
#ifndef ER_DISKSOURCE_H
#define ER_DISKSOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "snapctx.h"
#include "snapjob.h"

struct disksource;

struct disksource *disksource_new(struct snapctx *ctx);
void disksource_free(struct disksource *ds);

/* GET/HEAD /snapshot?source=disk (access checked by the caller). Never blocks: the WAL lock
 * check, the open and the bbolt meta reads run on a pool worker. */
void disksource_handle(struct disksource *ds, const struct http_request *req,
                       struct http_response *resp);

/* From a worker thread, for a job whose headers are still deferred: stream [offset,
 * offset+len) of fd (taken over, closed by the reader thread) through a reader thread (uring
 * reads, bounded memory) and publish `status` with the headers added before. With append_sha
 * the sha256 of the bytes follows them; with locked_dir the stream fails if a process locks
 * that data dir's WAL meanwhile. 0, -EBUSY (too many downloads: the caller answers 429) or
 * -errno; fd is closed either way. */
int disksource_stream_fd(struct disksource *ds, struct snapjob *job, int status, int fd,
                         uint64_t offset, uint64_t len, bool append_sha, const char *locked_dir);

#endif
