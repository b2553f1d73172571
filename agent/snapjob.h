/* snapjob.h - a response produced off the event loop: the deferred-response job (headers and
 * body handed over from a worker thread through an http_body_source), the bounded pool of
 * workers that makes every file-system call of a request, the watchdog that answers 503 for a
 * file call that has not returned in time, and the count of detached stream threads.
 *
 * Depends on http.h (the body-source contract) and spool.h (a job may serve its body from a
 * spool); nothing in the agent below the snapshot features. The features (stream.c, saved.c,
 * disksource.c) use it; it knows none of them. */
#ifndef ER_SNAPJOB_H
#define ER_SNAPJOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct spool;
struct snapjob;
struct snapjob_pool;

/* ---- the job ------------------------------------------------------------------------------- */

/* Reference counted: the HTTP side holds one reference until the server calls close(); each
 * worker holds one more (snapjob_hold). */
struct snapjob *snapjob_new(void);
void snapjob_hold(struct snapjob *j);
void snapjob_release(struct snapjob *j);
/* Serve the body from sp (the job frees it). Before the response is handed to the server. */
void snapjob_set_spool(struct snapjob *j, struct spool *sp);
/* The spool notify callback (arg = job): wakes the server if the response is still open. */
void snapjob_notify(void *job);
/* Deferred headers: add some, then snapjob_ready() publishes them and wakes the server. A job
 * is answered once: after the watchdog's 503 both return false and change nothing. */
void snapjob_header(struct snapjob *j, const char *name, const char *value);
bool snapjob_ready(struct snapjob *j, int status, const char *content_type, int64_t content_length);
/* Deferred whole JSON body (errors, POST results): copies json, publishes, wakes. */
bool snapjob_json(struct snapjob *j, int status, const char *json);
/* Deferred error: the agent's one error body (http_error_body). */
bool snapjob_error(struct snapjob *j, int status, const char *msg);
/* HTTP/2 trailer x-etcd-snapshot-sha256 (set before the body's end). */
void snapjob_trailer(struct snapjob *j, const uint8_t digest[32]);
/* Called once from close() with whether the body was completely sent. */
void snapjob_on_close(struct snapjob *j, void (*fn)(void *arg, bool completed), void *arg);
/* Hand the job to resp: source set, headers deferred until snapjob_ready/json. */
void snapjob_attach(struct snapjob *j, struct http_response *resp);

/* ---- file calls under a deadline ----------------------------------------------------------- */

/* Around every file-system call a worker makes for job j (NULL: no request, a no-op that
 * returns true): begin starts the clock, end stops it and returns false if the watchdog has
 * answered 503 meanwhile (the worker then undoes what it did and answers nothing). The job must
 * be watched (snapjob_watch, or a task of snapjob_run). */
void snapjob_fs_begin(struct snapjob *j);
bool snapjob_fs_end(struct snapjob *j);
/* Let the watchdog of pool p answer 503 for j while one of its file calls lasts longer than
 * the pool's timeout; unwatch before the job's last file call is done with. */
void snapjob_watch(struct snapjob_pool *p, struct snapjob *j);
void snapjob_unwatch(struct snapjob_pool *p, struct snapjob *j);

/* ---- the pool ------------------------------------------------------------------------------ */

/* Up to `workers` threads (started as tasks need them, with the watchdog), at most `queue_max`
 * tasks waiting, `timeout_ms` per file call (queued time counts). NULL on failure. */
struct snapjob_pool *snapjob_pool_new(unsigned workers, unsigned queue_max, unsigned timeout_ms);
/* Stops the pool: queued tasks are answered 503, idle workers and the watchdog exit, workers
 * stuck in a file call are abandoned (never joined), and so are the detached stream threads
 * still running after SNAPSHOT_SHUTDOWN_WAIT_MS. */
bool snapjob_pool_free(struct snapjob_pool *p); /* false: threads abandoned, p kept */

/* A task: runs on a pool worker with the job watched and the clock of a file call running
 * (fs_begin done); it answers the job (or not, once snapjob_fs_end said false) and frees arg. */
typedef void (*snapjob_task_fn)(struct snapjob *j, void *arg);
/* Defer resp to a new job and queue fn(job, arg); arg must be free()-able as a whole (a task
 * the watchdog drops before it ran is freed with free()). 0, or -EBUSY when the pool is full /
 * -ENOMEM, resp untouched and arg still the caller's. */
int snapjob_run(struct snapjob_pool *p, struct http_response *resp, snapjob_task_fn fn, void *arg);

/* Detached long-running threads (streams, POST /snapshots) counted so that shutdown can wait
 * for them, bounded. The thread calls snapjob_thread_done(p) last. 0 or -errno. */
int snapjob_thread_start(struct snapjob_pool *p, void *(*fn)(void *), void *arg);
void snapjob_thread_done(struct snapjob_pool *p);
/* True once snapjob_pool_free began: long workers stop at their next step. */
bool snapjob_stopping(const struct snapjob_pool *p);

#endif
