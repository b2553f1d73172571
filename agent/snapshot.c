/* snapshot.c - GET/HEAD /snapshot streamed from the local member, the deferred-response job
 * shared with saved.c and disksource.c, access control, slots and metrics.
 *
 * A request starts a worker thread with its own gRPC channel: Status (member ID, revision as a
 * lower bound: the snapshot's transaction starts after it), then Maintenance.Snapshot. Bytes go
 * into a spool that spills to disk when the client is slower than etcd, so etcd's read
 * transaction ends at etcd's speed. Headers wait for etcd's first message (the size); the
 * digest is sent only once etcd_snapshot verified it, else the response is aborted. Saved
 * snapshots are saved.c's; the disk source and file streaming are disksource.c's. */
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <zstd.h>

#include "etcd.h"
#include "grpc.h"
#include "bounds.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "saved.h"
#include "spool.h"
#include "uring.h"

#define SNAPJOB_MAX_HEADERS 6
#define SNAPJOB_HEADER_VALUE 80
#define SNAPSHOT_ZSTD_LEVEL 1 /* CPU is the scarce resource on 2 cores; level 1 still ~3x */
#define SNAPSHOT_SHUTDOWN_WAIT_MS 5000

/* ---- module state -------------------------------------------------------------------------- */

static struct {
    struct snapshot_config cfg;
    char *strings[6]; /* owned copies behind cfg's strings */
    char **endpoints;
    char spool_dir[4096];
    char backend[16];
    atomic_uint slots;
    pthread_mutex_t mu;
    pthread_cond_t threads_cv;
    unsigned threads;
    atomic_bool stopping;
    bool inited;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .threads_cv = PTHREAD_COND_INITIALIZER};

static struct {
    atomic_uint_fast64_t stream[3]; /* enum snapshot_result */
    atomic_uint_fast64_t stream_bytes;
    atomic_uint_fast64_t saved_ok, saved_failed, saved_bytes;
    atomic_uint_fast64_t file_ok, file_failed, file_bytes;
    atomic_uint_fast64_t rejected;
    atomic_uint_fast64_t spill_bytes;
    atomic_uint_fast64_t last_upstream_ms, last_saved_ms;
    atomic_uint_fast64_t last_size;
} M;

const struct snapshot_config *snapshot_cfg(void)
{
    return &S.cfg;
}

const char *snapshot_spool_dir(void)
{
    return S.spool_dir;
}

bool snapshot_stopping(void)
{
    return atomic_load(&S.stopping);
}

bool snapshot_slot_acquire(void)
{
    unsigned cur = atomic_load(&S.slots);
    while (cur < S.cfg.concurrency)
        if (atomic_compare_exchange_weak(&S.slots, &cur, cur + 1))
            return true;
    atomic_fetch_add(&M.rejected, 1);
    return false;
}

void snapshot_slot_release(void)
{
    atomic_fetch_sub(&S.slots, 1);
}

int snapshot_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&S.mu);
    S.threads++;
    pthread_mutex_unlock(&S.mu);
    int r = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        snapshot_thread_done();
        return -r;
    }
    return 0;
}

void snapshot_thread_done(void)
{
    pthread_mutex_lock(&S.mu);
    S.threads--;
    pthread_cond_broadcast(&S.threads_cv);
    pthread_mutex_unlock(&S.mu);
}

struct grpc_channel *snapshot_channel_new(char *err, size_t err_len)
{
    struct grpc_channel_config gc = {
        .endpoints = S.cfg.endpoints,
        .n_endpoints = S.cfg.n_endpoints,
        .tls = S.cfg.tls,
        /* Large windows: etcd's send path is the floor of a snapshot's time (etcd-facts). */
        .window_size = GRPC_STREAM_WINDOW,
    };
    return grpc_channel_new(&gc, err, err_len);
}

void snapshot_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int snapshot_grpc_http_status(int grpc_code)
{
    return grpc_code == GRPC_UNAVAILABLE || grpc_code == GRPC_DEADLINE_EXCEEDED ? 503 : 502;
}

char *snapshot_error_json(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "error", msg))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void snapshot_reply_error(struct http_response *resp, int status, const char *msg)
{
    char *s = snapshot_error_json(msg);
    if (!s) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        http_response_set_body(resp, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    http_response_set_body(resp, status, "application/json", s, strlen(s));
    free(s);
}

void snapshot_reply_busy(struct http_response *resp, const char *what)
{
    char msg[160], ra[16];
    snprintf(msg, sizeof msg, "%s: %u snapshot(s) already in flight, retry later", what,
             S.cfg.concurrency);
    snapshot_reply_error(resp, 429, msg);
    snprintf(ra, sizeof ra, "%d", SNAPSHOT_RETRY_AFTER_S);
    http_response_add_header(resp, "retry-after", ra);
}

void snapshot_count_saved(bool ok, uint64_t bytes, uint64_t took_ms)
{
    atomic_fetch_add(ok ? &M.saved_ok : &M.saved_failed, 1);
    atomic_fetch_add(&M.saved_bytes, bytes);
    if (ok)
        atomic_store(&M.last_saved_ms, took_ms);
}

void snapshot_count_file(bool ok, uint64_t bytes)
{
    atomic_fetch_add(ok ? &M.file_ok : &M.file_failed, 1);
    atomic_fetch_add(&M.file_bytes, bytes);
}

void snapshot_count_spill(uint64_t bytes)
{
    atomic_fetch_add(&M.spill_bytes, bytes);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- snapjob: a response produced by a worker --------------------------------------------- */

struct snapjob {
    pthread_mutex_t mu;
    int refs;
    struct http_body_wakeup *wakeup;
    bool closed;
    struct spool *spool;
    bool ready;
    int status;
    const char *content_type;
    int64_t content_length;
    char hname[SNAPJOB_MAX_HEADERS][32];
    char hvalue[SNAPJOB_MAX_HEADERS][SNAPJOB_HEADER_VALUE];
    size_t n_headers;
    char *body; /* whole deferred body, or NULL */
    size_t body_len, body_off;
    bool have_trailer;
    char trailer[65];
    void (*on_close)(void *arg, bool completed);
    void *on_close_arg;
    struct http_body_source src;
};

struct snapjob *snapjob_new(void)
{
    struct snapjob *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->content_length = -1;
    return j;
}

void snapjob_hold(struct snapjob *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void snapjob_release(struct snapjob *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    spool_free(j->spool);
    free(j->body);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void snapjob_set_spool(struct snapjob *j, struct spool *sp)
{
    j->spool = sp;
}

/* Called with j->mu held. http_body_wakeup is thread-safe and valid until close(). */
static void wake_locked(struct snapjob *j)
{
    if (j->wakeup && !j->closed)
        http_body_wakeup(j->wakeup);
}

void snapjob_notify(void *job)
{
    struct snapjob *j = job;
    pthread_mutex_lock(&j->mu);
    wake_locked(j);
    pthread_mutex_unlock(&j->mu);
}

void snapjob_header(struct snapjob *j, const char *name, const char *value)
{
    pthread_mutex_lock(&j->mu);
    if (j->n_headers < SNAPJOB_MAX_HEADERS) {
        snprintf(j->hname[j->n_headers], sizeof j->hname[0], "%s", name);
        snprintf(j->hvalue[j->n_headers], sizeof j->hvalue[0], "%s", value);
        j->n_headers++;
    }
    pthread_mutex_unlock(&j->mu);
}

void snapjob_ready(struct snapjob *j, int status, const char *content_type, int64_t content_length)
{
    pthread_mutex_lock(&j->mu);
    j->status = status;
    j->content_type = content_type;
    j->content_length = content_length;
    j->ready = true;
    wake_locked(j);
    pthread_mutex_unlock(&j->mu);
}

void snapjob_json(struct snapjob *j, int status, const char *json)
{
    char *copy = strdup(json);
    pthread_mutex_lock(&j->mu);
    free(j->body);
    j->body = copy;
    j->body_len = copy ? strlen(copy) : 0;
    j->body_off = 0;
    j->status = copy ? status : 500;
    j->content_type = "application/json";
    j->content_length = (int64_t)j->body_len;
    j->ready = true;
    wake_locked(j);
    pthread_mutex_unlock(&j->mu);
}

void snapjob_trailer(struct snapjob *j, const uint8_t digest[32])
{
    pthread_mutex_lock(&j->mu);
    snapshot_hex(digest, 32, j->trailer);
    j->have_trailer = true;
    pthread_mutex_unlock(&j->mu);
}

void snapjob_on_close(struct snapjob *j, void (*fn)(void *arg, bool completed), void *arg)
{
    j->on_close = fn;
    j->on_close_arg = arg;
}

bool snapjob_closed(struct snapjob *j)
{
    pthread_mutex_lock(&j->mu);
    bool c = j->closed;
    pthread_mutex_unlock(&j->mu);
    return c;
}

static ssize_t job_read(void *ctx, uint8_t *buf, size_t len)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    if (j->body) {
        size_t n = j->body_len - j->body_off < len ? j->body_len - j->body_off : len;
        memcpy(buf, j->body + j->body_off, n);
        j->body_off += n;
        pthread_mutex_unlock(&j->mu);
        return (ssize_t)n;
    }
    struct spool *sp = j->spool;
    pthread_mutex_unlock(&j->mu);
    if (!sp)
        return 0; /* HEAD, or headers-only */
    ssize_t r = spool_read(sp, buf, len);
    if (r == -EAGAIN)
        return HTTP_BODY_AGAIN;
    if (r < 0)
        return HTTP_BODY_ABORT;
    return r;
}

static int job_headers(void *ctx, struct http_response *resp)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    if (!j->ready) {
        pthread_mutex_unlock(&j->mu);
        return HTTP_BODY_AGAIN;
    }
    resp->status = j->status;
    resp->content_type = j->content_type;
    resp->content_length = j->content_length;
    if (!j->body)
        for (size_t i = 0; i < j->n_headers; i++)
            http_response_add_header(resp, j->hname[i], j->hvalue[i]);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static size_t job_trailers(void *ctx, struct http_header *out, size_t max)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    size_t n = 0;
    if (j->have_trailer && !j->body && max > 0) {
        out[0].name = "x-etcd-snapshot-sha256";
        out[0].value = j->trailer; /* lives in the job, which outlives close() */
        n = 1;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

static void job_attach(void *ctx, struct http_body_wakeup *w)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    j->wakeup = w;
    pthread_mutex_unlock(&j->mu);
}

static void job_close(void *ctx, bool completed)
{
    struct snapjob *j = ctx;
    pthread_mutex_lock(&j->mu);
    j->closed = true;
    j->wakeup = NULL;
    struct spool *sp = j->spool;
    pthread_mutex_unlock(&j->mu);
    if (sp)
        spool_cancel(sp); /* a worker still producing stops at its next write */
    if (j->on_close)
        j->on_close(j->on_close_arg, completed);
    snapjob_release(j);
}

void snapjob_attach(struct snapjob *j, struct http_response *resp, bool defer)
{
    j->src = (struct http_body_source){
        .read = job_read,
        .trailers = job_trailers,
        .close = job_close,
        .attach = job_attach,
        .headers = job_headers,
        .ctx = j,
    };
    resp->source = &j->src;
    resp->defer_headers = defer;
    if (defer) {
        /* provisional: the headers() callback sets the real status and type */
        resp->status = 200;
        resp->content_type = "application/octet-stream";
    }
}

/* ---- GET /snapshot from etcd --------------------------------------------------------------- */

struct stream {
    struct snapjob *job;
    struct spool *spool;
    bool head, zstd, first, client_gone;
    uint64_t total, t0, t_first, t_upstream, t_close;
    uint64_t member_id;
    int64_t revision;
    ZSTD_CCtx *z;
    uint8_t *zout;
    size_t zout_cap;
    pthread_mutex_t mu; /* guards the close-side fields below */
    int refs;
    bool upstream_ok, completed, closed;
    char peer[64];
};

static void stream_unref(struct stream *s)
{
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left > 0)
        return;
    ZSTD_freeCCtx(s->z);
    free(s->zout);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Push bytes to the spool, compressed when asked; end=true finishes the zstd frame. */
static int stream_put(struct stream *s, const uint8_t *data, size_t len, bool end)
{
    if (!s->zstd)
        return len ? spool_write(s->spool, data, len) : 0;
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {s->zout, s->zout_cap, 0};
        size_t left = ZSTD_compressStream2(s->z, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return -EIO;
        if (out.pos > 0) {
            int r = spool_write(s->spool, s->zout, out.pos);
            if (r < 0)
                return r;
        }
        if (end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static void add_ids(struct stream *s)
{
    char v[32], hex[17];
    snapjob_header(s->job, "x-etcd-member-id", etcd_id_hex(s->member_id, hex));
    snprintf(v, sizeof v, "%" PRId64, s->revision);
    snapjob_header(s->job, "x-etcd-revision", v);
}

static int on_snapshot_data(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    struct stream *s = arg;
    if (!s->first) {
        s->first = true;
        s->total = total;
        s->t_first = now_ms();
        char v[32];
        add_ids(s);
        snprintf(v, sizeof v, "%" PRIu64, total);
        snapjob_header(s->job, "x-etcd-snapshot-size", v);
        if (s->zstd)
            snapjob_header(s->job, "content-encoding", "zstd");
        snapjob_header(s->job, "cache-control", "no-store");
        snapjob_ready(s->job, 200, "application/octet-stream",
                      s->zstd ? -1 : (int64_t)(total + 32));
    }
    if (snapshot_stopping())
        return 1;
    int r = stream_put(s, blob, len, false);
    if (r == -ECANCELED)
        s->client_gone = true;
    return r < 0 ? 1 : 0;
}

static void fail_early(struct stream *s, int status, const char *what, const char *why)
{
    char msg[GRPC_MAX_STATUS_MESSAGE + 64];
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    char *json = snapshot_error_json(msg);
    snapjob_json(s->job, status, json ? json : "{}");
    free(json);
}

static void log_stream(struct stream *s, const char *msg, enum log_level lvl, const char *err)
{
    struct spool_stats st = {0};
    if (s->spool)
        spool_get_stats(s->spool, &st);
    cJSON *f = cJSON_CreateObject();
    char hex[17];
    cJSON_AddStringToObject(f, "peer", s->peer);
    cJSON_AddStringToObject(f, "member_id", etcd_id_hex(s->member_id, hex));
    cJSON_AddNumberToObject(f, "revision", (double)s->revision);
    cJSON_AddNumberToObject(f, "db_size", (double)s->total);
    cJSON_AddBoolToObject(f, "zstd", s->zstd);
    cJSON_AddNumberToObject(f, "upstream_ms", (double)(s->t_upstream - s->t0));
    cJSON_AddNumberToObject(f, "sent_bytes", (double)st.read);
    cJSON_AddNumberToObject(f, "spilled_bytes", (double)st.spilled);
    cJSON_AddNumberToObject(f, "stalled_ms", (double)st.stall_ns / 1e6);
    cJSON_AddNumberToObject(f, "spill_peak_bytes", (double)st.spill_peak);
    if (st.backend && st.backend[0]) /* NULL without a spool (HEAD) */
        cJSON_AddStringToObject(f, "io_backend", st.backend);
    if (s->t_close)
        cJSON_AddNumberToObject(f, "took_ms", (double)(s->t_close - s->t0));
    if (err)
        cJSON_AddStringToObject(f, "error", err);
    log_event(lvl, msg, f);
}

/* The response is over (sent, aborted or the client left); the worker may still run. */
static void stream_on_close(void *arg, bool completed)
{
    struct stream *s = arg;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    s->completed = completed;
    s->t_close = now_ms();
    pthread_mutex_unlock(&s->mu);
    if (s->first && !s->head) {
        if (completed) {
            atomic_fetch_add(&M.stream[SNAPSHOT_OK], 1);
            log_stream(s, "snapshot sent", LOG_INFO, NULL);
        } else {
            atomic_fetch_add(&M.stream[SNAPSHOT_ABORTED], 1);
            log_stream(s, "snapshot response aborted", LOG_WARN,
                       s->client_gone ? "client went away" : "upstream failed");
        }
        if (s->spool) {
            struct spool_stats st;
            spool_get_stats(s->spool, &st);
            atomic_fetch_add(&M.stream_bytes, st.read);
        }
    }
    stream_unref(s);
}

static void *stream_worker(void *arg)
{
    struct stream *s = arg;
    char err[256];
    struct grpc_status gst = {0};
    struct etcd_status es = {0};
    uint8_t digest[32];
    bool slot = !s->head;

    struct grpc_channel *ch = snapshot_channel_new(err, sizeof err);
    if (!ch) {
        fail_early(s, 500, "grpc channel", err);
        goto out;
    }
    if (etcd_status(ch, SNAPSHOT_STATUS_TIMEOUT_MS, &es, &gst) != GRPC_OK) {
        fail_early(s, snapshot_grpc_http_status(gst.code), "status", gst.message);
        atomic_fetch_add(&M.stream[SNAPSHOT_FAILED], 1);
        goto out;
    }
    s->member_id = es.header.member_id;
    s->revision = es.header.revision;
    if (s->head) {
        /* HEAD: no snapshot. The db size is Status's, an estimate of what GET would send, so
         * it goes in x-etcd-snapshot-size and Content-Length is left out. */
        char v[32];
        add_ids(s);
        snprintf(v, sizeof v, "%" PRId64, es.db_size);
        snapjob_header(s->job, "x-etcd-snapshot-size", v);
        snapjob_ready(s->job, 200, "application/octet-stream", -1);
        goto out;
    }
    int rc = etcd_snapshot(
        ch, 0, S.cfg.idle_timeout_ms > 0 ? S.cfg.idle_timeout_ms : SNAPSHOT_IDLE_TIMEOUT_MS,
        on_snapshot_data, s, digest, &gst);
    s->t_upstream = now_ms();
    atomic_store(&M.last_upstream_ms, s->t_upstream - s->t0);
    if (rc == GRPC_OK) {
        int r = stream_put(s, digest, sizeof digest, false);
        if (r == 0)
            r = stream_put(s, NULL, 0, true);
        snapjob_trailer(s->job, digest);
        if (r == 0)
            r = spool_finish(s->spool);
        if (r < 0) {
            if (r == -ECANCELED)
                s->client_gone = true;
            else
                log_stream(s, "snapshot spool failed", LOG_ERROR, strerror(-r));
            spool_fail(s->spool, r);
        } else {
            atomic_store(&M.last_size, s->total);
            log_stream(s, "snapshot upstream done", LOG_INFO, NULL);
        }
    } else if (!s->first) {
        fail_early(s, snapshot_grpc_http_status(gst.code), "snapshot", gst.message);
        atomic_fetch_add(&M.stream[SNAPSHOT_FAILED], 1);
        log_stream(s, "snapshot failed before the first byte", LOG_WARN, gst.message);
    } else {
        /* Mid-stream: the client must not take what it has as complete. */
        spool_fail(s->spool, -EIO);
        if (!s->client_gone) {
            atomic_fetch_add(&M.stream[SNAPSHOT_FAILED], 1);
            log_stream(s, "snapshot upstream failed mid-stream", LOG_ERROR, gst.message);
        }
    }
    if (s->spool) {
        struct spool_stats st;
        spool_get_stats(s->spool, &st);
        snapshot_count_spill(st.spilled);
    }
out:
    etcd_status_free(&es);
    grpc_channel_free(ch);
    if (slot)
        snapshot_slot_release();
    snapjob_release(s->job);
    stream_unref(s);
    snapshot_thread_done();
    return NULL;
}

static bool accepts_zstd(const struct http_request *req)
{
    const char *ae = http_request_header(req, "accept-encoding");
    if (!ae)
        return false;
    /* token match: "zstd" as a list element, not refused with q=0 */
    for (const char *p = ae; (p = strstr(p, "zstd")) != NULL; p += 4) {
        bool start = p == ae || p[-1] == ',' || p[-1] == ' ';
        const char *e = p + 4;
        while (*e == ' ')
            e++;
        if (!start || (*e != '\0' && *e != ',' && *e != ';'))
            continue;
        if (*e == ';' && (strstr(e, "q=0,") == e + 1 || strcmp(e + 1, "q=0") == 0 ||
                          strncmp(e + 1, "q=0.0", 5) == 0))
            return false;
        return true;
    }
    return false;
}

static void stream_start(const struct http_request *req, struct http_response *resp, bool head)
{
    if (!head && !snapshot_slot_acquire()) {
        snapshot_reply_busy(resp, "snapshot");
        return;
    }
    struct snapjob *job = snapjob_new();
    struct stream *s = calloc(1, sizeof *s);
    if (!job || !s)
        goto oom;
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 2; /* worker + close hook */
    s->job = job;
    s->head = head;
    s->t0 = now_ms();
    snprintf(s->peer, sizeof s->peer, "%s", req->peer ? req->peer : "");
    if (!head) {
        s->zstd = accepts_zstd(req);
        if (s->zstd) {
            s->z = ZSTD_createCCtx();
            s->zout_cap = ZSTD_CStreamOutSize();
            s->zout = malloc(s->zout_cap);
            if (!s->z || !s->zout)
                goto oom;
            ZSTD_CCtx_setParameter(s->z, ZSTD_c_compressionLevel, SNAPSHOT_ZSTD_LEVEL);
            ZSTD_CCtx_setParameter(s->z, ZSTD_c_checksumFlag, 1);
        }
        struct spool_config sc = {
            .spill = true,
            .dir = snapshot_spool_dir(),
            .no_io_uring = S.cfg.no_io_uring,
            .stall_budget_ms = SNAPSHOT_SPOOL_STALL_MS,
            .notify = snapjob_notify,
            .notify_arg = job,
        };
        s->spool = spool_new(&sc);
        if (!s->spool)
            goto oom;
        snapjob_set_spool(job, s->spool);
    }
    snapjob_on_close(job, stream_on_close, s);
    snapjob_hold(job); /* the worker's */
    if (snapshot_thread_start(stream_worker, s) != 0) {
        snapjob_release(job);
        goto oom;
    }
    snapjob_attach(job, resp, true);
    return;
oom:
    if (s) {
        ZSTD_freeCCtx(s->z);
        free(s->zout);
        free(s);
    }
    if (job)
        /* the job starts with one reference and the failed-thread path above dropped only
         * the worker's: the analyzer does not follow the count and sees a double free */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        snapjob_release(job); /* frees the spool too */
    if (!head)
        snapshot_slot_release();
    snapshot_reply_error(resp, 500, "cannot start a snapshot: out of resources");
}

/* ---- routing and access -------------------------------------------------------------------- */

static bool access_ok(const struct http_request *req, struct http_response *resp)
{
    if (req->tls && req->client_verified)
        return true;
    if (!req->tls && S.cfg.allow_insecure)
        return true;
    snapshot_reply_error(resp, 403,
                         req->tls ? "snapshot routes need a verified client certificate"
                                  : "snapshot routes are served only on the TLS listener with "
                                    "client certificates (or --allow-insecure-snapshot)");
    return false;
}

static void method_not_allowed(struct http_response *resp, const char *allow)
{
    snapshot_reply_error(resp, 405, "method not allowed");
    http_response_add_header(resp, "allow", allow);
}

bool snapshot_route(const struct http_request *req, struct http_response *resp)
{
    const char *p = req->path;
    bool one = strcmp(p, "/snapshot") == 0;
    bool saved = strcmp(p, "/snapshots") == 0 || strncmp(p, "/snapshots/", 11) == 0;
    if (!one && !saved)
        return false;
    if (!access_ok(req, resp))
        return true;
    if (saved) {
        saved_handle(req, resp);
        return true;
    }
    bool head = strcmp(req->method, "HEAD") == 0;
    if (!head && strcmp(req->method, "GET") != 0) {
        method_not_allowed(resp, "GET, HEAD");
        return true;
    }
    char source[16] = "";
    if (http_query_param(req, "source", source, sizeof source) && strcmp(source, "etcd") != 0) {
        if (strcmp(source, "disk") == 0)
            disksource_handle(req, resp);
        else
            snapshot_reply_error(resp, 400, "source must be etcd or disk");
        return true;
    }
    stream_start(req, resp, head);
    return true;
}

/* ---- init, shutdown, metrics --------------------------------------------------------------- */

static const char *keep_str(int i, const char *s)
{
    free(S.strings[i]);
    S.strings[i] = s && s[0] ? strdup(s) : NULL;
    return S.strings[i];
}

int snapshot_init(const struct snapshot_config *cfg, char *err, size_t err_len)
{
    S.cfg = *cfg;
    if (S.cfg.concurrency == 0)
        S.cfg.concurrency = 1;
    if (S.cfg.concurrency > SNAPSHOT_MAX_CONCURRENCY)
        S.cfg.concurrency = SNAPSHOT_MAX_CONCURRENCY;
    S.cfg.snapshot_dir = keep_str(0, cfg->snapshot_dir);
    S.cfg.spool_dir = keep_str(1, cfg->spool_dir);
    S.cfg.data_dir = keep_str(2, cfg->data_dir);
    S.endpoints = calloc(cfg->n_endpoints ? cfg->n_endpoints : 1, sizeof *S.endpoints);
    if (!S.endpoints) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if (!(S.endpoints[i] = strdup(cfg->endpoints[i]))) {
            snprintf(err, err_len, "out of memory");
            return -ENOMEM;
        }
    S.cfg.endpoints = (const char *const *)S.endpoints;
    const char *sd = S.cfg.spool_dir      ? S.cfg.spool_dir
                     : S.cfg.snapshot_dir ? S.cfg.snapshot_dir
                                          : "/tmp";
    snprintf(S.spool_dir, sizeof S.spool_dir, "%s", sd);

    struct uring *u = uring_new(2, S.cfg.no_io_uring);
    if (!u) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    snprintf(S.backend, sizeof S.backend, "%s", uring_backend_name(u));
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "io_backend", S.backend);
    if (!uring_is_io_uring(u))
        cJSON_AddStringToObject(f, "reason", uring_fallback_reason(u));
    cJSON_AddStringToObject(f, "spool_dir", S.spool_dir);
    cJSON_AddStringToObject(f, "snapshot_dir", S.cfg.snapshot_dir ? S.cfg.snapshot_dir : "");
    cJSON_AddNumberToObject(f, "concurrency", S.cfg.concurrency);
    log_event(LOG_INFO, "snapshots ready", f);
    uring_free(u);
    S.inited = true;
    atomic_store(&S.stopping, false);
    if (S.cfg.snapshot_dir)
        return saved_init(err, err_len);
    return 0;
}

void snapshot_shutdown(void)
{
    if (!S.inited)
        return;
    atomic_store(&S.stopping, true);
    saved_shutdown();
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += SNAPSHOT_SHUTDOWN_WAIT_MS / 1000;
    pthread_mutex_lock(&S.mu);
    while (S.threads > 0)
        if (pthread_cond_timedwait(&S.threads_cv, &S.mu, &dl) == ETIMEDOUT)
            break;
    unsigned left = S.threads;
    pthread_mutex_unlock(&S.mu);
    if (left > 0) {
        log_msg(LOG_WARN, "snapshot shutdown: %u worker(s) still running", left);
        return; /* their state stays allocated: the process is exiting */
    }
    for (size_t i = 0; i < S.cfg.n_endpoints; i++)
        free(S.endpoints[i]);
    free(S.endpoints);
    S.endpoints = NULL;
    for (size_t i = 0; i < sizeof S.strings / sizeof S.strings[0]; i++) {
        free(S.strings[i]);
        S.strings[i] = NULL;
    }
    S.inited = false;
}

static void counter(struct metrics_writer *w, const char *name, const char *help, double v)
{
    metrics_family(w, name, "counter", help);
    metrics_sample(w, name, NULL, v);
}

static void gauge(struct metrics_writer *w, const char *name, const char *help, double v)
{
    metrics_family(w, name, "gauge", help);
    metrics_sample(w, name, NULL, v);
}

static void by_result(struct metrics_writer *w, const char *name, const char *help,
                      const char *const *results, const atomic_uint_fast64_t *const *v, size_t n)
{
    metrics_family(w, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        const char *labels[] = {"result", results[i], NULL};
        metrics_sample(w, name, labels, (double)atomic_load(v[i]));
    }
}

void snapshot_metrics(void *arg, struct metrics_writer *w)
{
    (void)arg;
    static const char *const stream_res[] = {"ok", "failed", "aborted"};
    const atomic_uint_fast64_t *const sv[] = {&M.stream[0], &M.stream[1], &M.stream[2]};
    by_result(w, "etcd_agent_snapshots_total", "Snapshots streamed by GET /snapshot, by outcome.",
              stream_res, sv, 3);
    counter(w, "etcd_agent_snapshot_sent_bytes_total", "Snapshot bytes sent to clients.",
            (double)atomic_load(&M.stream_bytes));
    static const char *const two[] = {"ok", "failed"};
    const atomic_uint_fast64_t *const saved[] = {&M.saved_ok, &M.saved_failed};
    by_result(w, "etcd_agent_snapshot_saved_total",
              "Snapshots saved to --snapshot-dir, by outcome.", two, saved, 2);
    counter(w, "etcd_agent_snapshot_saved_bytes_total", "Bytes written to saved snapshots.",
            (double)atomic_load(&M.saved_bytes));
    const atomic_uint_fast64_t *const files[] = {&M.file_ok, &M.file_failed};
    by_result(w, "etcd_agent_snapshot_file_downloads_total",
              "Saved-snapshot and disk-source downloads, by outcome.", two, files, 2);
    counter(w, "etcd_agent_snapshot_rejected_total",
            "Snapshot requests refused with 429 (concurrency limit).",
            (double)atomic_load(&M.rejected));
    counter(w, "etcd_agent_snapshot_spill_bytes_total",
            "Bytes spooled to disk because a client was slower than etcd.",
            (double)atomic_load(&M.spill_bytes));
    gauge(w, "etcd_agent_snapshot_last_upstream_seconds",
          "Duration of the last etcd snapshot stream (etcd's read transaction).",
          (double)atomic_load(&M.last_upstream_ms) / 1000.0);
    gauge(w, "etcd_agent_snapshot_last_saved_seconds", "Duration of the last saved snapshot.",
          (double)atomic_load(&M.last_saved_ms) / 1000.0);
    gauge(w, "etcd_agent_snapshot_last_size_bytes", "Database size of the last complete snapshot.",
          (double)atomic_load(&M.last_size));
    gauge(w, "etcd_agent_snapshot_in_flight", "Upstream snapshots running.",
          (double)atomic_load(&S.slots));
    const char *n = "etcd_agent_io_backend";
    metrics_family(w, n, "gauge", "File I/O backend in use (1 for the active one).");
    bool ur = strcmp(S.backend, "io_uring") == 0;
    const char *l1[] = {"backend", "io_uring", NULL}, *l2[] = {"backend", "syscalls", NULL};
    metrics_sample(w, n, l1, ur ? 1 : 0);
    metrics_sample(w, n, l2, ur ? 0 : 1);
}

static void route_fn(void *arg, const struct http_request *req, struct http_response *resp)
{
    (void)arg;
    if (!snapshot_route(req, resp))
        snapshot_reply_error(resp, 404, "not found");
}

int snapshot_add_routes(struct routes *r)
{
    static const struct route routes[] = {
        {.path = "/snapshot", .methods = "GET, HEAD", .fn = route_fn},
        {.path = "/snapshots", .methods = "GET, HEAD, POST", .fn = route_fn},
        {.path = "/snapshots/", .prefix = true, .methods = "GET, HEAD", .fn = route_fn},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = routes_add(r, &routes[i]);
        if (rc < 0)
            return rc;
    }
    static const struct metrics_source src = {.fn = snapshot_metrics};
    return routes_add_metrics(r, &src);
}
