/* spool.c - bounded producer/consumer pipe: memory ring first, unlinked spill file when the
 * consumer falls behind (see spool.h for the contract).
 *
 * Byte positions are logical stream offsets. The ring holds [ring_lo, ring_hi). While
 * spilling, the file holds [file_base, committed) readable, up to `submitted` in flight, and
 * a staging block fills after that; the ring's bytes are older than the file's. The producer
 * goes back to memory when the consumer has read everything committed and no write is in
 * flight, so the file only holds the backlog. Both sides take `mu` briefly; file reads and
 * writes run outside it, and all of them on the producer's thread: the consumer (the event
 * loop) asks for a block of the file and the producer reads it back into `rbuf` between its
 * writes, or in spool_drain once it has finished. I/O backends are common/uring's. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "clock.h"
#include "uring.h"

#define SPOOL_NOTIFY_MIN (512u * 1024) /* wake a waiting consumer per this much (or at the end) */

struct spool_blk {
    uint8_t *buf;
    size_t len;   /* bytes staged or being written */
    uint64_t pos; /* logical offset of buf[0] */
    bool busy;    /* write in flight */
};

enum spool_rbuf {
    RBUF_EMPTY, /* holds nothing the consumer needs */
    RBUF_WANT,  /* the consumer asked for the block at rbuf_want (the producer reads it) */
    RBUF_FULL,  /* holds [rbuf_pos, rbuf_pos + rbuf_len): the consumer's until it moves on */
};

struct spool {
    pthread_mutex_t mu;
    pthread_cond_t space; /* ring space freed or cancelled (no-spill producers wait on it) */
    pthread_cond_t want;  /* a read-back asked for, everything read, or cancelled (drain) */
    struct spool_config cfg;
    char *dir;

    uint8_t *ring;
    size_t cap;
    uint64_t ring_lo, ring_hi; /* logical range held by the ring; ring_lo == read position */
    uint64_t resv_hi;          /* end of space reserved by spool_reserve (>= ring_hi when used) */

    /* spill state; only the producer changes the file layout */
    bool spilling;
    int fd;
    uint64_t file_base; /* logical offset stored at file offset 0 */
    uint64_t committed; /* logical end of data safely in the file */
    uint64_t submitted; /* logical end of data handed to writes */
    struct spool_blk blk[SNAPSHOT_SPOOL_QD];
    int stage; /* index of the staging block, -1 if none */
    unsigned in_flight;
    struct uring *wr; /* producer's ring */
    struct uring *rd; /* consumer's ring */
    int write_err;    /* first failed write (set in the reap callback) */

    uint64_t read_pos;
    uint8_t *rbuf;     /* read-back block from the file (producer fills, consumer copies) */
    uint64_t rbuf_pos; /* logical offset of rbuf[0] */
    size_t rbuf_len;
    enum spool_rbuf rbuf_state;
    uint64_t rbuf_want; /* with RBUF_WANT: the logical offset the consumer needs */
    bool finished, cancelled, reader_waiting;
    bool writer_waiting;   /* a producer waits for ring space */
    size_t writer_want;    /* ... for this much free space */
    int64_t stall_left_ns; /* what remains of cfg.stall_budget_ms */
    int error;             /* < 0 once failed */

    struct spool_stats st;
};

int spool_tmpfile(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    /* O_TMPFILE unsupported by this filesystem: classic create-and-unlink. */
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/.etcd-agent-spool.XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

struct spool *spool_new(const struct spool_config *cfg)
{
    struct spool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->cfg = *cfg;
    sp->cap = cfg->mem_bytes ? cfg->mem_bytes : SNAPSHOT_SPOOL_MEM;
    sp->dir = strdup(cfg->dir ? cfg->dir : "/tmp");
    sp->ring = malloc(sp->cap);
    sp->fd = -1;
    sp->stage = -1;
    sp->st.backend = "";
    if (!sp->dir || !sp->ring) {
        free(sp->dir);
        free(sp->ring);
        free(sp);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&sp->mu, NULL);
    pthread_cond_init(&sp->space, &ca);
    pthread_cond_init(&sp->want, &ca);
    pthread_condattr_destroy(&ca);
    sp->stall_left_ns = (int64_t)cfg->stall_budget_ms * 1000000;
    sp->cfg.dir = sp->dir;
    return sp;
}

void spool_free(struct spool *sp)
{
    if (!sp)
        return;
    for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++)
        free(sp->blk[i].buf);
    if (sp->wr)
        uring_free(sp->wr);
    if (sp->rd)
        uring_free(sp->rd);
    if (sp->fd >= 0)
        close(sp->fd);
    free(sp->rbuf);
    pthread_cond_destroy(&sp->want);
    pthread_cond_destroy(&sp->space);
    pthread_mutex_destroy(&sp->mu);
    free(sp->ring);
    free(sp->dir);
    free(sp);
}

/* Called with mu held; returns whether the consumer must be notified (outside the lock). */
static bool take_waiter(struct spool *sp)
{
    bool w = sp->reader_waiting;
    sp->reader_waiting = false;
    return w;
}

static void notify(struct spool *sp, bool waiter)
{
    if (waiter && sp->cfg.notify)
        sp->cfg.notify(sp->cfg.notify_arg);
}

static void ring_put(struct spool *sp, const uint8_t *data, size_t n)
{
    size_t at = (size_t)(sp->ring_hi % sp->cap);
    size_t first = sp->cap - at < n ? sp->cap - at : n;
    memcpy(sp->ring + at, data, first);
    memcpy(sp->ring, data + first, n - first);
    sp->ring_hi += n;
}

static void ring_get(struct spool *sp, uint8_t *out, size_t n)
{
    size_t at = (size_t)(sp->ring_lo % sp->cap);
    size_t first = sp->cap - at < n ? sp->cap - at : n;
    memcpy(out, sp->ring + at, first);
    memcpy(out + first, sp->ring, n - first);
    sp->ring_lo += n;
}

/* Free ring space: what neither holds data nor is reserved. */
static size_t ring_free(const struct spool *sp)
{
    uint64_t hi = sp->resv_hi > sp->ring_hi ? sp->resv_hi : sp->ring_hi;
    return sp->cap - (size_t)(hi - sp->ring_lo);
}

/* ---- producer: spill file ------------------------------------------------------------------ */

static void on_write_done(void *arg, uint64_t user_data, ssize_t result)
{
    struct spool *sp = arg;
    struct spool_blk *b = &sp->blk[user_data];
    if (result < 0 && sp->write_err == 0)
        sp->write_err = (int)result;
    b->busy = false;
    sp->in_flight--;
}

/* Lowest logical offset not yet on disk: the oldest busy block, else everything submitted. */
static uint64_t commit_point(const struct spool *sp)
{
    uint64_t c = sp->submitted;
    for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++)
        if (sp->blk[i].busy && sp->blk[i].pos < c)
            c = sp->blk[i].pos;
    return c;
}

/* Reap completions (waiting for at least min), then publish the new commit point. */
static int reap(struct spool *sp, unsigned min)
{
    if (sp->in_flight == 0)
        return 0;
    int r = uring_reap(sp->wr, min, on_write_done, sp);
    if (r < 0)
        return r;
    if (sp->write_err)
        return sp->write_err;
    pthread_mutex_lock(&sp->mu);
    uint64_t c = commit_point(sp);
    bool w = false;
    if (c > sp->committed) {
        sp->committed = c;
        w = take_waiter(sp);
    }
    pthread_mutex_unlock(&sp->mu);
    notify(sp, w);
    return 0;
}

static int start_spill(struct spool *sp)
{
    if (sp->fd < 0) {
        int fd = spool_tmpfile(sp->dir);
        if (fd < 0)
            return fd;
        sp->fd = fd;
    }
    if (!sp->wr) {
        sp->wr = uring_new(SNAPSHOT_SPOOL_QD, sp->cfg.no_io_uring);
        if (!sp->wr)
            return -ENOMEM;
        sp->st.backend = uring_backend_name(sp->wr);
    }
    for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++) {
        if (!sp->blk[i].buf) {
            void *p = NULL;
            if (posix_memalign(&p, 4096, SNAPSHOT_SPOOL_BLOCK) != 0)
                return -ENOMEM;
            sp->blk[i].buf = p;
        }
    }
    sp->st.spill_episodes++;
    return 0;
}

/* Submit the staging block; take a free one (waiting for a write if all are busy). */
static int submit_stage(struct spool *sp)
{
    struct spool_blk *b = &sp->blk[sp->stage];
    int r = uring_write_async(sp->wr, sp->fd, b->buf, b->len, (off_t)(b->pos - sp->file_base),
                              (uint64_t)sp->stage);
    if (r < 0)
        return r;
    b->busy = true;
    sp->in_flight++;
    pthread_mutex_lock(&sp->mu);
    sp->submitted = b->pos + b->len;
    uint64_t size = sp->submitted - sp->file_base;
    sp->st.spilled += b->len;
    if (size > sp->st.spill_peak)
        sp->st.spill_peak = size;
    pthread_mutex_unlock(&sp->mu);
    sp->stage = -1;
    return 0;
}

static int get_stage(struct spool *sp)
{
    while (sp->stage < 0) {
        for (int i = 0; i < SNAPSHOT_SPOOL_QD; i++) {
            if (!sp->blk[i].busy) {
                sp->stage = i;
                sp->blk[i].len = 0;
                sp->blk[i].pos = sp->submitted;
                return 0;
            }
        }
        int r = reap(sp, 1);
        if (r < 0)
            return r;
    }
    return 0;
}

/* If the consumer has read all the file holds and nothing is in flight, move the staged bytes
 * into the (then empty) ring and stop spilling. Producer only. */
static bool try_unspill(struct spool *sp)
{
    if (sp->in_flight)
        return false;
    bool back = false, w = false;
    size_t staged = sp->stage >= 0 ? sp->blk[sp->stage].len : 0;
    if (staged > sp->cap)
        return false;
    pthread_mutex_lock(&sp->mu);
    if (sp->read_pos == sp->committed && sp->ring_lo == sp->ring_hi) {
        sp->ring_lo = sp->ring_hi = sp->read_pos;
        if (staged) {
            ring_put(sp, sp->blk[sp->stage].buf, staged);
            w = take_waiter(sp);
        }
        sp->spilling = false;
        back = true;
    }
    pthread_mutex_unlock(&sp->mu);
    notify(sp, w);
    if (back) {
        sp->stage = -1;
        /* The backlog is gone: give the space back (best effort). */
        if (ftruncate(sp->fd, 0) != 0) {
            /* harmless: the next spill overwrites from offset 0 */
        }
    }
    return back;
}

static int fail_locked_return(struct spool *sp, int err)
{
    pthread_mutex_lock(&sp->mu);
    if (sp->error == 0)
        sp->error = err;
    bool w = take_waiter(sp);
    pthread_cond_broadcast(&sp->want);
    pthread_mutex_unlock(&sp->mu);
    notify(sp, w);
    return err;
}

/* With mu held: wait until the consumer has freed `want` bytes of the ring (it signals then),
 * an error or cancel wakes everyone, or the monotonic `deadline_ns` passes (0: no deadline).
 * Callers re-check the ring. */
static void wait_space(struct spool *sp, size_t want, int64_t deadline_ns)
{
    sp->writer_waiting = true;
    sp->writer_want = want;
    if (deadline_ns) {
        struct timespec ts = {.tv_sec = deadline_ns / 1000000000,
                              .tv_nsec = deadline_ns % 1000000000};
        pthread_cond_timedwait(&sp->space, &sp->mu, &ts);
    } else {
        pthread_cond_wait(&sp->space, &sp->mu);
    }
    sp->writer_waiting = false;
}

/* With mu held: wait for the consumer out of the stall budget. Returns false once the budget is
 * gone (the caller spills). */
static bool stall_wait(struct spool *sp)
{
    if (sp->stall_left_ns <= 0)
        return false;
    int64_t t0 = clock_mono_ns();
    wait_space(sp, sp->cap / 2, t0 + sp->stall_left_ns);
    int64_t waited = clock_mono_ns() - t0;
    sp->stall_left_ns -= waited;
    sp->st.stall_ns += (uint64_t)waited;
    return true;
}

/* Producer: read back the block the consumer asked for, if it asked. 0 or a read error (the
 * spool is failed then). */
static int serve_read(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    if (sp->rbuf_state != RBUF_WANT || sp->cancelled || sp->error) {
        pthread_mutex_unlock(&sp->mu);
        return 0;
    }
    uint64_t pos = sp->rbuf_want;
    /* [read_pos, committed) of the file is immutable until the consumer advances read_pos,
     * which it does not while it waits for this block. */
    size_t want = sp->committed - pos < SNAPSHOT_SPOOL_BLOCK ? (size_t)(sp->committed - pos)
                                                             : SNAPSHOT_SPOOL_BLOCK;
    off_t off = (off_t)(pos - sp->file_base);
    pthread_mutex_unlock(&sp->mu);
    if (!sp->rd && !(sp->rd = uring_new(2, sp->cfg.no_io_uring)))
        return fail_locked_return(sp, -ENOMEM);
    if (!sp->rbuf) {
        if (posix_memalign((void **)&sp->rbuf, 4096, SNAPSHOT_SPOOL_BLOCK) != 0) {
            sp->rbuf = NULL;
            return fail_locked_return(sp, -ENOMEM);
        }
        memset(sp->rbuf, 0, SNAPSHOT_SPOOL_BLOCK); /* once: valgrind cannot see io_uring fill it */
    }
    ssize_t got = uring_read(sp->rd, sp->fd, sp->rbuf, want, off);
    if (got == 0)
        got = -EIO; /* the file is shorter than what was committed */
    if (got < 0)
        return fail_locked_return(sp, (int)got);
    pthread_mutex_lock(&sp->mu);
    sp->rbuf_pos = pos;
    sp->rbuf_len = (size_t)got;
    sp->rbuf_state = RBUF_FULL;
    bool w = take_waiter(sp);
    pthread_mutex_unlock(&sp->mu);
    notify(sp, w);
    return 0;
}

int spool_serve(struct spool *sp)
{
    int r = sp->spilling ? reap(sp, 0) : 0;
    if (r < 0)
        return fail_locked_return(sp, r);
    return sp->fd >= 0 ? serve_read(sp) : 0;
}

int spool_drain(struct spool *sp)
{
    int rc = 0;
    pthread_mutex_lock(&sp->mu);
    for (;;) {
        if (sp->cancelled || sp->error) {
            rc = sp->cancelled ? -ECANCELED : sp->error;
            break;
        }
        if (sp->finished && sp->read_pos == sp->st.written && sp->ring_lo == sp->ring_hi)
            break; /* the consumer has everything */
        if (sp->rbuf_state == RBUF_WANT) {
            pthread_mutex_unlock(&sp->mu);
            spool_serve(sp); /* a failure is seen at the top of the loop */
            pthread_mutex_lock(&sp->mu);
            continue;
        }
        if (!sp->spilling || sp->fd < 0)
            break; /* the rest is in memory: no file to serve */
        pthread_cond_wait(&sp->want, &sp->mu);
    }
    pthread_mutex_unlock(&sp->mu);
    /* The file is the producer's to close: never on the consumer's (event-loop) thread. */
    if (sp->wr) {
        uring_free(sp->wr);
        sp->wr = NULL;
    }
    if (sp->rd) {
        uring_free(sp->rd);
        sp->rd = NULL;
    }
    if (sp->fd >= 0) {
        close(sp->fd);
        sp->fd = -1;
    }
    return rc;
}

int spool_write(struct spool *sp, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (sp->fd >= 0) {
        int r = serve_read(sp);
        if (r < 0)
            return r;
    }
    while (len > 0) {
        if (sp->spilling) {
            int r = reap(sp, 0);
            if (r < 0)
                return fail_locked_return(sp, r);
            if (try_unspill(sp))
                continue;
            pthread_mutex_lock(&sp->mu);
            bool cancelled = sp->cancelled;
            int err = sp->error;
            pthread_mutex_unlock(&sp->mu);
            if (cancelled)
                return -ECANCELED;
            if (err)
                return err;
            if ((r = get_stage(sp)) < 0)
                return fail_locked_return(sp, r);
            struct spool_blk *b = &sp->blk[sp->stage];
            size_t n = SNAPSHOT_SPOOL_BLOCK - b->len < len ? SNAPSHOT_SPOOL_BLOCK - b->len : len;
            memcpy(b->buf + b->len, p, n);
            b->len += n;
            p += n;
            len -= n;
            pthread_mutex_lock(&sp->mu);
            sp->st.written += n;
            pthread_mutex_unlock(&sp->mu);
            if (b->len == SNAPSHOT_SPOOL_BLOCK && (r = submit_stage(sp)) < 0)
                return fail_locked_return(sp, r);
            continue;
        }
        pthread_mutex_lock(&sp->mu);
        for (;;) {
            if (sp->cancelled || sp->error) {
                int err = sp->cancelled ? -ECANCELED : sp->error;
                pthread_mutex_unlock(&sp->mu);
                return err;
            }
            size_t room = sp->cap - (size_t)(sp->ring_hi - sp->ring_lo);
            /* Wait for a good share of the ring (or all we need) rather than for any byte: one
             * wakeup per half ring, not one per read of the consumer. With spilling, only while
             * the stall budget lasts. */
            if (room >= len || room >= sp->cap / 2)
                break;
            if (sp->cfg.spill && !stall_wait(sp))
                break;
            if (!sp->cfg.spill)
                wait_space(sp, len < sp->cap / 2 ? len : sp->cap / 2, 0);
        }
        size_t room = sp->cap - (size_t)(sp->ring_hi - sp->ring_lo);
        size_t n = room < len ? room : len;
        if (n)
            ring_put(sp, p, n);
        sp->st.written += n;
        p += n;
        len -= n;
        /* Wake a waiting consumer once a worthwhile amount is there: one event-loop wakeup
         * per SPOOL_NOTIFY_MIN, not per etcd message. The end and failures always wake. */
        bool w =
            sp->ring_hi - sp->ring_lo >= SPOOL_NOTIFY_MIN || sp->ring_hi - sp->ring_lo == sp->cap
                ? take_waiter(sp)
                : false;
        bool spill = len > 0 && sp->cfg.spill;
        if (spill) {
            sp->spilling = true;
            sp->file_base = sp->committed = sp->submitted = sp->ring_hi;
        }
        pthread_mutex_unlock(&sp->mu);
        notify(sp, w);
        if (spill) {
            int r = start_spill(sp);
            if (r < 0)
                return fail_locked_return(sp, r);
        }
    }
    return 0;
}

int spool_reserve(struct spool *sp, size_t len, bool wait, uint8_t **out)
{
    if (sp->cfg.spill || len == 0 || len > sp->cap)
        return -EINVAL;
    pthread_mutex_lock(&sp->mu);
    if (sp->resv_hi < sp->ring_hi)
        sp->resv_hi = sp->ring_hi;
    size_t at = (size_t)(sp->resv_hi % sp->cap);
    int rc = 0;
    if (sp->cap - at < len) {
        rc = -EINVAL; /* would wrap: callers use pieces that divide the ring */
        goto out;
    }
    for (;;) {
        if (sp->cancelled || sp->error) {
            rc = sp->cancelled ? -ECANCELED : sp->error;
            goto out;
        }
        if (ring_free(sp) >= len)
            break;
        if (!wait) {
            rc = -EAGAIN;
            goto out;
        }
        wait_space(sp, len, 0);
    }
    *out = sp->ring + at;
    sp->resv_hi += len;
out:
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int spool_commit(struct spool *sp, size_t len)
{
    pthread_mutex_lock(&sp->mu);
    if (sp->resv_hi < sp->ring_hi || len > sp->resv_hi - sp->ring_hi) {
        pthread_mutex_unlock(&sp->mu);
        return -EINVAL;
    }
    sp->ring_hi += len;
    sp->st.written += len;
    bool w = sp->ring_hi - sp->ring_lo >= SPOOL_NOTIFY_MIN || sp->ring_hi == sp->resv_hi
                 ? take_waiter(sp)
                 : false;
    pthread_mutex_unlock(&sp->mu);
    notify(sp, w);
    return 0;
}

int spool_finish(struct spool *sp)
{
    int r = 0;
    if (sp->spilling) {
        if (sp->stage >= 0 && sp->blk[sp->stage].len > 0)
            r = submit_stage(sp);
        while (r == 0 && sp->in_flight > 0)
            r = reap(sp, sp->in_flight);
        if (r < 0)
            return fail_locked_return(sp, r);
    }
    pthread_mutex_lock(&sp->mu);
    r = sp->error ? sp->error : sp->cancelled ? -ECANCELED : 0;
    sp->finished = true;
    bool w = take_waiter(sp);
    pthread_mutex_unlock(&sp->mu);
    notify(sp, w);
    return r;
}

void spool_fail(struct spool *sp, int err)
{
    /* Writes still in flight are drained so their buffers are not freed under the kernel. */
    while (sp->in_flight > 0 && uring_reap(sp->wr, sp->in_flight, on_write_done, sp) >= 0) {
    }
    fail_locked_return(sp, err < 0 ? err : -EIO);
}

/* ---- consumer ------------------------------------------------------------------------------ */

ssize_t spool_read(struct spool *sp, uint8_t *buf, size_t len)
{
    if (len == 0)
        return -EINVAL;
    pthread_mutex_lock(&sp->mu);
    if (sp->error) {
        int err = sp->error;
        pthread_mutex_unlock(&sp->mu);
        return err;
    }
    if (sp->ring_lo < sp->ring_hi) {
        size_t n = (size_t)(sp->ring_hi - sp->ring_lo);
        if (n > len)
            n = len;
        ring_get(sp, buf, n);
        sp->read_pos = sp->ring_lo;
        sp->st.read += n;
        if (sp->writer_waiting && ring_free(sp) >= sp->writer_want) {
            sp->writer_waiting = false;
            pthread_cond_signal(&sp->space);
        }
        if (sp->finished && sp->read_pos == sp->st.written)
            pthread_cond_signal(&sp->want); /* the drain is over */
        pthread_mutex_unlock(&sp->mu);
        return (ssize_t)n;
    }
    if (sp->spilling && sp->read_pos < sp->committed) {
        /* Serve from the read-back block; when it does not hold read_pos, ask the producer
         * for one large read (the event loop never touches the file) and wait for it. */
        uint64_t pos = sp->read_pos;
        if (!(sp->rbuf_state == RBUF_FULL && pos >= sp->rbuf_pos &&
              pos < sp->rbuf_pos + sp->rbuf_len)) {
            if (sp->rbuf_state != RBUF_WANT) {
                sp->rbuf_state = RBUF_WANT;
                sp->rbuf_want = pos;
                pthread_cond_signal(&sp->want);
            }
            sp->reader_waiting = true;
            pthread_mutex_unlock(&sp->mu);
            return -EAGAIN;
        }
        pthread_mutex_unlock(&sp->mu);
        /* RBUF_FULL: the producer leaves rbuf alone until this side asks again. */
        size_t have = (size_t)(sp->rbuf_pos + sp->rbuf_len - pos);
        ssize_t r = (ssize_t)(have < len ? have : len);
        memcpy(buf, sp->rbuf + (pos - sp->rbuf_pos), (size_t)r);
        pthread_mutex_lock(&sp->mu);
        sp->read_pos += (uint64_t)r;
        sp->ring_lo = sp->ring_hi = sp->read_pos > sp->ring_hi ? sp->read_pos : sp->ring_hi;
        sp->st.read += (uint64_t)r;
        if (sp->finished && sp->read_pos == sp->st.written)
            pthread_cond_signal(&sp->want); /* the drain is over */
        pthread_mutex_unlock(&sp->mu);
        return r;
    }
    if (sp->finished && sp->read_pos == sp->st.written) {
        pthread_cond_signal(&sp->want); /* the drain is over */
        pthread_mutex_unlock(&sp->mu);
        return 0;
    }
    sp->reader_waiting = true;
    pthread_mutex_unlock(&sp->mu);
    return -EAGAIN;
}

void spool_cancel(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    sp->cancelled = true;
    pthread_cond_broadcast(&sp->space);
    pthread_cond_broadcast(&sp->want);
    pthread_mutex_unlock(&sp->mu);
}

void spool_get_stats(struct spool *sp, struct spool_stats *out)
{
    pthread_mutex_lock(&sp->mu);
    *out = sp->st;
    pthread_mutex_unlock(&sp->mu);
}
