/* disksource.c - streaming a file to a client from a reader thread (saved snapshots, and
 * GET /snapshot?source=disk: member/snap/db of a stopped etcd plus its sha256).
 *
 * The thread reads large blocks through common/uring into a spool that never spills (no etcd
 * transaction is held, so waiting for a slow client costs nothing but this thread), so the
 * event loop never touches the disk for the body. The lock and bbolt checks are datadir.c's;
 * access control and the job are snapshot.c's. */
#include "disksource.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bounds.h"
#include "datadir.h"
#include "log.h"
#include "spool.h"
#include "uring.h"

#define DISK_META_READ 4096 /* meta 0 sits in the first page whatever the page size */
#define DISK_PATH_MAX 4096

struct disksource {
    struct snapctx *ctx;
    atomic_uint streams; /* downloads running */
};

struct disksource *disksource_new(struct snapctx *ctx)
{
    struct disksource *ds = calloc(1, sizeof *ds);
    if (ds)
        ds->ctx = ctx;
    return ds;
}

void disksource_free(struct disksource *ds)
{
    free(ds); /* running downloads hold ctx, not ds: see filesrc */
}

struct filesrc {
    struct snapctx *ctx;
    atomic_uint *streams;
    struct snapjob *job;
    struct spool *spool;
    int fd;
    uint64_t offset, len;
    bool append_sha;
    char locked_dir[DISK_PATH_MAX]; /* "" when not checked */
    struct stat st0;
    int refs; /* worker + close hook; atomic below */
};

static void filesrc_unref(struct filesrc *f)
{
    if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    atomic_fetch_sub(f->streams, 1);
    free(f); /* the reader thread closed the file: never the event loop */
}

static void filesrc_on_close(void *arg, bool completed)
{
    struct filesrc *f = arg;
    snapctx_count_file(f->ctx, completed, completed ? f->len + (f->append_sha ? 32 : 0) : 0);
    filesrc_unref(f);
}

/* One block read in flight, straight into reserved spool memory. */
struct rd_slot {
    uint8_t *p;
    size_t len;
    ssize_t res;
    bool done;
};

static void on_read_done(void *arg, uint64_t user_data, ssize_t result)
{
    struct rd_slot *slots = arg;
    slots[user_data].res = result;
    slots[user_data].done = true;
}

/* Reads the range with up to SNAPSHOT_DISK_QD block reads in flight, each into ring space the
 * spool reserved for it (no copy between the file and the consumer's buffer), hashes the
 * blocks in order and hands them to the consumer. A block read shorter than asked means the
 * file shrank: the stream fails. */
static int read_blocks(struct filesrc *f, struct uring *u, EVP_MD_CTX *md)
{
    struct rd_slot slots[SNAPSHOT_DISK_QD] = {{0}};
    unsigned head = 0, count = 0;
    uint64_t next = 0; /* next offset to read, relative to f->offset */
    int rc = 0;
    while (next < f->len || count > 0) {
        /* Queue reads while there is ring space; wait for the consumer only with none in
         * flight (the ring may be full of reserved blocks that must complete first). */
        while (count < SNAPSHOT_DISK_QD && next < f->len) {
            struct rd_slot *s = &slots[(head + count) % SNAPSHOT_DISK_QD];
            size_t want = f->len - next < SNAPSHOT_SPOOL_BLOCK ? (size_t)(f->len - next)
                                                               : SNAPSHOT_SPOOL_BLOCK;
            rc = spool_reserve(f->spool, want, count == 0, &s->p);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                return rc;
            s->len = want;
            s->done = false;
            rc = uring_read_async(u, f->fd, s->p, want, (off_t)(f->offset + next),
                                  (head + count) % SNAPSHOT_DISK_QD);
            if (rc < 0)
                return rc; /* the reservation dies with the stream */
            next += want;
            count++;
        }
        struct rd_slot *h = &slots[head];
        while (!h->done) {
            rc = uring_reap(u, 1, on_read_done, slots);
            if (rc < 0)
                return rc;
        }
        /* Hand over every block that is done, in order. */
        while (count > 0 && slots[head].done) {
            h = &slots[head];
            if (h->res < 0)
                return (int)h->res;
            if ((size_t)h->res != h->len)
                return -ENODATA; /* the file shrank under us */
            if (md && EVP_DigestUpdate(md, h->p, h->len) != 1)
                return -EIO;
            if ((rc = spool_commit(f->spool, h->len)) < 0)
                return rc;
            h->done = false;
            head = (head + 1) % SNAPSHOT_DISK_QD;
            count--;
        }
    }
    return 0;
}

static int read_all(struct filesrc *f)
{
    int rc = 0;
    struct uring *u = uring_new(SNAPSHOT_DISK_QD, f->ctx->cfg.no_io_uring);
    EVP_MD_CTX *md = f->append_sha ? EVP_MD_CTX_new() : NULL;
    if (!u || (f->append_sha && (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = read_blocks(f, u, md)) < 0)
        goto out;
    if (f->locked_dir[0]) {
        /* etcd must not have started on the dir while we copied, nor the file changed. */
        struct stat st1;
        if (datadir_wal_locked(f->locked_dir) != 0 || fstat(f->fd, &st1) != 0 ||
            st1.st_size != f->st0.st_size || st1.st_mtim.tv_sec != f->st0.st_mtim.tv_sec ||
            st1.st_mtim.tv_nsec != f->st0.st_mtim.tv_nsec) {
            log_msg(LOG_ERROR, "disk snapshot aborted: %s changed or etcd started during the copy",
                    f->locked_dir);
            rc = -ESTALE;
            goto out;
        }
    }
    if (md) {
        uint8_t digest[32];
        unsigned dl = 0;
        if (EVP_DigestFinal_ex(md, digest, &dl) != 1 || dl != 32) {
            rc = -EIO;
            goto out;
        }
        if ((rc = spool_write(f->spool, digest, 32)) < 0)
            goto out;
        snapjob_trailer(f->job, digest);
    }
    rc = spool_finish(f->spool);
out:
    EVP_MD_CTX_free(md);
    if (u)
        uring_free(u); /* waits for reads still in flight into the spool's memory */
    return rc;
}

static void *filesrc_worker(void *arg)
{
    struct filesrc *f = arg;
    int rc = read_all(f);
    if (rc < 0) {
        if (rc != -ECANCELED)
            log_msg(LOG_ERROR, "file stream failed: %s", strerror(-rc));
        spool_fail(f->spool, rc);
    }
    close(f->fd);
    struct snapjob_pool *pool = f->ctx->pool;
    snapjob_release(f->job);
    filesrc_unref(f);
    snapjob_thread_done(pool);
    return NULL;
}

int disksource_stream_fd(struct disksource *ds, struct snapjob *job, int status, int fd,
                         uint64_t offset, uint64_t len, bool append_sha, const char *locked_dir)
{
    unsigned cur = atomic_load(&ds->streams);
    do {
        if (cur >= SNAPSHOT_MAX_FILE_STREAMS) {
            close(fd);
            return -EBUSY;
        }
    } while (!atomic_compare_exchange_weak(&ds->streams, &cur, cur + 1));

    struct filesrc *f = calloc(1, sizeof *f);
    struct spool *sp = NULL;
    struct spool_config sc = {
        .mem_bytes = SNAPSHOT_DISK_RING_BLOCKS * SNAPSHOT_SPOOL_BLOCK,
        .spill = false,
        .notify = snapjob_notify,
        .notify_arg = job,
    };
    if (!f || !(sp = spool_new(&sc)) || fstat(fd, &f->st0) != 0) {
        int e = f && sp ? -errno : -ENOMEM;
        spool_free(sp);
        free(f);
        close(fd);
        atomic_fetch_sub(&ds->streams, 1);
        return e;
    }
    snapjob_set_spool(job, sp); /* the job frees it */
    f->ctx = ds->ctx;
    f->streams = &ds->streams;
    f->job = job;
    f->spool = sp;
    f->fd = fd;
    f->offset = offset;
    f->len = len;
    f->append_sha = append_sha;
    f->refs = 2;
    if (locked_dir)
        snprintf(f->locked_dir, sizeof f->locked_dir, "%s", locked_dir);
    snapjob_on_close(job, filesrc_on_close, f);
    snapjob_hold(job); /* the reader's */
    if (snapjob_thread_start(ds->ctx->pool, filesrc_worker, f) != 0) {
        snapjob_on_close(job, NULL, NULL);
        snapjob_release(job);
        free(f);
        close(fd);
        atomic_fetch_sub(&ds->streams, 1);
        return -EAGAIN;
    }
    snapjob_ready(job, status, "application/octet-stream", (int64_t)(len + (append_sha ? 32 : 0)));
    return 0;
}

/* Both bbolt meta pages; bbolt itself opens a db when at least one is valid. Returns 0 or
 * -EBADMSG with why filled. */
static int check_metas(int fd, uint64_t size, struct bbolt_meta *use, char *why, size_t why_len)
{
    uint8_t buf[DISK_META_READ];
    struct bbolt_meta m0, m1;
    memset(&m0, 0, sizeof m0);
    memset(&m1, 0, sizeof m1);
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n < 0) {
        snprintf(why, why_len, "read member/snap/db: %s", strerror(errno));
        return -errno;
    }
    int r0 = datadir_bbolt_meta(buf, (size_t)n, &m0);
    /* meta 1 is one page further; the page size comes from meta 0 when it is valid, else try
     * the sizes bbolt uses in practice. */
    static const uint32_t sizes[] = {4096, 16384, 65536};
    int r1 = -EINVAL;
    for (size_t i = 0; i < 3 && r1 != 0; i++) {
        uint32_t ps = r0 == 0 ? m0.page_size : sizes[i];
        if (ps == 0 || ps > size)
            break;
        n = pread(fd, buf, sizeof buf, (off_t)ps);
        if (n > 0)
            r1 = datadir_bbolt_meta(buf, (size_t)n, &m1);
        if (r0 == 0)
            break;
    }
    if (r0 != 0 && r1 != 0) {
        snprintf(why, why_len, "member/snap/db: both bbolt meta pages are invalid");
        return -EBADMSG;
    }
    *use = r0 != 0 ? m1 : r1 != 0 ? m0 : (m1.txid > m0.txid ? m1 : m0);
    return 0;
}

struct disk_task {
    struct disksource *ds;
    bool head;
};

/* On a pool worker: the lock check, the open and the meta reads; then the reader thread. */
static void disk_task(struct snapjob *job, void *arg)
{
    struct disk_task *t = arg;
    struct disksource *ds = t->ds;
    bool head = t->head;
    free(t);
    const char *dd = ds->ctx->cfg.data_dir;
    char path[DISK_PATH_MAX], why[DISK_PATH_MAX + 128], v[32];
    int status = 409, fd = -1;
    struct stat st;
    struct bbolt_meta meta = {0};
    int locked = datadir_wal_locked(dd);
    if (locked != 0) {
        snprintf(why, sizeof why,
                 locked > 0 ? "etcd is running on %s (its WAL is locked): use GET /snapshot"
                            : "cannot check the WAL locks of %s",
                 dd);
    } else if (snprintf(path, sizeof path, "%s/member/snap/db", dd) >= (int)sizeof path) {
        status = 500;
        snprintf(why, sizeof why, "data dir path too long");
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
    } else if (check_metas(fd, (uint64_t)st.st_size, &meta, why, sizeof why) == 0) {
        status = 200;
    }
    if (!snapjob_fs_end(job) || status != 200) { /* timed out (answered 503), or failed */
        if (fd >= 0)
            close(fd);
        snapjob_error(job, status, why);
        return;
    }
    snprintf(v, sizeof v, "%" PRIu64, (uint64_t)st.st_size);
    snapjob_header(job, "x-etcd-snapshot-size", v);
    snprintf(v, sizeof v, "%" PRIu64, meta.txid);
    snapjob_header(job, "x-etcd-db-txid", v);
    snapjob_header(job, "x-etcd-snapshot-source", "disk");
    if (head) {
        close(fd);
        snapjob_ready(job, 200, "application/octet-stream", (int64_t)st.st_size + 32);
        return;
    }
    int r = disksource_stream_fd(ds, job, 200, fd, 0, (uint64_t)st.st_size, true, dd);
    if (r == -EBUSY)
        snapctx_job_busy(ds->ctx, job, "download");
    else if (r < 0)
        snapjob_error(job, 500, strerror(-r));
}

void disksource_handle(struct disksource *ds, const struct http_request *req,
                       struct http_response *resp)
{
    if (!ds->ctx->cfg.data_dir) {
        snapctx_reply_error(resp, 404, "source=disk needs --data-dir");
        return;
    }
    struct disk_task *t = calloc(1, sizeof *t);
    if (!t) {
        snapctx_reply_error(resp, 500, "out of memory");
        return;
    }
    t->ds = ds;
    t->head = strcmp(req->method, "HEAD") == 0;
    int r = snapjob_run(ds->ctx->pool, resp, disk_task, t);
    if (r < 0) {
        free(t);
        if (r == -EBUSY)
            snapctx_reply_pool_full(resp);
        else
            snapctx_reply_error(resp, 500, "out of memory");
    }
}
