/* snapctx.c - the snapshot features' shared context: configuration, slots, counters, the
 * worker pool, the channel to the local member, access control and error replies (see
 * snapctx.h). No route, no file: what each feature does is its own file's. */
#include "snapctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bounds.h"
#include "grpc.h"
#include "log.h"
#include "uring.h"

static char *own(struct snapctx *ctx, const char *s, bool *oom)
{
    if (!s || !s[0])
        return NULL;
    char *c = strdup(s);
    if (!c) {
        *oom = true;
        return NULL;
    }
    ctx->owned[ctx->n_owned++] = c;
    return c;
}

/* What snapctx_new allocated, the pool aside (stopped or never started). */
static void destroy(struct snapctx *ctx)
{
    for (size_t i = 0; ctx->owned && i < ctx->n_owned; i++)
        free(ctx->owned[i]);
    free(ctx->owned);
    free(ctx->endpoints);
    free(ctx);
}

struct snapctx *snapctx_new(const struct snapshot_config *cfg, char *err, size_t err_len)
{
    struct snapctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        goto oom;
    ctx->cfg = *cfg;
    ctx->cfg.endpoints = NULL;
    if (ctx->cfg.concurrency == 0)
        ctx->cfg.concurrency = 1;
    if (ctx->cfg.concurrency > SNAPSHOT_MAX_CONCURRENCY)
        ctx->cfg.concurrency = SNAPSHOT_MAX_CONCURRENCY;
    ctx->idle_timeout_ms =
        cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : SNAPSHOT_IDLE_TIMEOUT_MS;
    ctx->owned = calloc(cfg->n_endpoints + 3, sizeof *ctx->owned);
    ctx->endpoints = calloc(cfg->n_endpoints ? cfg->n_endpoints : 1, sizeof *ctx->endpoints);
    if (!ctx->owned || !ctx->endpoints)
        goto oom;
    bool oom = false;
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        ctx->endpoints[i] = own(ctx, cfg->endpoints[i], &oom);
    ctx->cfg.endpoints = (const char *const *)ctx->endpoints;
    ctx->cfg.snapshot_dir = own(ctx, cfg->snapshot_dir, &oom);
    ctx->cfg.spool_dir = own(ctx, cfg->spool_dir, &oom);
    ctx->cfg.data_dir = own(ctx, cfg->data_dir, &oom);
    if (oom)
        goto oom;
    const char *sd = ctx->cfg.spool_dir      ? ctx->cfg.spool_dir
                     : ctx->cfg.snapshot_dir ? ctx->cfg.snapshot_dir
                                             : "/tmp";
    snprintf(ctx->spool_dir, sizeof ctx->spool_dir, "%s", sd);

    struct uring *u = uring_new(2, ctx->cfg.no_io_uring); /* no file: the backend only */
    if (!u)
        goto oom;
    snprintf(ctx->backend, sizeof ctx->backend, "%s", uring_backend_name(u));
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "io_backend", ctx->backend);
    if (!uring_is_io_uring(u))
        cJSON_AddStringToObject(f, "reason", uring_fallback_reason(u));
    cJSON_AddStringToObject(f, "spool_dir", ctx->spool_dir);
    cJSON_AddStringToObject(f, "snapshot_dir", ctx->cfg.snapshot_dir ? ctx->cfg.snapshot_dir : "");
    cJSON_AddNumberToObject(f, "concurrency", ctx->cfg.concurrency);
    log_event(LOG_INFO, "snapshots ready", f);
    uring_free(u);

    ctx->pool = snapjob_pool_new(SNAPSHOT_FS_WORKERS, SNAPSHOT_FS_QUEUE, SNAPSHOT_FS_TIMEOUT_MS);
    if (!ctx->pool) {
        snprintf(err, err_len, "cannot start the snapshot workers");
        destroy(ctx);
        return NULL;
    }
    return ctx;
oom:
    snprintf(err, err_len, "out of memory");
    if (ctx)
        destroy(ctx);
    return NULL;
}

bool snapctx_free(struct snapctx *ctx)
{
    if (!ctx)
        return true;
    if (ctx->pool && !snapjob_pool_free(ctx->pool))
        return false;
    destroy(ctx);
    return true;
}

bool snapctx_slot_try(struct snapctx *ctx)
{
    unsigned cur = atomic_load(&ctx->slots);
    while (cur < ctx->cfg.concurrency)
        if (atomic_compare_exchange_weak(&ctx->slots, &cur, cur + 1))
            return true;
    return false;
}

bool snapctx_slot_acquire(struct snapctx *ctx)
{
    if (snapctx_slot_try(ctx))
        return true;
    atomic_fetch_add(&ctx->m.rejected, 1);
    return false;
}

void snapctx_slot_release(struct snapctx *ctx)
{
    atomic_fetch_sub(&ctx->slots, 1);
}

struct grpc_channel *snapctx_channel_new(const struct snapctx *ctx, char *err, size_t err_len)
{
    struct grpc_channel_config gc = {
        .endpoints = ctx->cfg.endpoints,
        .n_endpoints = ctx->cfg.n_endpoints,
        .tls = ctx->cfg.tls,
        /* Large windows: etcd's send path is the floor of a snapshot's time (etcd-facts). */
        .window_size = GRPC_STREAM_WINDOW,
    };
    return grpc_channel_new(&gc, err, err_len);
}

int snapctx_grpc_http_status(int grpc_code)
{
    return grpc_code == GRPC_UNAVAILABLE || grpc_code == GRPC_DEADLINE_EXCEEDED ? 503 : 502;
}

bool snapctx_access_ok(const struct snapctx *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    if (req->tls && req->client_verified)
        return true;
    if (!req->tls && ctx->cfg.allow_insecure)
        return true;
    snapctx_reply_error(resp, 403,
                        req->tls ? "snapshot routes need a verified client certificate"
                                 : "snapshot routes are served only on the TLS listener with "
                                   "client certificates (or --allow-insecure-snapshot)");
    return false;
}

void snapctx_reply_error(struct http_response *resp, int status, const char *msg)
{
    http_response_error(resp, status, msg);
}

void snapctx_reply_busy(const struct snapctx *ctx, struct http_response *resp, const char *what)
{
    char msg[160], ra[16];
    snprintf(msg, sizeof msg, "%s: %u snapshot(s) already in flight, retry later", what,
             ctx->cfg.concurrency);
    snapctx_reply_error(resp, 429, msg);
    snprintf(ra, sizeof ra, "%d", SNAPSHOT_RETRY_AFTER_S);
    http_response_add_header(resp, "retry-after", ra);
}

void snapctx_job_busy(const struct snapctx *ctx, struct snapjob *job, const char *what)
{
    char msg[160], ra[16];
    snprintf(msg, sizeof msg, "%s: %u snapshot(s) already in flight, retry later", what,
             ctx->cfg.concurrency);
    snprintf(ra, sizeof ra, "%d", SNAPSHOT_RETRY_AFTER_S);
    snapjob_header(job, "retry-after", ra);
    snapjob_error(job, 429, msg);
}

void snapctx_reply_pool_full(struct http_response *resp)
{
    char ra[16];
    snapctx_reply_error(resp, 503,
                        "every snapshot file worker is busy (hung volume?); retry later");
    snprintf(ra, sizeof ra, "%d", SNAPSHOT_RETRY_AFTER_S);
    http_response_add_header(resp, "retry-after", ra);
}

void snapctx_count_saved(struct snapctx *ctx, bool ok, uint64_t bytes, uint64_t took_ms)
{
    atomic_fetch_add(ok ? &ctx->m.saved_ok : &ctx->m.saved_failed, 1);
    atomic_fetch_add(&ctx->m.saved_bytes, bytes);
    if (ok)
        atomic_store(&ctx->m.last_saved_ms, took_ms);
}

void snapctx_count_file(struct snapctx *ctx, bool ok, uint64_t bytes)
{
    atomic_fetch_add(ok ? &ctx->m.file_ok : &ctx->m.file_failed, 1);
    atomic_fetch_add(&ctx->m.file_bytes, bytes);
}
