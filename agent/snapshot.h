/* snapshot.h - the agent's snapshot feature: GET/HEAD /snapshot (streamed from the local
 * member's Maintenance.Snapshot, or ?source=disk), and the saved snapshots under /snapshots
 * (saved.h).
 *
 * main.c calls snapshot_init(), snapshot_add_routes() (routes.c then dispatches the three
 * routes to snapshot_route(); metrics.c renders snapshot_metrics()) and snapshot_shutdown().
 * Everything that talks to
 * etcd or touches the disk runs on worker threads and hands bytes to the event loop through a
 * spool (spool.h) behind an http_body_source. The second half of this header is shared by
 * snapshot.c, saved.c and disksource.c only. */
#ifndef ER_SNAPSHOT_H
#define ER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "tls.h"

struct grpc_channel;

struct snapshot_config {
    const char *const *endpoints; /* the local member (the agent's --endpoints) */
    size_t n_endpoints;
    struct tls_ctx *tls;      /* client TLS for etcd; borrowed, outlives the module */
    const char *snapshot_dir; /* --snapshot-dir; NULL or "" disables /snapshots */
    const char *spool_dir;    /* --spool-dir; NULL/"" -> snapshot_dir, else /tmp */
    const char *data_dir;     /* --data-dir, for ?source=disk; NULL/"" disables it */
    unsigned concurrency;     /* --snapshot-concurrency; 0 -> 1 */
    bool allow_insecure;      /* --allow-insecure-snapshot: serve on the plain listener */
    bool no_io_uring;         /* --no-io-uring */
    uint64_t interval_ms;     /* --snapshot-interval; 0 = no schedule */
    unsigned keep;            /* --snapshot-keep; 0 = keep all */
    int idle_timeout_ms;      /* gap allowed between etcd frames; 0 -> default */
};

/* Copies cfg (strings included). Logs the I/O backend once, removes stale .part files in the
 * snapshot dir and starts the schedule. Returns 0 or -errno with err filled. */
int snapshot_init(const struct snapshot_config *cfg, char *err, size_t err_len);
/* Stops the schedule, cancels running snapshots and waits (bounded) for their threads. */
void snapshot_shutdown(void);

/* Handles /snapshot, /snapshots and /snapshots/<name> (any method: 405 with Allow when
 * wrong). Returns false, touching nothing, for any other path. Never blocks. */
bool snapshot_route(const struct http_request *req, struct http_response *resp);

/* Register /snapshot, /snapshots and /snapshots/ with routes.c (each calls snapshot_route)
 * and the snapshot metrics source. 0 or -ENOSPC/-EEXIST. */
struct routes;
int snapshot_add_routes(struct routes *r);
/* metrics_source_fn (metrics.h) for the snapshot families. */
struct metrics_writer;
void snapshot_metrics(void *arg, struct metrics_writer *w);

/* ---- shared by snapshot.c, saved.c, disksource.c ------------------------------------------ */

/* A response whose headers and body are produced by a worker thread. Reference counted: the
 * HTTP side holds one reference until the server calls close(), each worker one more. */
struct snapjob;
struct spool;

struct snapjob *snapjob_new(void);
void snapjob_hold(struct snapjob *j);
void snapjob_release(struct snapjob *j);
/* Serve the body from sp (the job frees it). Before the response is handed to the server. */
void snapjob_set_spool(struct snapjob *j, struct spool *sp);
/* The spool notify callback (arg = job): wakes the server if the response is still open. */
void snapjob_notify(void *job);
/* Deferred headers: add some, then snapjob_ready() publishes them and wakes the server. */
void snapjob_header(struct snapjob *j, const char *name, const char *value);
void snapjob_ready(struct snapjob *j, int status, const char *content_type, int64_t content_length);
/* Deferred whole JSON body (errors, POST results): copies json, publishes, wakes. */
void snapjob_json(struct snapjob *j, int status, const char *json);
/* HTTP/2 trailer x-etcd-snapshot-sha256 (set before the body's end). */
void snapjob_trailer(struct snapjob *j, const uint8_t digest[32]);
/* Called once from close() with whether the body was completely sent. */
void snapjob_on_close(struct snapjob *j, void (*fn)(void *arg, bool completed), void *arg);
/* True once the server closed the response (client gone or done). */
bool snapjob_closed(struct snapjob *j);
/* Hand the job to resp: source set; headers deferred if `defer`. */
void snapjob_attach(struct snapjob *j, struct http_response *resp, bool defer);

const struct snapshot_config *snapshot_cfg(void);
/* Where spill files go. */
const char *snapshot_spool_dir(void);
/* Upstream snapshot slots (--snapshot-concurrency). */
bool snapshot_slot_acquire(void);
void snapshot_slot_release(void);
/* Start a detached worker counted for snapshot_shutdown(); it must call snapshot_thread_done()
 * last. 0 or -errno. */
int snapshot_thread_start(void *(*fn)(void *), void *arg);
void snapshot_thread_done(void);
bool snapshot_stopping(void);
/* A fresh channel to the local member for one worker. NULL with err filled. */
struct grpc_channel *snapshot_channel_new(char *err, size_t err_len);

/* Immediate JSON responses: {"error": msg}. */
void snapshot_reply_error(struct http_response *resp, int status, const char *msg);
void snapshot_reply_busy(struct http_response *resp, const char *what);
/* 502 or 503 for a gRPC failure code (UNAVAILABLE/DEADLINE_EXCEEDED -> 503). */
int snapshot_grpc_http_status(int grpc_code);
/* JSON {"error": msg} rendered to a malloc'd string (NULL on allocation failure). */
char *snapshot_error_json(const char *msg);
void snapshot_hex(const uint8_t *in, size_t n, char *out); /* out: 2n+1 bytes */

/* metrics hooks */
enum snapshot_result { SNAPSHOT_OK, SNAPSHOT_FAILED, SNAPSHOT_ABORTED };
void snapshot_count_saved(bool ok, uint64_t bytes, uint64_t took_ms);
void snapshot_count_file(bool ok, uint64_t bytes);
void snapshot_count_spill(uint64_t bytes);

/* disksource.c: stream [offset, offset+len) of fd (taken over) to resp through a reader thread
 * (uring reads, bounded memory). With append_sha the sha256 of the bytes follows them; with
 * locked_dir the stream fails if a process locks that data dir's WAL meanwhile. Fills resp
 * (status, content type, length, source); headers via add before the call. 0 or -errno. */
int disksource_stream_fd(struct http_response *resp, int fd, uint64_t offset, uint64_t len,
                         bool append_sha, const char *locked_dir);
/* GET/HEAD /snapshot?source=disk. */
void disksource_handle(const struct http_request *req, struct http_response *resp);

#endif
