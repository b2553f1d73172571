/* backup.c - off-node backups (backup.h): one backup (etcd snapshot -> codec -> spool file ->
 * store parts -> manifest), its verification, retention, the schedule thread that takes the
 * cluster's turn, POST/GET /backups and the metrics. The turn and the names are
 * backup_turn.c's; signing, retries and parts are the store's; zstd/age the codec's. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "backup_turn.h"
#include "bounds.h"
#include "cache.h"
#include "clock.h"
#include "codec.h"
#include "etcd.h"
#include "grpc.h"
#include "hex.h"
#include "log.h"
#include "metrics.h"
#include "retention.h"
#include "routes.h"
#include "spool.h"
#include "store.h"

#define MANIFEST_SUFFIX ".manifest.json"

enum backup_reason {
    R_ETCD,        /* the snapshot stream failed */
    R_MISMATCH,    /* sha256 / size mismatch (stream, upload check, verification) */
    R_SPOOL,       /* the local spool file */
    R_CREDENTIALS, /* 403: refused credentials or signature */
    R_BUCKET,      /* no such bucket / directory */
    R_STORE,       /* transient errors that outlasted the retries */
    R_UNREACHABLE, /* the store cannot be reached */
    R_OTHER,
    R_COUNT
};
static const char *const reason_names[R_COUNT] = {
    "etcd", "mismatch", "spool", "credentials", "bucket", "store", "unreachable", "other"};

struct backup {
    struct backup_config cfg;
    char *url, *spool_dir;
    char url_log[STORE_MAX_URL];
    struct age_recipient recipients[AGE_MAX_RECIPIENTS];
    struct store *store;
    struct retention_policy policy;
    bool have_policy;
    int64_t start_ms; /* wall */

    pthread_mutex_t mu; /* guards running and the fields below it */
    pthread_cond_t cv;
    bool stop, running, thread_started;
    pthread_t thread;
    int64_t last_verify_ms; /* wall; 0: never */

    atomic_int_fast64_t last_good_ms; /* wall time of the newest good backup known; 0: none */
    atomic_uint_fast64_t ok_total, failed_total, uploaded_bytes, last_duration_ms, last_size;
    atomic_uint_fast64_t last_success_s, verified_total, pruned_total;
    atomic_uint_fast64_t failures[R_COUNT];
    struct route route;
    struct metrics_source metrics;
};

/* What the routes and the table show (they read the cache, never this module). */
static void publish_state(struct backup *b)
{
    struct cache_backup cb = {
        .enabled = true,
        .interval_ms = b->cfg.interval_ms,
        .started_wall_ms = b->start_ms,
        .last_good_wall_ms = atomic_load(&b->last_good_ms),
    };
    snprintf(cb.store, sizeof cb.store, "%.*s", (int)sizeof cb.store - 1, b->url_log); /* cut */
    if (b->cfg.cache && cache_publish_backup(b->cfg.cache, &cb) < 0)
        log_msg(LOG_WARN, "backup: cannot publish its state (out of memory)");
}

void backup_url_redact(const char *url, char *out, size_t len)
{
    size_t n = strcspn(url, "?#");
    const char *at = memchr(url, '@', n), *sch = strstr(url, "://");
    if (at && sch && sch < at)
        snprintf(out, len, "%.*s%.*s", (int)(sch + 3 - url), url, (int)(n - (size_t)(at + 1 - url)),
                 at + 1);
    else
        snprintf(out, len, "%.*s", (int)n, url);
}

static enum backup_reason store_reason(int rc)
{
    switch (rc) {
    case -EACCES:
    case -EPERM:
        return R_CREDENTIALS;
    case -ENOENT:
        return R_BUCKET;
    case -EIO:
    case -ETIMEDOUT:
        return R_STORE;
    case -ECONNREFUSED:
        return R_UNREACHABLE;
    case -EBADMSG:
        return R_MISMATCH;
    default:
        return R_OTHER;
    }
}

/* ---- one backup ---------------------------------------------------------------------------- */

struct backup_result {
    char name[STORE_MAX_NAME + 1];
    uint64_t cluster_id, member_id;
    int64_t revision;
    char version[32];
    char db_sha256[65], object_sha256[65];
    uint64_t db_size, object_size;
    uint64_t took_ms;
    uint64_t stream_ms;     /* from the start until the etcd stream ended (all in the spool) */
    uint64_t first_part_ms; /* ... until the store first took a part (0: never) */
    unsigned parts, parts_in_stream; /* parts uploaded; those done before the stream ended */
    enum backup_reason reason;
};

/* The upload runs beside the stream: the producer (etcd stream -> codec) appends to the spool
 * file; STORE_UPLOAD_STREAMS uploader threads each hand the next part to the store as soon as
 * the file holds it (the store re-reads a retried part from the file: no part is held in
 * memory), and punch the parts the store no longer needs out of the file, so the spool's disk
 * use stays about one part per uploader and one being written. When the stream ends, what is
 * left goes as up to STORE_UPLOAD_STREAMS parts side by side (each at least
 * STORE_TAIL_PART_MIN) rather than as one last part alone. The object becomes visible only by
 * store_upload_commit, which the backup's thread calls after the etcd stream's sha256 checked
 * out; any failure aborts the upload instead. */
struct pipeline {
    int fd;
    struct store_upload *u;
    uint64_t part_size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    uint64_t avail;           /* bytes in the spool file (producer) */
    bool done;                /* producer: every byte is in the file and checked */
    bool failed;              /* producer: the stream or codec failed: stop */
    uint64_t next_off;        /* uploaders: where the next part starts ... */
    unsigned next_number;     /* ... and its number (from 1) */
    unsigned busy;            /* part calls running */
    bool part1_busy;          /* part 1's call runs: the store wants it alone, first */
    uint64_t part1_len;       /* part 1's region stays until part 2's call returned */
    uint64_t sent;            /* bytes the store took */
    unsigned parts;           /* parts the store took */
    unsigned parts_in_stream; /* ... of them before the stream ended */
    int64_t first_part_ms;    /* mono ms when the store first returned from a part; 0: not yet */
    int err;                  /* the first uploader failure (sticky) */
    char errbuf[512];
    /* producer only */
    uint64_t off;
    int write_err;
};

static int spool_sink_write(void *arg, const uint8_t *buf, size_t len)
{
    struct pipeline *p = arg;
    size_t n = len;
    while (len) {
        ssize_t w = pwrite(p->fd, buf, len, (off_t)p->off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return p->write_err = w < 0 ? -errno : -EIO;
        p->off += (uint64_t)w;
        buf += w;
        len -= (size_t)w;
    }
    pthread_mutex_lock(&p->mu);
    int err = p->err;
    uint64_t before = p->avail;
    p->avail = p->off;
    /* wake the uploaders when a part completes, not on every write */
    if (n && (before - p->next_off) / p->part_size != (p->avail - p->next_off) / p->part_size)
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return err < 0 ? -ECANCELED : 0;
}

/* The producer's end: done (every byte in the file, the stream checked) or failed. */
static void pipeline_end(struct pipeline *p, bool ok)
{
    pthread_mutex_lock(&p->mu);
    if (ok)
        p->done = true;
    else
        p->failed = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The next part's length under p->mu: 0 when none is ready (or none is left: done and all
 * handed out). A full part while the stream runs; after it, the rest split among the idle
 * uploaders, in pieces of at least STORE_TAIL_PART_MIN. */
static uint64_t next_part_len(const struct pipeline *p)
{
    uint64_t left = p->avail - p->next_off;
    if (p->next_number == 2 && p->part1_busy)
        return 0;
    if (left >= p->part_size && (!p->done || left > p->part_size * STORE_UPLOAD_STREAMS))
        return p->part_size;
    if (!p->done || left == 0)
        return 0;
    uint64_t pieces = left / STORE_TAIL_PART_MIN;
    if (pieces > STORE_UPLOAD_STREAMS - p->busy)
        pieces = STORE_UPLOAD_STREAMS - p->busy;
    if (pieces < 2)
        return left;
    return (left + pieces - 1) / pieces;
}

static void *uploader(void *arg)
{
    struct pipeline *p = arg;
    char errbuf[sizeof p->errbuf];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        uint64_t n = 0;
        while (!p->failed && !p->err && !(n = next_part_len(p)) &&
               !(p->done && p->avail == p->next_off))
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->failed || p->err || n == 0)
            break;
        struct store_part part = {.number = p->next_number,
                                  .obj_off = p->next_off,
                                  .fd = p->fd,
                                  .off = p->next_off,
                                  .len = n};
        p->next_number++;
        p->next_off += n;
        p->busy++;
        if (part.number == 1) {
            p->part1_busy = true;
            p->part1_len = n;
        }
        pthread_mutex_unlock(&p->mu);
        int rc = store_upload_part(p->u, &part, errbuf, sizeof errbuf); /* checks the number */
        /* The store is done with this part's bytes (part 1's: once part 2's call returned, as
         * S3 holds part 1 back until then): drop them from the spool. */
        if (rc == 0 && part.number > 1)
            (void)fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)part.off,
                            (off_t)part.len);
        if (rc == 0 && part.number == 2)
            (void)fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                            (off_t)p->part1_len);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (part.number == 1)
            p->part1_busy = false;
        pthread_cond_broadcast(&p->cv);
        if (rc < 0) {
            if (!p->err) {
                p->err = rc;
                memcpy(p->errbuf, errbuf, sizeof errbuf);
            }
            break;
        }
        p->sent += part.len;
        p->parts++;
        if (!p->first_part_ms)
            p->first_part_ms = clock_mono_ms();
        if (!p->done)
            p->parts_in_stream++;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The encoder runs in its own thread: the etcd stream's thread (TLS, etcd's digest) copies the
 * snapshot into BACKUP_ENC_BUFS buffers of BACKUP_ENC_CHUNK and hands them over in order; the
 * encoder thread (zstd, age, the object's sha256, the spool) takes them, so that compressing
 * overlaps receiving instead of following it. */
struct take {
    struct codec *codec;
    struct backup *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *buf[BACKUP_ENC_BUFS];
    size_t len[BACKUP_ENC_BUFS];
    unsigned head, n; /* under mu: the oldest full buffer and how many are full or in use */
    bool eof;         /* under mu: no more buffers come */
    bool cancel;      /* under mu: the stream failed: drop what is queued */
    int err;          /* under mu: the encoder's failure (sticky) */
    unsigned fill;    /* stream thread: the buffer it fills, and how far */
    size_t fill_len;
};

static void *encoder(void *arg)
{
    struct take *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->n == 0 && !t->eof && !t->err && !t->cancel)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->n == 0 || t->err || t->cancel)
            break;
        unsigned i = t->head;
        pthread_mutex_unlock(&t->mu);
        int rc = codec_write(t->codec, t->buf[i], t->len[i]);
        pthread_mutex_lock(&t->mu);
        if (rc < 0)
            t->err = rc;
        t->head = (t->head + 1) % BACKUP_ENC_BUFS;
        t->n--;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Hands the buffer being filled to the encoder and waits for a free one. 0 or its error. */
static int take_hand(struct take *t)
{
    pthread_mutex_lock(&t->mu);
    if (!t->err) {
        t->len[t->fill] = t->fill_len;
        t->n++;
        pthread_cond_broadcast(&t->cv);
    }
    while (t->n == BACKUP_ENC_BUFS && !t->err)
        pthread_cond_wait(&t->cv, &t->mu);
    int err = t->err;
    pthread_mutex_unlock(&t->mu);
    t->fill = (t->fill + 1) % BACKUP_ENC_BUFS;
    t->fill_len = 0;
    return err;
}

/* Copies len bytes into the buffers, handing over each full one. 0 or the encoder's error. */
static int take_put(struct take *t, const uint8_t *p, size_t len)
{
    while (len) {
        size_t n = BACKUP_ENC_CHUNK - t->fill_len < len ? BACKUP_ENC_CHUNK - t->fill_len : len;
        memcpy(t->buf[t->fill] + t->fill_len, p, n);
        t->fill_len += n;
        p += n;
        len -= n;
        int rc = t->fill_len == BACKUP_ENC_CHUNK ? take_hand(t) : 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The stream's end: the last partial buffer (ok), then no more. The caller joins the thread. */
static int take_end(struct take *t, bool ok)
{
    int rc = ok && t->fill_len ? take_hand(t) : 0;
    pthread_mutex_lock(&t->mu);
    t->eof = true;
    t->cancel = !ok;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int on_data(void *arg, uint64_t total, const uint8_t *blob, size_t len)
{
    (void)total;
    struct take *t = arg;
    if (snapjob_stopping(t->b->cfg.snap->pool))
        return 1;
    return take_put(t, blob, len) < 0 ? 1 : 0;
}

struct size_find {
    const char *name;
    bool found;
    uint64_t size;
};

static int on_size_entry(void *arg, const struct store_entry *e)
{
    struct size_find *f = arg;
    if (strcmp(e->name, f->name) == 0) {
        f->found = true;
        f->size = e->size;
    }
    return 0;
}

static char *manifest_json(const struct backup *b, const struct backup_result *r)
{
    cJSON *o = cJSON_CreateObject();
    char hex[17];
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "db_sha256", r->db_sha256);
    cJSON_AddNumberToObject(o, "db_size", (double)r->db_size);
    cJSON_AddStringToObject(o, "object_sha256", r->object_sha256);
    cJSON_AddNumberToObject(o, "object_size", (double)r->object_size);
    cJSON_AddNumberToObject(o, "revision", (double)r->revision);
    snprintf(hex, sizeof hex, "%016" PRIx64, r->member_id);
    cJSON_AddStringToObject(o, "member", hex);
    snprintf(hex, sizeof hex, "%016" PRIx64, r->cluster_id);
    cJSON_AddStringToObject(o, "cluster_id", hex);
    cJSON_AddStringToObject(o, "etcd_version", r->version);
    cJSON_AddStringToObject(o, "compression", b->cfg.compress ? "zstd" : "none");
    cJSON_AddStringToObject(o, "encryption", b->cfg.n_recipients ? "age" : "none");
    cJSON_AddNumberToObject(o, "took_ms", (double)r->took_ms);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* One backup. 0, or -errno with err filled and res->reason set; nothing a restore would take
 * is left behind on failure (the object is visible only with its manifest, written last). */
static int backup_take(struct backup *b, struct backup_result *res, char *err, size_t err_len)
{
    memset(res, 0, sizeof *res);
    int64_t t0 = clock_mono_ms();
    struct grpc_status gst = {0};
    struct etcd_status es = {0};
    struct codec *codec = NULL;
    int fd = -1, rc;
    uint8_t digest[32];
    struct codec_result cr;
    struct pipeline p = {.fd = -1, .next_number = 1};
    struct take t = {.b = b};
    pthread_t enc_thread;
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    pthread_t up_threads[STORE_UPLOAD_STREAMS];
    int up_started = 0;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);

    struct grpc_channel *ch = snapctx_channel_new(b->cfg.snap, err, err_len);
    if (!ch) {
        res->reason = R_ETCD;
        return -EINVAL;
    }
    if (etcd_status(ch, SNAPSHOT_STATUS_TIMEOUT_MS, &es, &gst) != GRPC_OK) {
        snprintf(err, err_len, "etcd status: %s", gst.message);
        res->reason = R_ETCD;
        rc = -EIO;
        goto out;
    }
    res->cluster_id = es.header.cluster_id;
    res->member_id = es.header.member_id;
    res->revision = es.header.revision;
    snprintf(res->version, sizeof res->version, "%s", es.version);
    if ((rc = backup_name_format(res->name, sizeof res->name - strlen(MANIFEST_SUFFIX),
                                 res->cluster_id, time(NULL), res->revision, b->cfg.compress,
                                 b->cfg.n_recipients > 0)) < 0) {
        snprintf(err, err_len, "object name too long");
        res->reason = R_OTHER;
        goto out;
    }
    if ((fd = spool_tmpfile(b->spool_dir)) < 0) {
        rc = fd;
        snprintf(err, err_len, "spool file in %s: %s", b->spool_dir, strerror(-rc));
        res->reason = R_SPOOL;
        goto out;
    }
    p.fd = fd;
    p.part_size = b->store->part_size;
    struct codec_enc_opts eo = {.zstd = b->cfg.compress,
                                .zstd_level = b->cfg.zstd_level,
                                .recipients = b->cfg.n_recipients ? b->recipients : NULL,
                                .n_recipients = b->cfg.n_recipients,
                                .no_plain_sha256 = true}; /* etcd_snapshot checks the db's */
    if ((rc = codec_enc_new(&codec, &eo, spool_sink_write, &p)) < 0) {
        snprintf(err, err_len, "codec: %s", strerror(-rc));
        res->reason = R_OTHER;
        goto out;
    }
    if ((rc = store_upload_begin(b->store, res->name, &p.u, err, err_len)) < 0) {
        res->reason = store_reason(rc);
        goto out;
    }
    for (; up_started < STORE_UPLOAD_STREAMS; up_started++) {
        if (pthread_create(&up_threads[up_started], NULL, uploader, &p) != 0) {
            rc = -EAGAIN;
            snprintf(err, err_len, "cannot start an upload thread");
            res->reason = R_OTHER;
            goto out;
        }
    }
    for (int i = 0; i < BACKUP_ENC_BUFS; i++) {
        if (!(t.buf[i] = malloc(BACKUP_ENC_CHUNK))) {
            rc = -ENOMEM;
            snprintf(err, err_len, "out of memory");
            res->reason = R_OTHER;
            goto out;
        }
    }
    t.codec = codec;
    if (pthread_create(&enc_thread, NULL, encoder, &t) != 0) {
        rc = -EAGAIN;
        snprintf(err, err_len, "cannot start the encoder thread");
        res->reason = R_OTHER;
        goto out;
    }
    int g = etcd_snapshot(ch, 0, b->cfg.snap->idle_timeout_ms, on_data, &t, digest, &gst);
    /* etcdctl's file format: the db bytes, then their sha256 (etcd's digest, checked) */
    if (g == GRPC_OK && take_put(&t, digest, sizeof digest) < 0)
        g = GRPC_CANCELLED;
    take_end(&t, g == GRPC_OK);
    pthread_join(enc_thread, NULL); /* joined on every path: no goto since its start */
    if (g != GRPC_OK) {
        if (t.err < 0) {
            rc = t.err;
            snprintf(err, err_len, "spool/codec: %s %s", strerror(-rc), codec_error(codec));
            res->reason = p.write_err < 0 ? R_SPOOL : R_OTHER;
        } else {
            rc = -EIO;
            snprintf(err, err_len, "etcd snapshot: %s", gst.message);
            res->reason = g == GRPC_DATA_LOSS ? R_MISMATCH : R_ETCD;
        }
        goto out;
    }
    if ((rc = t.err) < 0 || (rc = codec_finish(codec, &cr)) < 0) {
        snprintf(err, err_len, "spool/codec: %s %s", strerror(-rc), codec_error(codec));
        res->reason = p.write_err < 0 ? R_SPOOL : R_OTHER;
        goto out;
    }
    hex_encode(digest, 32, res->db_sha256);
    hex_encode(cr.object_sha256, 32, res->object_sha256);
    res->db_size = cr.plain_size;
    res->object_size = cr.object_size;
    if (cr.object_size != p.off) {
        rc = -EIO;
        snprintf(err, err_len, "spool holds %" PRIu64 " bytes, codec wrote %" PRIu64, p.off,
                 cr.object_size);
        res->reason = R_SPOOL;
        goto out;
    }
    res->stream_ms = (uint64_t)(clock_mono_ms() - t0);
    pipeline_end(&p, true);
    for (; up_started > 0; up_started--)
        pthread_join(up_threads[up_started - 1], NULL);
    res->parts = p.parts;
    res->parts_in_stream = p.parts_in_stream;
    res->first_part_ms = p.first_part_ms ? (uint64_t)(p.first_part_ms - t0) : 0;
    if (p.err < 0 || p.sent != cr.object_size) {
        rc = p.err < 0 ? p.err : -EIO;
        snprintf(err, err_len, "%s", p.err < 0 ? p.errbuf : "upload ended short");
        res->reason = store_reason(rc);
        goto out;
    }
    rc = store_upload_commit(p.u, err, err_len);
    p.u = NULL; /* freed by commit, also on failure */
    if (rc < 0) {
        res->reason = store_reason(rc);
        goto out;
    }
    atomic_fetch_add(&b->uploaded_bytes, cr.object_size);
    res->took_ms = (uint64_t)(clock_mono_ms() - t0);
    char *mj = manifest_json(b, res);
    char mname[STORE_MAX_NAME + 32];
    snprintf(mname, sizeof mname, "%s%s", res->name, MANIFEST_SUFFIX);
    rc = mj ? store_put_buffer(b->store, mname, mj, strlen(mj), err, err_len) : -ENOMEM;
    free(mj);
    if (rc < 0) {
        res->reason = store_reason(rc);
        char e2[256];
        store_remove(b->store, res->name, e2, sizeof e2); /* no manifest: not a backup anyway */
        goto out;
    }
    /* the object's size as the store lists it, against the manifest */
    struct size_find sf = {.name = res->name};
    if ((rc = store_list(b->store, res->name, on_size_entry, &sf, err, err_len)) < 0) {
        res->reason = store_reason(rc);
        goto out;
    }
    if (!sf.found || sf.size != res->object_size) {
        rc = -EBADMSG;
        snprintf(err, err_len,
                 "%.200s: the store lists %s%" PRIu64 " bytes, the manifest says %" PRIu64,
                 res->name, sf.found ? "" : "no object, ", sf.size, res->object_size);
        res->reason = R_MISMATCH;
        char e2[256];
        store_remove(b->store, mname, e2, sizeof e2);
        goto out;
    }
    rc = 0;
out:
    if (up_started) { /* the stream failed: each uploader stops after the part it sends */
        pipeline_end(&p, false);
        for (; up_started > 0; up_started--)
            pthread_join(up_threads[up_started - 1], NULL);
        if (p.err < 0 && res->reason != R_MISMATCH && res->reason != R_ETCD) {
            rc = p.err; /* the store's failure stopped the stream: say that */
            snprintf(err, err_len, "%s", p.errbuf);
            res->reason = store_reason(rc);
        }
    }
    for (int i = 0; i < BACKUP_ENC_BUFS; i++)
        free(t.buf[i]);
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&t.mu);
    store_upload_abort(p.u); /* nothing committed: the store drops the parts */
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    res->took_ms = (uint64_t)(clock_mono_ms() - t0);
    codec_free(codec);
    if (fd >= 0)
        close(fd);
    etcd_status_free(&es);
    grpc_channel_free(ch);
    return rc;
}

/* ---- verification -------------------------------------------------------------------------- */

struct hash_sink {
    EVP_MD_CTX *md;
    uint64_t n;
};

static int on_hash(void *arg, const void *buf, size_t len)
{
    struct hash_sink *h = arg;
    h->n += len;
    return EVP_DigestUpdate(h->md, buf, len) == 1 ? 0 : -EIO;
}

/* Downloads name and checks its size and sha256. 0 or -errno with err filled. */
static int backup_verify(struct backup *b, const char *name, uint64_t size, const char *sha_hex,
                         char *err, size_t err_len)
{
    struct hash_sink h = {.md = EVP_MD_CTX_new()};
    if (!h.md || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h.md);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    int rc = store_get(b->store, name, on_hash, &h, err, err_len);
    uint8_t d[32];
    unsigned dl = 0;
    char hex[65];
    if (rc == 0 && EVP_DigestFinal_ex(h.md, d, &dl) == 1) {
        hex_encode(d, 32, hex);
        if (h.n != size || strcmp(hex, sha_hex) != 0) {
            snprintf(err, err_len,
                     "%.200s: downloaded %" PRIu64 " bytes sha256 %.16s..., manifest %" PRIu64
                     " bytes %.16s...",
                     name, h.n, hex, size, sha_hex);
            rc = -EBADMSG;
        }
    }
    EVP_MD_CTX_free(h.md);
    return rc;
}

/* ---- the store's backups ------------------------------------------------------------------- */

struct listing {
    struct store_entry *e;
    size_t n, cap;
    int err;
};

static int on_list(void *arg, const struct store_entry *e)
{
    struct listing *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        if (cap > STORE_MAX_LISTED)
            return 1;
        struct store_entry *p = realloc(l->e, cap * sizeof *p);
        if (!p)
            return l->err = -ENOMEM;
        l->e = p;
        l->cap = cap;
    }
    l->e[l->n++] = *e;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct store_entry *)a)->name, ((const struct store_entry *)b)->name);
}

struct bk {
    const struct store_entry *obj;
    time_t t;
    int64_t rev;
    bool complete; /* its manifest is listed */
};

/* The backups of cluster cid (NULL: all clusters), sorted by name (= by time within a
 * cluster). *out malloc'd. 0 or -errno with err filled. */
static int list_backups(struct backup *b, const char *cid, struct listing *l, struct bk **out,
                        size_t *n, char *err, size_t err_len)
{
    char prefix[32] = "";
    if (cid)
        snprintf(prefix, sizeof prefix, "%s/", cid);
    memset(l, 0, sizeof *l);
    int rc = store_list(b->store, prefix, on_list, l, err, err_len);
    if (rc < 0 || l->err < 0)
        return rc < 0 ? rc : l->err;
    if (l->n)
        qsort(l->e, l->n, sizeof *l->e, cmp_entry);
    struct bk *v = calloc(l->n ? l->n : 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        time_t t;
        int64_t rev;
        if (backup_name_parse(l->e[i].name, &t, &rev) < 0)
            continue;
        struct store_entry key = {0};
        int kn = snprintf(key.name, sizeof key.name, "%s%s", l->e[i].name, MANIFEST_SUFFIX);
        bool complete = kn > 0 && (size_t)kn < sizeof key.name &&
                        bsearch(&key, l->e, l->n, sizeof *l->e, cmp_entry) != NULL;
        v[k++] = (struct bk){.obj = &l->e[i], .t = t, .rev = rev, .complete = complete};
    }
    *out = v;
    *n = k;
    return 0;
}

/* Retention over cluster cid's backups after a verified backup; one log line. */
static void prune(struct backup *b, const char *cid)
{
    if (!b->have_policy)
        return;
    struct listing l;
    struct bk *v = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = list_backups(b, cid, &l, &v, &n, err, sizeof err);
    struct retention_backup *rb = rc == 0 ? calloc(n ? n : 1, sizeof *rb) : NULL;
    struct retention_verdict *vd = rb ? calloc(n ? n : 1, sizeof *vd) : NULL;
    if (!vd) {
        log_msg(LOG_WARN, "backup retention skipped: %s", rc < 0 ? err : "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        rb[i] = (struct retention_backup){.time = v[i].t, .good = v[i].complete};
    if (retention_decide(&b->policy, rb, n, time(NULL), vd) < 0)
        goto out;
    char line[1024] = "";
    size_t len = 0, pruned = 0;
    for (size_t i = 0; i < n; i++) {
        if (vd[i].keep)
            continue;
        char mname[STORE_MAX_NAME + 32], why[128];
        snprintf(mname, sizeof mname, "%s%s", v[i].obj->name, MANIFEST_SUFFIX);
        /* the manifest first: without it the object is no backup any more */
        if (v[i].complete && (rc = store_remove(b->store, mname, err, sizeof err)) < 0 &&
            rc != -ENOENT) {
            log_msg(LOG_WARN, "backup retention: %s", err);
            continue;
        }
        if ((rc = store_remove(b->store, v[i].obj->name, err, sizeof err)) < 0 && rc != -ENOENT)
            log_msg(LOG_WARN, "backup retention: %s", err);
        pruned++;
        retention_reason_str(vd[i].reasons, why, sizeof why);
        int w = snprintf(line + len, sizeof line - len, "%s%s (%s)", len ? ", " : "",
                         v[i].obj->name, why);
        if (w > 0 && (size_t)w < sizeof line - len)
            len += (size_t)w;
    }
    if (pruned) {
        char pol[128];
        atomic_fetch_add(&b->pruned_total, pruned);
        log_msg(LOG_INFO, "backup retention (%s): pruned %zu of %zu: %s",
                retention_policy_str(&b->policy, pol, sizeof pol), pruned, n, line);
    }
out:
    free(vd);
    free(rb);
    free(v);
    free(l.e);
}

/* The newest complete backup of cid in the store (wall ms), -1 if none; -2 on error. */
static int64_t newest_backup_ms(struct backup *b, const char *cid, char *err, size_t err_len,
                                int *rc_out)
{
    struct listing l;
    struct bk *v = NULL;
    size_t n = 0;
    int64_t newest = -1;
    int rc = list_backups(b, cid, &l, &v, &n, err, err_len);
    *rc_out = rc;
    if (rc < 0) {
        newest = -2;
    } else {
        for (size_t i = 0; i < n; i++)
            if (v[i].complete && (int64_t)v[i].t * 1000 > newest)
                newest = (int64_t)v[i].t * 1000;
    }
    free(v);
    free(l.e);
    return newest;
}

/* ---- running one (schedule or request) ----------------------------------------------------- */

static bool try_begin(struct backup *b)
{
    pthread_mutex_lock(&b->mu);
    bool ok = !b->running;
    b->running = true;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

static void end_run(struct backup *b)
{
    pthread_mutex_lock(&b->mu);
    b->running = false;
    pthread_mutex_unlock(&b->mu);
}

static void count_failure(struct backup *b, enum backup_reason r, const char *trigger,
                          const char *err)
{
    atomic_fetch_add(&b->failed_total, 1);
    atomic_fetch_add(&b->failures[r], 1);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "trigger", trigger);
    cJSON_AddStringToObject(f, "reason", reason_names[r]);
    cJSON_AddStringToObject(f, "store", b->url_log);
    cJSON_AddStringToObject(f, "error", err);
    log_event(LOG_ERROR, "backup failed", f);
}

/* Takes, checks, verifies (first time and every verify interval) and prunes. Called with
 * running set. 0 or -errno (logged and counted). */
/* A backup's result: the POST answer and the "backup uploaded" log line's fields. */
static cJSON *result_json(const struct backup_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddNumberToObject(o, "revision", (double)r->revision);
    cJSON_AddStringToObject(o, "db_sha256", r->db_sha256);
    cJSON_AddNumberToObject(o, "db_size", (double)r->db_size);
    cJSON_AddStringToObject(o, "object_sha256", r->object_sha256);
    cJSON_AddNumberToObject(o, "object_size", (double)r->object_size);
    cJSON_AddNumberToObject(o, "took_ms", (double)r->took_ms);
    cJSON_AddNumberToObject(o, "stream_ms", (double)r->stream_ms);
    cJSON_AddNumberToObject(o, "first_part_ms", (double)r->first_part_ms);
    cJSON_AddNumberToObject(o, "parts", r->parts);
    cJSON_AddNumberToObject(o, "parts_in_stream", r->parts_in_stream);
    return o;
}

static int run_one(struct backup *b, const char *trigger, struct backup_result *res, char *err,
                   size_t err_len)
{
    int rc = backup_take(b, res, err, err_len);
    if (rc < 0) {
        count_failure(b, res->reason, trigger, err);
        return rc;
    }
    int64_t now = (int64_t)time(NULL) * 1000;
    bool verify;
    pthread_mutex_lock(&b->mu);
    verify = !b->last_verify_ms || now - b->last_verify_ms >= (int64_t)b->cfg.verify_interval_ms;
    pthread_mutex_unlock(&b->mu);
    if (verify) {
        rc = backup_verify(b, res->name, res->object_size, res->object_sha256, err, err_len);
        if (rc < 0) {
            res->reason = rc == -EBADMSG ? R_MISMATCH : store_reason(rc);
            count_failure(b, res->reason, trigger, err);
            return rc;
        }
        atomic_fetch_add(&b->verified_total, 1);
        pthread_mutex_lock(&b->mu);
        b->last_verify_ms = now;
        pthread_mutex_unlock(&b->mu);
    }
    atomic_fetch_add(&b->ok_total, 1);
    atomic_store(&b->last_duration_ms, res->took_ms);
    atomic_store(&b->last_size, res->object_size);
    atomic_store(&b->last_success_s, (uint64_t)time(NULL));
    time_t t;
    int64_t rev;
    if (backup_name_parse(res->name, &t, &rev) == 0) {
        atomic_store(&b->last_good_ms, (int64_t)t * 1000);
        publish_state(b);
    }
    cJSON *f = result_json(res);
    cJSON_AddStringToObject(f, "trigger", trigger);
    cJSON_AddStringToObject(f, "store", b->url_log);
    cJSON_AddBoolToObject(f, "verified", verify);
    log_event(LOG_INFO, "backup uploaded", f);
    char cid[17];
    snprintf(cid, sizeof cid, "%016" PRIx64, res->cluster_id);
    prune(b, cid);
    return 0;
}

/* ---- schedule ------------------------------------------------------------------------------ */

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Healthy for a backup: answered and knows a leader; a NOSPACE alarm is no reason not to
 * back up (a snapshot is a read), any other error is. */
static bool healthy_for_backup(const struct cache_member *m)
{
    if (!m->answered || !m->status.leader)
        return false;
    for (size_t i = 0; i < m->status.n_errors && i < CACHE_MAX_STATUS_ERRORS; i++)
        if (!strstr(m->status.errors[i], "NOSPACE"))
            return false;
    return true;
}

/* The turn's inputs from the probe cache. False if the local member has not answered yet. */
static bool turn_inputs(struct backup *b, struct backup_turn_member *mem, size_t *n,
                        struct backup_turn_input *in, uint64_t *cluster_id)
{
    const struct cache_snapshot *s = cache_acquire(b->cfg.cache);
    bool ok = s->local.have_status && s->cluster.ok;
    if (ok) {
        *cluster_id = s->local.status.cluster_id;
        in->self = s->local.status.member_id;
        in->leader = s->local.status_ok ? s->local.status.leader : 0;
        *n = 0;
        for (size_t i = 0; i < s->cluster.n_members && i < CACHE_MAX_MEMBERS; i++) {
            const struct cache_member *m = &s->cluster.members[i];
            mem[(*n)++] = (struct backup_turn_member){.id = m->id,
                                                      .voter = !m->is_learner,
                                                      .healthy = healthy_for_backup(m),
                                                      .raft_index = m->status.raft_index};
        }
    }
    cache_release(b->cfg.cache, s);
    return ok;
}

static void *schedule_loop(void *arg)
{
    struct backup *b = arg;
    char err[512] = "";
    unsigned aborted = 0;
    int rc = store_abort_stale(b->store, "", time(NULL) - STORE_STALE_UPLOAD_S, &aborted, err,
                               sizeof err);
    if (rc < 0)
        log_msg(LOG_WARN, "backup: aborting stale uploads in %s: %s", b->url_log, err);
    else if (aborted)
        log_msg(LOG_INFO, "backup: aborted %u stale upload(s) in %s", aborted, b->url_log);

    uint64_t interval = b->cfg.interval_ms;
    uint64_t tick = clamp_u64(interval / 10, BACKUP_TICK_MIN_MS, BACKUP_TICK_MAX_MS);
    uint64_t grace = clamp_u64(interval / 4, BACKUP_GRACE_MIN_MS, BACKUP_GRACE_MAX_MS);
    int64_t retry_after = 0; /* mono ms: no attempt before this after a failure */
    enum backup_turn_verdict last_v = BACKUP_TURN_GO;
    int64_t due_since = -1; /* wall ms: when this agent saw the newest backup due */
    int last_list_rc = 0;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(tick / 1000);
        dl.tv_nsec += (long)(tick % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &dl) != ETIMEDOUT) {
        }
        if (b->stop)
            break;
        pthread_mutex_unlock(&b->mu);
        struct backup_turn_member mem[CACHE_MAX_MEMBERS];
        struct backup_turn_input in = {.members = mem,
                                       .max_lag = BACKUP_MAX_LAG,
                                       .start_ms = b->start_ms,
                                       .interval_ms = interval,
                                       .grace_ms = grace};
        uint64_t cid = 0;
        if (clock_mono_ms() >= retry_after && turn_inputs(b, mem, &in.n_members, &in, &cid)) {
            char cids[17];
            snprintf(cids, sizeof cids, "%016" PRIx64, cid);
            int lrc = 0;
            in.newest_ms = newest_backup_ms(b, cids, err, sizeof err, &lrc);
            in.now_ms = (int64_t)time(NULL) * 1000;
            if (lrc < 0) {
                if (lrc != last_list_rc)
                    count_failure(b, store_reason(lrc), "schedule", err);
                else
                    atomic_fetch_add(&b->failures[store_reason(lrc)], 1);
                last_list_rc = lrc;
                retry_after = clock_mono_ms() + (int64_t)grace;
            } else {
                last_list_rc = 0;
                if (in.newest_ms >= 0 && in.newest_ms > atomic_load(&b->last_good_ms)) {
                    atomic_store(&b->last_good_ms, in.newest_ms);
                    publish_state(b);
                }
                in.due_since_ms = due_since;
                in.due_since_ms = due_since = backup_turn_due_since(&in);
                int rank = -1;
                enum backup_turn_verdict v = backup_turn_decide(&in, &rank);
                if (v != last_v && v != BACKUP_TURN_NOT_DUE && v != BACKUP_TURN_GO)
                    log_msg(LOG_WARN, "backup: not taking the turn: %s",
                            backup_turn_verdict_str(v));
                last_v = v;
                if (v == BACKUP_TURN_GO && try_begin(b)) {
                    struct backup_result res;
                    log_msg(LOG_INFO, "backup: taking the turn (rank %d)", rank);
                    if (run_one(b, "schedule", &res, err, sizeof err) < 0)
                        retry_after = clock_mono_ms() + (int64_t)grace;
                    end_run(b);
                }
            }
        }
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- handle -------------------------------------------------------------------------------- */

struct backup *backup_new(const struct backup_config *cfg, char *err, size_t err_len)
{
    struct backup *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->start_ms = (int64_t)time(NULL) * 1000;
    if (cfg->n_recipients > AGE_MAX_RECIPIENTS) {
        snprintf(err, err_len, "more than %d backup recipients", AGE_MAX_RECIPIENTS);
        goto fail;
    }
    memcpy(b->recipients, cfg->recipients, cfg->n_recipients * sizeof *cfg->recipients);
    b->cfg.recipients = NULL;
    b->url = strdup(cfg->url);
    b->spool_dir = strdup(cfg->spool_dir && cfg->spool_dir[0] ? cfg->spool_dir : "/tmp");
    if (!b->url || !b->spool_dir) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    b->cfg.url = b->url;
    b->cfg.spool_dir = b->spool_dir;
    b->cfg.keep = NULL;
    backup_url_redact(cfg->url, b->url_log, sizeof b->url_log);
    if (cfg->keep && cfg->keep[0]) {
        if (retention_parse(cfg->keep, &b->policy, err, err_len) < 0)
            goto fail;
        b->have_policy = true;
    }
    if (!b->cfg.verify_interval_ms)
        b->cfg.verify_interval_ms = BACKUP_VERIFY_DEFAULT_MS;
    char e2[512];
    int rc = store_open(cfg->url, NULL, &b->store, e2, sizeof e2);
    if (rc < 0) {
        snprintf(err, err_len, "--backup-url %s: %s", b->url_log, e2);
        goto fail;
    }
    if (!cfg->n_recipients)
        log_msg(LOG_WARN,
                "backups to %s are NOT encrypted (no --backup-recipient): anyone who "
                "can read the store can read every key in etcd",
                b->url_log);
    publish_state(b);
    if (cfg->interval_ms) {
        if (pthread_create(&b->thread, NULL, schedule_loop, b) != 0) {
            snprintf(err, err_len, "cannot start the backup thread");
            goto fail;
        }
        b->thread_started = true;
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "store", b->url_log);
    cJSON_AddNumberToObject(f, "interval_ms", (double)cfg->interval_ms);
    cJSON_AddStringToObject(f, "compression", cfg->compress ? "zstd" : "none");
    cJSON_AddNumberToObject(f, "recipients", (double)cfg->n_recipients);
    char pol[128] = "all";
    if (b->have_policy)
        retention_policy_str(&b->policy, pol, sizeof pol);
    cJSON_AddStringToObject(f, "keep", pol);
    log_event(LOG_INFO, "backups configured", f);
    return b;
fail:
    backup_free(b);
    return NULL;
}

void backup_free(struct backup *b)
{
    if (!b)
        return;
    if (b->thread_started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    /* a request's worker thread may still run: the snapshot pool waits for it (bounded) */
    store_close(b->store);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b->url);
    free(b->spool_dir);
    free(b);
}

static int64_t last_good_age_ms(struct backup *b)
{
    int64_t t = b ? atomic_load(&b->last_good_ms) : 0;
    if (!t)
        return -1;
    int64_t now = (int64_t)time(NULL) * 1000;
    return now > t ? now - t : 0;
}

/* ---- routes -------------------------------------------------------------------------------- */

struct req {
    struct backup *b;
    struct snapjob *job;
    bool post;
};

static int on_manifest(void *arg, const void *buf, size_t len)
{
    struct {
        char *p;
        size_t n;
    } *m = arg;
    if (m->n + len > BACKUP_MAX_MANIFEST)
        return -EFBIG;
    memcpy(m->p + m->n, buf, len);
    m->n += len;
    return 0;
}

static void list_answer(struct backup *b, struct snapjob *job)
{
    struct listing l;
    struct bk *v = NULL;
    size_t n = 0;
    char err[512] = "";
    /* the local member's cluster (the one a restore under this prefix would take) */
    const struct cache_snapshot *cs = cache_acquire(b->cfg.cache);
    char cid[17];
    bool have_cid = cs->local.have_status;
    snprintf(cid, sizeof cid, "%016" PRIx64, cs->local.status.cluster_id);
    cache_release(b->cfg.cache, cs);
    int rc = list_backups(b, have_cid ? cid : NULL, &l, &v, &n, err, sizeof err);
    if (rc < 0) {
        snapjob_error(job, rc == -EACCES ? 502 : 503, err);
        free(l.e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "store", b->url_log);
    cJSON *arr = cJSON_AddArrayToObject(o, "backups");
    char *buf = malloc(BACKUP_MAX_MANIFEST);
    size_t shown = 0;
    for (size_t i = n; buf && i-- > 0 && shown < BACKUP_MAX_LISTED;) { /* newest first */
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", v[i].obj->name);
        cJSON_AddNumberToObject(e, "size", (double)v[i].obj->size);
        cJSON_AddBoolToObject(e, "complete", v[i].complete);
        if (v[i].complete) {
            struct {
                char *p;
                size_t n;
            } m = {buf, 0};
            char mname[STORE_MAX_NAME + 32];
            snprintf(mname, sizeof mname, "%s%s", v[i].obj->name, MANIFEST_SUFFIX);
            cJSON *mj = NULL;
            if (store_get(b->store, mname, on_manifest, &m, err, sizeof err) == 0 &&
                (mj = cJSON_ParseWithLength(m.p, m.n)) && cJSON_IsObject(mj))
                cJSON_AddItemToObject(e, "manifest", mj);
            else
                cJSON_Delete(mj);
        }
        cJSON_AddItemToArray(arr, e);
        shown++;
    }
    free(buf);
    int64_t age = last_good_age_ms(b);
    if (age >= 0)
        cJSON_AddNumberToObject(o, "last_good_age_s", (double)age / 1000.0);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s)
        snapjob_json(job, 200, s);
    else
        snapjob_error(job, 500, "out of memory");
    free(s);
    free(v);
    free(l.e);
}

static void *req_worker(void *arg)
{
    struct req *q = arg;
    struct backup *b = q->b;
    struct snapjob_pool *pool = b->cfg.snap->pool;
    if (q->post) {
        struct backup_result res;
        char err[512] = "";
        int rc = run_one(b, "request", &res, err, sizeof err);
        end_run(b);
        if (rc == 0) {
            cJSON *o = result_json(&res);
            char *s = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (s)
                snapjob_json(q->job, 200, s);
            else
                snapjob_error(q->job, 500, "out of memory");
            free(s);
        } else {
            int st = res.reason == R_ETCD ? 503 : res.reason == R_SPOOL ? 507 : 502;
            snapjob_error(q->job, st, err);
        }
    } else {
        list_answer(b, q->job);
    }
    snapjob_release(q->job);
    free(q);
    snapjob_thread_done(pool);
    return NULL;
}

static void route_backups(void *arg, const struct http_request *req, struct http_response *resp)
{
    struct backup *b = arg;
    struct snapctx *ctx = b->cfg.snap;
    if (!snapctx_access_ok(ctx, req, resp))
        return;
    bool post = strcmp(req->method, "POST") == 0;
    if (post && !try_begin(b)) {
        snapctx_reply_busy(ctx, resp, "backup");
        return;
    }
    struct snapjob *job = snapjob_new();
    struct req *q = calloc(1, sizeof *q);
    if (!job || !q) {
        free(q);
        if (job)
            snapjob_release(job);
        if (post)
            end_run(b);
        snapctx_reply_error(resp, 500, "out of memory");
        return;
    }
    *q = (struct req){.b = b, .job = job, .post = post};
    snapjob_hold(job);
    if (snapjob_thread_start(ctx->pool, req_worker, q) != 0) {
        snapjob_release(job);
        snapjob_release(job);
        free(q);
        if (post)
            end_run(b);
        snapctx_reply_error(resp, 500, "cannot start a worker");
        return;
    }
    snapjob_attach(job, resp);
}

static void gauge(struct metrics_writer *w, const char *name, const char *type, const char *help,
                  double v)
{
    metrics_family(w, name, type, help);
    metrics_sample(w, name, NULL, v);
}

static void backup_metrics(void *arg, struct metrics_writer *w)
{
    struct backup *b = arg;
    const char *n = "etcd_agent_backups_total";
    metrics_family(w, n, "counter", "Backups uploaded to --backup-url, by outcome.");
    const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "failed", NULL};
    metrics_sample(w, n, ok, (double)atomic_load(&b->ok_total));
    metrics_sample(w, n, failed, (double)atomic_load(&b->failed_total));
    n = "etcd_agent_backup_failures_total";
    metrics_family(w, n, "counter",
                   "Backup failures (and store errors of the schedule), by reason.");
    for (int i = 0; i < R_COUNT; i++) {
        const char *l[] = {"reason", reason_names[i], NULL};
        metrics_sample(w, n, l, (double)atomic_load(&b->failures[i]));
    }
    gauge(w, "etcd_agent_backup_uploaded_bytes_total", "counter",
          "Bytes uploaded to the backup store.", (double)atomic_load(&b->uploaded_bytes));
    gauge(w, "etcd_agent_backup_last_success_timestamp_seconds", "gauge",
          "When this agent's last backup succeeded (0: never).",
          (double)atomic_load(&b->last_success_s));
    gauge(w, "etcd_agent_backup_last_duration_seconds", "gauge",
          "Duration of this agent's last successful backup.",
          (double)atomic_load(&b->last_duration_ms) / 1000.0);
    gauge(w, "etcd_agent_backup_last_size_bytes", "gauge",
          "Object size of this agent's last successful backup.",
          (double)atomic_load(&b->last_size));
    int64_t age = last_good_age_ms(b);
    gauge(w, "etcd_agent_backup_last_good_age_seconds", "gauge",
          "Age of the newest good backup known (from the store or this agent; -1: none).",
          age < 0 ? -1.0 : (double)age / 1000.0);
    /* for the "last good backup too old" alert (manifests/monitoring): 2 x the interval */
    gauge(w, "etcd_agent_backup_interval_seconds", "gauge",
          "--backup-interval in seconds (0: only POST /backups).",
          (double)b->cfg.interval_ms / 1000.0);
    gauge(w, "etcd_agent_backup_running_seconds", "gauge",
          "Seconds since this agent's backup schedule started.",
          (double)((int64_t)time(NULL) * 1000 - b->start_ms) / 1000.0);
    gauge(w, "etcd_agent_backup_verified_total", "counter",
          "Backups downloaded and checked against their manifest.",
          (double)atomic_load(&b->verified_total));
    gauge(w, "etcd_agent_backup_pruned_total", "counter", "Backups deleted by --backup-keep.",
          (double)atomic_load(&b->pruned_total));
}

int backup_add_routes(struct backup *b, struct routes *r)
{
    b->route = (struct route){
        .path = "/backups", .methods = "GET, HEAD, POST", .fn = route_backups, .arg = b};
    int rc = routes_add(r, &b->route);
    if (rc < 0)
        return rc;
    b->metrics = (struct metrics_source){.fn = backup_metrics, .arg = b};
    return routes_add_metrics(r, &b->metrics);
}
