/* snapctx.h - what the snapshot features share: their configuration, the upstream snapshot
 * slots (--snapshot-concurrency), the outcome counters, the worker pool (snapjob.h), a gRPC
 * channel to the local member, access control and the error replies.
 *
 * Depends on snapjob.h, http.h, common/grpc and common/tls. Used by stream.c, saved.c,
 * disksource.c and snapshot.c; it knows none of them. */
#ifndef ER_SNAPCTX_H
#define ER_SNAPCTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "snapjob.h"
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

enum snapshot_result { SNAPSHOT_OK, SNAPSHOT_FAILED, SNAPSHOT_ABORTED, SNAPSHOT_RESULTS };

struct snapshot_counters {
    atomic_uint_fast64_t stream[SNAPSHOT_RESULTS]; /* GET /snapshot outcomes */
    atomic_uint_fast64_t stream_bytes;
    atomic_uint_fast64_t saved_ok, saved_failed, saved_bytes;
    atomic_uint_fast64_t file_ok, file_failed, file_bytes;
    atomic_uint_fast64_t rejected; /* requests refused with 429 */
    atomic_uint_fast64_t spill_bytes;
    atomic_uint_fast64_t last_upstream_ms, last_saved_ms;
    atomic_uint_fast64_t last_size;
};

struct snapctx {
    struct snapshot_config cfg; /* strings owned (copied); empty strings made NULL */
    char spool_dir[4096];       /* where spill files go */
    char backend[16];           /* "io_uring" or "syscalls" */
    int idle_timeout_ms;        /* cfg's, defaulted */
    atomic_uint slots;          /* upstream snapshots running */
    struct snapjob_pool *pool;
    struct snapshot_counters m;
    char **owned;     /* copies behind cfg's strings */
    char **endpoints; /* cfg.endpoints */
    size_t n_owned;
};

/* Copies cfg and starts the worker pool. NULL with err filled. */
struct snapctx *snapctx_new(const struct snapshot_config *cfg, char *err, size_t err_len);
/* Stops the pool (bounded). False when threads stuck in file calls were abandoned: ctx then
 * stays allocated (the process is exiting), and so must what those threads use. */
bool snapctx_free(struct snapctx *ctx);

/* An upstream snapshot slot. For a request: a refusal counts in rejected_total. The schedule
 * uses snapctx_slot_try, which counts nothing. */
bool snapctx_slot_acquire(struct snapctx *ctx);
bool snapctx_slot_try(struct snapctx *ctx);
void snapctx_slot_release(struct snapctx *ctx);

/* A fresh channel to the local member for one worker. NULL with err filled. */
struct grpc_channel *snapctx_channel_new(const struct snapctx *ctx, char *err, size_t err_len);
/* 502 or 503 for a gRPC failure code (UNAVAILABLE/DEADLINE_EXCEEDED -> 503). */
int snapctx_grpc_http_status(int grpc_code);

/* Snapshot routes need TLS with a verified client certificate, or --allow-insecure-snapshot
 * on the plain listener. False with a 403 in resp. */
bool snapctx_access_ok(const struct snapctx *ctx, const struct http_request *req,
                       struct http_response *resp);
/* Immediate error replies: the agent's one error body (http_response_error). */
void snapctx_reply_error(struct http_response *resp, int status, const char *msg);
/* 429 with Retry-After. */
void snapctx_reply_busy(const struct snapctx *ctx, struct http_response *resp, const char *what);
/* The same 429 from a worker, for a deferred job. */
void snapctx_job_busy(const struct snapctx *ctx, struct snapjob *job, const char *what);
/* 503 for a full worker pool. */
void snapctx_reply_pool_full(struct http_response *resp);

void snapctx_count_saved(struct snapctx *ctx, bool ok, uint64_t bytes, uint64_t took_ms);
void snapctx_count_file(struct snapctx *ctx, bool ok, uint64_t bytes);

#endif
