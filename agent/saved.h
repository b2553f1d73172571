/* saved.h - snapshots kept on local disk (--snapshot-dir): POST /snapshots takes one,
 * GET /snapshots lists them, GET /snapshots/<name> serves one (single Range), a schedule takes
 * them every --snapshot-interval and keeps the newest --snapshot-keep.
 *
 * Files are <UTC yyyymmddThhmmssZ>-rev<revision>.db in etcdctl's format (db bytes + sha256),
 * written as <name>.part through common/uring, fsync'd, renamed, and the directory fsync'd.
 *
 * Depends on snapctx.h, snapjob.h, disksource.h (the streaming of a file to a client) and
 * common/etcd, grpc, uring. Used by snapshot.c, which registers the two routes. */
#ifndef ER_SAVED_H
#define ER_SAVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "disksource.h"
#include "http.h"
#include "snapctx.h"
#include "snapjob.h"

#define SAVED_NAME_MAX 64

struct saved;

/* With ctx's --snapshot-dir: checks it, removes stale .part files (start-up, before the server
 * listens) and starts the schedule (interval_ms 0: none). Without one the routes answer 404.
 * NULL with err filled. */
struct saved *saved_new(struct snapctx *ctx, struct disksource *disk, char *err, size_t err_len);
/* Stops the schedule (joins its thread: call before the pool is stopped). */
void saved_stop(struct saved *sv);
void saved_free(struct saved *sv);
/* Routes (http_handler_fn, arg = the struct saved): /snapshots (GET, HEAD, POST) and
 * /snapshots/<name> (GET, HEAD). */
void saved_route_list(void *arg, const struct http_request *req, struct http_response *resp);
void saved_route_file(void *arg, const struct http_request *req, struct http_response *resp);

/* ---- pieces exposed for the unit tests -------------------------------------------------- */

/* "20261123T223400Z-rev1234.db". 0 or -ENAMETOOLONG. */
int saved_name_format(char *out, size_t len, time_t t, int64_t revision);
/* True only for names saved_name_format makes: no '/', no "..", no .part. */
bool saved_name_valid(const char *name);

/* Parse a Range header against a file of `size` bytes: one "bytes=a-b", "bytes=a-" or
 * "bytes=-n" range. 0 with [*first, *last] (inclusive) to serve as 206; -ERANGE when it
 * cannot be satisfied (416); -EINVAL when the header is to be ignored (malformed, another
 * unit, several ranges: serve the whole file as 200). */
int saved_parse_range(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last);

/* Names of the saved snapshots in dir, sorted oldest first (the names sort by time).
 * *names is a malloc'd array of malloc'd strings; free with saved_names_free. At most
 * SNAPSHOT_MAX_LISTED. 0 or -errno. */
int saved_list(const char *dir, char ***names, size_t *n);
void saved_names_free(char **names, size_t n);
/* Delete the oldest snapshots beyond keep (0: keep all). Returns how many were removed or
 * -errno. */
int saved_retain(const char *dir, unsigned keep);
/* Delete *.part files left by a crash. Returns how many were removed or -errno. */
int saved_remove_parts(const char *dir);

struct saved_result {
    char name[SAVED_NAME_MAX];
    uint64_t size;    /* file size: db + 32 */
    char sha256[65];  /* etcd's digest of the db bytes = the file's last 32 bytes, hex */
    int64_t revision; /* from a Status call made just before: a lower bound */
    uint64_t took_ms;
    int http_status; /* on failure: 500, 502, 503, 507 */
};
/* Take one snapshot into dir (blocking; worker threads only). Its file calls run under job's
 * deadline (NULL: none); -ETIMEDOUT once the watchdog answered 503. 0, or -errno with err
 * filled and res->http_status set; no .part file is left behind either way. */
int saved_take(struct snapctx *ctx, struct snapjob *job, const char *dir, struct saved_result *res,
               char *err, size_t err_len);

/* Write all bytes produced by `more` into a new file at path with uring writes of
 * SNAPSHOT_SPOOL_BLOCK (queue depth SNAPSHOT_SPOOL_QD), then fsync. Exposed so the tests can
 * drive the writer without etcd. */
struct saved_writer;
struct saved_writer *saved_writer_open(const char *path, bool no_io_uring, int *err);
int saved_writer_put(struct saved_writer *w, const void *data, size_t len);
/* Flush, fsync and close; 0 or -errno. Frees w either way. On failure the file is removed. */
int saved_writer_close(struct saved_writer *w, bool keep);

#endif
