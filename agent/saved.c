/* saved.c - snapshots kept in --snapshot-dir: taking one to a .part file (uring writes,
 * fsync, rename, directory fsync), listing, serving with Range, the schedule and retention.
 * Every file call made for a request runs on a pool worker (snapjob.h) or on the POST's own
 * thread under the pool's deadline, never on the event loop.
 *
 * Access control, slots and counters are snapctx.c's; the reader thread that streams a file to
 * a client is disksource.c's. */
#include "saved.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bounds.h"
#include "clock.h"
#include "dirsync.h"
#include "etcd.h"
#include "grpc.h"
#include "hex.h"
#include "log.h"
#include "uring.h"

#define SAVED_PATH_MAX 4096

struct saved {
    struct snapctx *ctx;
    struct disksource *disk;
    const char *dir; /* ctx's --snapshot-dir */
    /* the schedule */
    pthread_t thread;
    bool running, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: a clock step does not shift the schedule */
};

/* ---- names --------------------------------------------------------------------------------- */

int saved_name_format(char *out, size_t len, time_t t, int64_t revision)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return -EINVAL;
    int n = snprintf(out, len, "%04d%02d%02dT%02d%02d%02dZ-rev%" PRId64 ".db", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, revision);
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool saved_name_valid(const char *name)
{
    /* yyyymmddThhmmssZ-rev<1..19 digits>.db */
    size_t len = strlen(name);
    if (len < 16 + 4 + 1 + 3 || len >= SAVED_NAME_MAX)
        return false;
    if (!digits(name, 8) || name[8] != 'T' || !digits(name + 9, 6) || name[15] != 'Z' ||
        strncmp(name + 16, "-rev", 4) != 0)
        return false;
    size_t nd = len - 20 - 3;
    if (nd < 1 || nd > 19 || !digits(name + 20, nd))
        return false;
    return strcmp(name + len - 3, ".db") == 0;
}

/* ---- Range --------------------------------------------------------------------------------- */

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19 || !digits(s, n))
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    *out = v;
    return 0;
}

int saved_parse_range(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!hdr || strncmp(hdr, "bytes=", 6) != 0)
        return -EINVAL;
    const char *spec = hdr + 6;
    while (*spec == ' ')
        spec++;
    size_t len = strlen(spec);
    while (len > 0 && spec[len - 1] == ' ')
        len--;
    if (memchr(spec, ',', len))
        return -EINVAL; /* several ranges: we serve the whole file instead */
    const char *dash = memchr(spec, '-', len);
    if (!dash)
        return -EINVAL;
    size_t a_len = (size_t)(dash - spec), b_len = len - a_len - 1;
    uint64_t a, b;
    if (a_len == 0) { /* suffix: the last b bytes */
        if (parse_u64(dash + 1, b_len, &b) < 0)
            return -EINVAL;
        if (b == 0 || size == 0)
            return -ERANGE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 0;
    }
    if (parse_u64(spec, a_len, &a) < 0)
        return -EINVAL;
    if (b_len == 0)
        b = UINT64_MAX;
    else if (parse_u64(dash + 1, b_len, &b) < 0)
        return -EINVAL;
    if (b < a)
        return -EINVAL; /* syntactically invalid: ignored per RFC 9110 */
    if (a >= size)
        return -ERANGE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 0;
}

/* ---- directory ----------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void saved_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int saved_list(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!saved_name_valid(e->d_name))
            continue;
        if (cnt == SNAPSHOT_MAX_LISTED)
            break;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[cnt] = strdup(e->d_name))) {
            rc = -ENOMEM;
            goto out;
        }
        cnt++;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_names);
out:
    closedir(d);
    if (rc < 0) {
        saved_names_free(v, cnt);
        return rc;
    }
    *names = v;
    *n = cnt;
    return 0;
}

int saved_retain(const char *dir, unsigned keep)
{
    if (keep == 0)
        return 0;
    char **names;
    size_t n;
    int rc = saved_list(dir, &names, &n);
    if (rc < 0)
        return rc;
    int removed = 0;
    for (size_t i = 0; i + keep < n; i++) {
        char path[SAVED_PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
            continue;
        if (unlink(path) == 0)
            removed++;
        else
            log_msg(LOG_WARN, "snapshot retention: unlink %s: %s", path, strerror(errno));
    }
    saved_names_free(names, n);
    return removed;
}

int saved_remove_parts(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".part") != 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* ---- writer: aligned blocks, several writes in flight -------------------------------------- */

struct saved_writer {
    int fd;
    char path[SAVED_PATH_MAX];
    struct uring *u;
    uint8_t *blk[SNAPSHOT_SPOOL_QD];
    bool busy[SNAPSHOT_SPOOL_QD];
    size_t fill; /* bytes in the current block */
    int cur;     /* current block */
    off_t off;   /* file offset of the current block */
    unsigned in_flight;
    int err;
};

struct saved_writer *saved_writer_open(const char *path, bool no_io_uring, int *err)
{
    struct saved_writer *w = calloc(1, sizeof *w);
    *err = -ENOMEM;
    if (!w)
        return NULL;
    w->fd = -1;
    snprintf(w->path, sizeof w->path, "%s", path);
    for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++) {
        void *p;
        if (posix_memalign(&p, 4096, SNAPSHOT_SPOOL_BLOCK) != 0)
            goto fail;
        w->blk[i] = p;
    }
    if (!(w->u = uring_new(SNAPSHOT_SPOOL_QD, no_io_uring)))
        goto fail;
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        *err = -errno;
        goto fail;
    }
    *err = 0;
    return w;
fail:
    for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++)
        free(w->blk[i]);
    if (w->u)
        uring_free(w->u);
    free(w);
    return NULL;
}

static void writer_done(void *arg, uint64_t user_data, ssize_t result)
{
    struct saved_writer *w = arg;
    w->busy[user_data] = false;
    w->in_flight--;
    if (result < 0 && w->err == 0)
        w->err = (int)result;
}

static int writer_submit(struct saved_writer *w)
{
    int r = uring_write_async(w->u, w->fd, w->blk[w->cur], w->fill, w->off, (uint64_t)w->cur);
    if (r < 0)
        return r;
    w->busy[w->cur] = true;
    w->in_flight++;
    w->off += (off_t)w->fill;
    w->fill = 0;
    /* next free block, waiting for a write if all are in flight */
    for (;;) {
        for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++)
            if (!w->busy[i]) {
                w->cur = i;
                return w->err;
            }
        r = uring_reap(w->u, 1, writer_done, w);
        if (r < 0)
            return r;
        if (w->err)
            return w->err;
    }
}

int saved_writer_put(struct saved_writer *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (w->err)
        return w->err;
    while (len > 0) {
        size_t n = SNAPSHOT_SPOOL_BLOCK - w->fill < len ? SNAPSHOT_SPOOL_BLOCK - w->fill : len;
        memcpy(w->blk[w->cur] + w->fill, p, n);
        w->fill += n;
        p += n;
        len -= n;
        if (w->fill == SNAPSHOT_SPOOL_BLOCK) {
            int r = writer_submit(w);
            if (r < 0)
                return w->err = r;
        }
    }
    return 0;
}

int saved_writer_close(struct saved_writer *w, bool keep)
{
    int rc = w->err;
    if (rc == 0 && keep && w->fill > 0)
        rc = writer_submit(w);
    while (w->in_flight > 0) {
        int r = uring_reap(w->u, w->in_flight, writer_done, w);
        if (r < 0 && rc == 0)
            rc = r;
        if (r < 0)
            break;
    }
    if (rc == 0)
        rc = w->err;
    if (rc == 0 && keep)
        rc = uring_fsync(w->u, w->fd);
    if (close(w->fd) != 0 && rc == 0 && keep)
        rc = -errno;
    if (rc != 0 || !keep)
        unlink(w->path);
    for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++)
        free(w->blk[i]);
    uring_free(w->u);
    free(w);
    return rc;
}

/* ---- taking a snapshot --------------------------------------------------------------------- */

struct take {
    struct saved_writer *w;
    struct snapctx *ctx;
    struct snapjob *job; /* NULL for the schedule */
    uint64_t total;
    bool timed_out;
};

static int on_take_data(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    struct take *t = arg;
    t->total = total;
    if (snapjob_stopping(t->ctx->pool))
        return 1;
    snapjob_fs_begin(t->job);
    int r = saved_writer_put(t->w, blob, len);
    if (!snapjob_fs_end(t->job)) {
        t->timed_out = true;
        return 1;
    }
    return r < 0 ? 1 : 0;
}

static int io_fail(struct saved_result *res, char *err, size_t err_len, const char *dir,
                   const char *what, int rc)
{
    res->http_status = rc == -ENOSPC || rc == -EDQUOT ? 507 : 500;
    snprintf(err, err_len, "%s in %s: %s; snapshot not saved, earlier snapshots untouched", what,
             dir, strerror(-rc));
    return rc;
}

int saved_take(struct snapctx *ctx, struct snapjob *job, const char *dir, struct saved_result *res,
               char *err, size_t err_len)
{
    memset(res, 0, sizeof *res);
    uint64_t t0 = (uint64_t)clock_mono_ms();
    struct grpc_status gst = {0};
    struct etcd_status es = {0};
    struct saved_writer *w = NULL;
    char part[SAVED_PATH_MAX], final[SAVED_PATH_MAX];
    uint8_t digest[32];
    int rc;
    bool ok;

    struct grpc_channel *ch = snapctx_channel_new(ctx, err, err_len);
    if (!ch) {
        res->http_status = 500;
        return -EINVAL;
    }
    if (etcd_status(ch, SNAPSHOT_STATUS_TIMEOUT_MS, &es, &gst) != GRPC_OK) {
        res->http_status = snapctx_grpc_http_status(gst.code);
        snprintf(err, err_len, "status: %s", gst.message);
        rc = -EIO;
        goto out;
    }
    res->revision = es.header.revision;
    if ((rc = saved_name_format(res->name, sizeof res->name, time(NULL), res->revision)) < 0 ||
        snprintf(part, sizeof part, "%s/%s.part", dir, res->name) >= (int)sizeof part ||
        snprintf(final, sizeof final, "%s/%s", dir, res->name) >= (int)sizeof final) {
        rc = io_fail(res, err, err_len, dir, "name", -ENAMETOOLONG);
        goto out;
    }
    snapjob_fs_begin(job);
    w = saved_writer_open(part, ctx->cfg.no_io_uring, &rc);
    ok = snapjob_fs_end(job);
    if (!w) {
        rc = io_fail(res, err, err_len, dir, "create", rc);
        goto out;
    }
    struct take t = {.w = w, .ctx = ctx, .job = job};
    if (!ok)
        goto timed_out;
    int g = etcd_snapshot(ch, 0, ctx->idle_timeout_ms, on_take_data, &t, digest, &gst);
    if (t.timed_out)
        goto timed_out;
    if (g != GRPC_OK) {
        int werr = w->err;
        saved_writer_close(w, false);
        w = NULL;
        if (werr < 0) {
            rc = io_fail(res, err, err_len, dir, "write", werr);
        } else {
            res->http_status = snapctx_grpc_http_status(g);
            snprintf(err, err_len, "snapshot: %s", gst.message);
            rc = -EIO;
        }
        goto out;
    }
    snapjob_fs_begin(job);
    rc = saved_writer_put(w, digest, sizeof digest);
    int crc = saved_writer_close(w, rc == 0);
    w = NULL;
    if (rc == 0)
        rc = crc;
    if (rc < 0) {
        rc = io_fail(res, err, err_len, dir, "write", rc);
        unlink(part);
        snapjob_fs_end(job);
        goto out;
    }
    if (!snapjob_fs_end(job)) {
        unlink(part); /* the client was told 503: keep no snapshot it does not know of */
        goto timed_out;
    }
    snapjob_fs_begin(job);
    if (rename(part, final) != 0) {
        rc = io_fail(res, err, err_len, dir, "rename", -errno);
        unlink(part);
        snapjob_fs_end(job);
        goto out;
    }
    if ((rc = dirsync(dir)) < 0)
        log_msg(LOG_WARN, "snapshot: fsync %s: %s", dir, strerror(-rc));
    snapjob_fs_end(job); /* renamed: kept even if the client was told 503 meanwhile */
    rc = 0;
    res->size = t.total + 32;
    hex_encode(digest, 32, res->sha256);
    res->http_status = 200;
    goto out;
timed_out:
    rc = -ETIMEDOUT;
    res->http_status = 503;
    snprintf(err, err_len, "%s did not answer in time; snapshot not saved", dir);
out:
    res->took_ms = (uint64_t)clock_mono_ms() - t0;
    if (w) {
        snapjob_fs_begin(job);
        saved_writer_close(w, false);
        snapjob_fs_end(job);
    }
    etcd_status_free(&es);
    grpc_channel_free(ch);
    return rc;
}

/* Logs, counts and applies retention after one attempt. */
static void after_take(struct saved *sv, const char *trigger, int rc,
                       const struct saved_result *res, const char *err)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "trigger", trigger);
    cJSON_AddNumberToObject(f, "took_ms", (double)res->took_ms);
    if (rc == 0) {
        cJSON_AddStringToObject(f, "name", res->name);
        cJSON_AddNumberToObject(f, "size", (double)res->size);
        cJSON_AddNumberToObject(f, "revision", (double)res->revision);
        cJSON_AddStringToObject(f, "sha256", res->sha256);
        log_event(LOG_INFO, "snapshot saved", f);
        int removed = saved_retain(sv->dir, sv->ctx->cfg.keep);
        if (removed > 0)
            log_msg(LOG_INFO, "snapshot retention: removed %d old snapshot(s)", removed);
    } else {
        cJSON_AddStringToObject(f, "error", err);
        cJSON_AddNumberToObject(f, "http_status", res->http_status);
        log_event(LOG_ERROR, "snapshot not saved", f);
    }
    snapctx_count_saved(sv->ctx, rc == 0, rc == 0 ? res->size : 0, res->took_ms);
}

static char *result_json(const struct saved_result *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", res->name);
    cJSON_AddNumberToObject(o, "size", (double)res->size);
    cJSON_AddStringToObject(o, "sha256", res->sha256);
    cJSON_AddNumberToObject(o, "revision", (double)res->revision);
    cJSON_AddNumberToObject(o, "took_ms", (double)res->took_ms);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

struct post {
    struct saved *sv;
    struct snapjob *job;
};

static void *post_worker(void *arg)
{
    struct post *p = arg;
    struct saved *sv = p->sv;
    struct snapjob *job = p->job;
    free(p);
    struct saved_result res;
    char err[512] = "";
    int rc = saved_take(sv->ctx, job, sv->dir, &res, err, sizeof err);
    snapjob_unwatch(sv->ctx->pool, job);
    after_take(sv, "request", rc, &res, err);
    snapctx_slot_release(sv->ctx);
    char *json = rc == 0 ? result_json(&res) : NULL;
    if (json)
        snapjob_json(job, 200, json);
    else
        snapjob_error(job, rc == 0 ? 500 : res.http_status, rc == 0 ? "out of memory" : err);
    free(json);
    struct snapjob_pool *pool = sv->ctx->pool;
    snapjob_release(job);
    snapjob_thread_done(pool);
    return NULL;
}

/* ---- schedule ------------------------------------------------------------------------------ */

static void *schedule_loop(void *arg)
{
    struct saved *sv = arg;
    uint64_t interval = sv->ctx->cfg.interval_ms;
    pthread_mutex_lock(&sv->mu);
    while (!sv->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(interval / 1000);
        dl.tv_nsec += (long)(interval % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        while (!sv->stop && pthread_cond_timedwait(&sv->cv, &sv->mu, &dl) != ETIMEDOUT) {
        }
        if (sv->stop)
            break;
        pthread_mutex_unlock(&sv->mu);
        /* Not a request: a skipped turn is logged, not counted as a refused request. */
        if (snapctx_slot_try(sv->ctx)) {
            struct saved_result res;
            char err[512] = "";
            int rc = saved_take(sv->ctx, NULL, sv->dir, &res, err, sizeof err);
            snapctx_slot_release(sv->ctx);
            after_take(sv, "schedule", rc, &res, err);
        } else {
            log_msg(LOG_WARN, "scheduled snapshot skipped: another snapshot is running");
        }
        pthread_mutex_lock(&sv->mu);
    }
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

struct saved *saved_new(struct snapctx *ctx, struct disksource *disk, char *err, size_t err_len)
{
    const char *dir = ctx->cfg.snapshot_dir;
    struct saved *sv = calloc(1, sizeof *sv);
    if (!sv) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    sv->ctx = ctx;
    sv->disk = disk;
    sv->dir = dir;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&sv->mu, NULL);
    pthread_cond_init(&sv->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!dir)
        return sv; /* /snapshots answers 404 */
    /* Start-up, before the server listens: not a request. */
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int e = errno ? errno : ENOTDIR;
        snprintf(err, err_len, "--snapshot-dir %s: %s", dir, strerror(e));
        saved_free(sv);
        return NULL;
    }
    int removed = saved_remove_parts(dir);
    if (removed > 0)
        log_msg(LOG_WARN, "removed %d partial snapshot(s) (.part) left in %s", removed, dir);
    if (ctx->cfg.interval_ms > 0) {
        int r = pthread_create(&sv->thread, NULL, schedule_loop, sv);
        if (r != 0) {
            snprintf(err, err_len, "snapshot schedule: %s", strerror(r));
            saved_free(sv);
            return NULL;
        }
        sv->running = true;
    }
    return sv;
}

void saved_stop(struct saved *sv)
{
    if (!sv || !sv->running)
        return;
    pthread_mutex_lock(&sv->mu);
    sv->stop = true;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    pthread_join(sv->thread, NULL);
    sv->running = false;
}

void saved_free(struct saved *sv)
{
    if (!sv)
        return;
    saved_stop(sv);
    pthread_cond_destroy(&sv->cv);
    pthread_mutex_destroy(&sv->mu);
    free(sv);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* On a pool worker: the directory listing and a stat per file. */
struct list_task {
    struct saved *sv;
};

static void list_task(struct snapjob *job, void *arg)
{
    struct saved *sv = ((struct list_task *)arg)->sv;
    free(arg);
    const char *dir = sv->dir;
    char **names;
    size_t n;
    int rc = saved_list(dir, &names, &n);
    if (rc < 0) {
        if (snapjob_fs_end(job))
            snapjob_error(job, 500, strerror(-rc));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "snapshots");
    for (size_t i = n; i-- > 0;) { /* newest first */
        char path[SAVED_PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path ||
            stat(path, &st) != 0)
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", names[i]);
        cJSON_AddNumberToObject(e, "size", (double)st.st_size);
        const char *rev = strstr(names[i], "-rev");
        cJSON_AddNumberToObject(e, "revision", rev ? strtod(rev + 4, NULL) : 0);
        char when[32];
        struct tm tm;
        gmtime_r(&st.st_mtime, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        cJSON_AddStringToObject(e, "mtime", when);
        cJSON_AddItemToArray(arr, e);
    }
    saved_names_free(names, n);
    bool in_time = snapjob_fs_end(job);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!in_time) {
        free(s);
        return;
    }
    if (!s)
        snapjob_error(job, 500, "out of memory");
    else
        snapjob_json(job, 200, s);
    free(s);
}

struct file_task {
    struct saved *sv;
    bool head;
    bool has_range;
    char range[HTTP_MAX_HEADER_BYTES / 8];
    char name[SAVED_NAME_MAX];
};

/* On a pool worker: open, fstat, Range; then the reader thread. */
static void file_task(struct snapjob *job, void *arg)
{
    struct file_task *t = arg;
    struct saved *sv = t->sv;
    char path[SAVED_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", sv->dir, t->name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    bool found = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!snapjob_fs_end(job) || !found) {
        if (fd >= 0)
            close(fd);
        snapjob_error(job, 404, "no such snapshot"); /* no-op after the watchdog's 503 */
        free(t);
        return;
    }
    uint64_t size = (uint64_t)st.st_size, first = 0, last = size ? size - 1 : 0;
    int status = 200;
    char v[96];
    int r = saved_parse_range(t->has_range ? t->range : NULL, size, &first, &last);
    bool head = t->head;
    free(t);
    if (r == -ERANGE) {
        close(fd);
        snprintf(v, sizeof v, "bytes */%" PRIu64, size);
        snapjob_header(job, "content-range", v);
        snapjob_error(job, 416, "range not satisfiable");
        return;
    }
    snapjob_header(job, "accept-ranges", "bytes");
    if (r == 0) {
        status = 206;
        snprintf(v, sizeof v, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        snapjob_header(job, "content-range", v);
    }
    uint64_t len = size ? last - first + 1 : 0;
    if (head) {
        close(fd);
        snapjob_ready(job, status, "application/octet-stream", (int64_t)len);
        return;
    }
    r = disksource_stream_fd(sv->disk, job, status, fd, first, len, false, NULL);
    if (r == -EBUSY)
        snapctx_job_busy(sv->ctx, job, "download");
    else if (r < 0)
        snapjob_error(job, 500, strerror(-r));
}

static void run_task(struct saved *sv, struct http_response *resp, snapjob_task_fn fn, void *arg)
{
    int r = snapjob_run(sv->ctx->pool, resp, fn, arg);
    if (r < 0) {
        free(arg);
        if (r == -EBUSY)
            snapctx_reply_pool_full(resp);
        else
            snapctx_reply_error(resp, 500, "out of memory");
    }
}

static bool saved_on(struct saved *sv, const struct http_request *req, struct http_response *resp)
{
    if (!snapctx_access_ok(sv->ctx, req, resp))
        return false;
    if (!sv->dir) {
        snapctx_reply_error(resp, 404, "saved snapshots are off (no --snapshot-dir)");
        return false;
    }
    return true;
}

static void post(struct saved *sv, struct http_response *resp)
{
    if (!snapctx_slot_acquire(sv->ctx)) {
        snapctx_reply_busy(sv->ctx, resp, "snapshot");
        return;
    }
    struct snapjob *job = snapjob_new();
    struct post *p = calloc(1, sizeof *p);
    if (!job || !p) {
        free(p);
        if (job)
            snapjob_release(job);
        snapctx_slot_release(sv->ctx);
        snapctx_reply_error(resp, 500, "out of memory");
        return;
    }
    p->sv = sv;
    p->job = job;
    snapjob_hold(job); /* the worker's */
    snapjob_watch(sv->ctx->pool, job);
    if (snapjob_thread_start(sv->ctx->pool, post_worker, p) != 0) {
        snapjob_unwatch(sv->ctx->pool, job);
        snapjob_release(job);
        snapjob_release(job);
        free(p);
        snapctx_slot_release(sv->ctx);
        snapctx_reply_error(resp, 500, "cannot start a worker");
        return;
    }
    snapjob_attach(job, resp);
}

void saved_route_list(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct saved *sv = arg;
    if (!saved_on(sv, req, resp))
        return;
    if (strcmp(req->method, "POST") == 0) {
        post(sv, resp);
        return;
    }
    struct list_task *t = malloc(sizeof *t);
    if (!t) {
        snapctx_reply_error(resp, 500, "out of memory");
        return;
    }
    t->sv = sv;
    run_task(sv, resp, list_task, t);
}

void saved_route_file(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct saved *sv = arg;
    if (!saved_on(sv, req, resp))
        return;
    const char *name = req->path + strlen("/snapshots/");
    char path[SAVED_PATH_MAX];
    if (!saved_name_valid(name) ||
        snprintf(path, sizeof path, "%s/%s", sv->dir, name) >= (int)sizeof path) {
        snapctx_reply_error(resp, 404, "no such snapshot");
        return;
    }
    struct file_task *t = calloc(1, sizeof *t);
    if (!t) {
        snapctx_reply_error(resp, 500, "out of memory");
        return;
    }
    t->sv = sv;
    t->head = strcmp(req->method, "HEAD") == 0;
    snprintf(t->name, sizeof t->name, "%s", name);
    const char *range = http_request_header(req, "range");
    if (range && strlen(range) < sizeof t->range) {
        t->has_range = true;
        snprintf(t->range, sizeof t->range, "%s", range);
    } else if (range) {
        t->has_range = true; /* too long to be one valid range: ignored, like malformed ones */
        snprintf(t->range, sizeof t->range, "x");
    }
    run_task(sv, resp, file_task, t);
}
