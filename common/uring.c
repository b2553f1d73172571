/* uring.c - file reads, writes and fsync through io_uring (liburing), with the same calls done
 * synchronously by pread/pwrite/fsync when io_uring cannot be set up or is disabled. Opening
 * files, choosing block sizes and logging which backend is active are the callers' part. */
#include "uring.h"

#include <errno.h>
#include <liburing.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"

enum req_state { REQ_FREE = 0, REQ_INFLIGHT, REQ_DONE };
enum req_op { OP_WRITE, OP_READ, OP_FSYNC };

struct uring_req {
    enum req_state state;
    enum req_op op;
    int fd;
    const char *wbuf;
    char *rbuf;
    size_t len;  /* whole request */
    size_t done; /* bytes already transferred (short transfers resubmit the rest) */
    off_t offset;
    uint64_t user_data;
    ssize_t result;
};

struct uring {
    struct io_uring ring;
    bool ring_ok;     /* the ring exists: drain what is in flight, exit it at the end */
    bool use_ring;    /* new requests go to the ring (false after a failed submit, see there) */
    unsigned depth;   /* async slots: reqs[0..depth-1]; reqs[depth] is for the waiting calls */
    unsigned pending; /* async requests not yet handed back by uring_reap */
    struct uring_req *reqs;
    unsigned *doneq; /* finished async slots, in completion order (ring buffer of depth) */
    unsigned dq_head, dq_len;
    char reason[URING_REASON_LEN];
};

/* ---- setup ------------------------------------------------------------------------------ */

static bool probe_ops(struct io_uring *ring)
{
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    bool ok;

    if (p == NULL)
        return false;
    ok = io_uring_opcode_supported(p, IORING_OP_READ) &&
         io_uring_opcode_supported(p, IORING_OP_WRITE) &&
         io_uring_opcode_supported(p, IORING_OP_FSYNC);
    io_uring_free_probe(p);
    return ok;
}

struct uring *uring_new(unsigned queue_depth, bool disable)
{
    struct uring *u = calloc(1, sizeof *u);
    int rc;

    if (u == NULL)
        return NULL;
    if (queue_depth == 0)
        queue_depth = 1;
    if (queue_depth > URING_MAX_DEPTH)
        queue_depth = URING_MAX_DEPTH;
    u->depth = queue_depth;
    u->reqs = calloc(queue_depth + 1, sizeof *u->reqs);
    u->doneq = calloc(queue_depth, sizeof *u->doneq);
    if (u->reqs == NULL || u->doneq == NULL) {
        free(u->reqs);
        free(u->doneq);
        free(u);
        return NULL;
    }
    if (disable) {
        snprintf(u->reason, sizeof u->reason, "disabled by configuration");
        return u;
    }
    /* One SQ entry per slot: every request is submitted as soon as it is prepared, so the SQ
     * never fills; the CQ (twice the SQ) cannot overflow either. */
    rc = io_uring_queue_init(queue_depth + 1, &u->ring, 0);
    if (rc < 0) {
        /* EPERM/ENOSYS under seccomp, ENOMEM for locked memory on old kernels, ... */
        snprintf(u->reason, sizeof u->reason, "io_uring_queue_init: %s", strerror(-rc));
        return u;
    }
    if (!probe_ops(&u->ring)) {
        io_uring_queue_exit(&u->ring);
        snprintf(u->reason, sizeof u->reason, "io_uring: kernel lacks read/write/fsync ops");
        return u;
    }
    u->ring_ok = true;
    u->use_ring = true;
    return u;
}

const char *uring_backend_name(const struct uring *u)
{
    return u != NULL && u->use_ring ? "io_uring" : "syscalls";
}

bool uring_is_io_uring(const struct uring *u)
{
    return u != NULL && u->use_ring;
}

const char *uring_fallback_reason(const struct uring *u)
{
    if (u == NULL)
        return "no uring";
    return u->use_ring ? "" : u->reason;
}

unsigned uring_pending(const struct uring *u)
{
    return u != NULL ? u->pending : 0;
}

/* ---- the syscall backend ---------------------------------------------------------------- */

static int sys_write_all(int fd, const char *buf, size_t len, off_t offset)
{
    while (len > 0) {
        size_t chunk = len < URING_MAX_IO ? len : URING_MAX_IO;
        ssize_t n = pwrite(fd, buf, chunk, offset);

        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            if (errno == EAGAIN)
                sched_yield(); /* only non-blocking fds; files never say EAGAIN */
            continue;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* would loop forever */
        buf += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

static ssize_t sys_read(int fd, char *buf, size_t len, off_t offset)
{
    size_t done = 0;

    while (done < len) {
        size_t chunk = len - done < URING_MAX_IO ? len - done : URING_MAX_IO;
        ssize_t n = pread(fd, buf + done, chunk, offset + (off_t)done);

        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            if (errno == EAGAIN)
                sched_yield();
            continue;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            break; /* end of file */
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int sys_fsync(int fd)
{
    while (fsync(fd) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* ---- the io_uring backend --------------------------------------------------------------- */

static void finish(struct uring *u, unsigned idx, ssize_t result)
{
    struct uring_req *r = &u->reqs[idx];

    r->state = REQ_DONE;
    r->result = result;
    if (idx < u->depth) {
        u->doneq[(u->dq_head + u->dq_len) % u->depth] = idx;
        u->dq_len++;
    }
}

static void drain_ready(struct uring *u);

/* Prepare and submit the (rest of the) request in slot idx; with wait_nr 1 the same syscall
 * also waits for a completion (the waiting calls save one io_uring_enter per request). */
/* Recursion submit -> drain -> resubmit of a short transfer: bounded by URING_SUBMIT_RETRIES
 * and the queue depth. */
// NOLINTNEXTLINE(misc-no-recursion)
static int submit_req(struct uring *u, unsigned idx, unsigned wait_nr)
{
    struct uring_req *r = &u->reqs[idx];
    size_t rest = r->len - r->done, chunk = rest < URING_MAX_IO ? rest : URING_MAX_IO;
    struct io_uring_sqe *sqe;
    int rc;

    /* After a failed submit (below) nothing may be submitted again, resubmissions included. */
    if (!u->use_ring)
        return -EIO;
    sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL) {
        /* Cannot happen with one SQ entry per slot; flush and retry once all the same. */
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
        if (sqe == NULL)
            return -EBUSY;
    }
    switch (r->op) {
    case OP_WRITE:
        io_uring_prep_write(sqe, r->fd, r->wbuf + r->done, (unsigned)chunk,
                            (uint64_t)(r->offset + (off_t)r->done));
        break;
    case OP_READ:
        io_uring_prep_read(sqe, r->fd, r->rbuf + r->done, (unsigned)chunk,
                           (uint64_t)(r->offset + (off_t)r->done));
        break;
    case OP_FSYNC:
        io_uring_prep_fsync(sqe, r->fd, 0);
        break;
    }
    io_uring_sqe_set_data(sqe, (void *)(uintptr_t)idx);
    r->state = REQ_INFLIGHT;
    for (int tries = 0;; tries++) {
        rc = wait_nr > 0 ? io_uring_submit_and_wait(&u->ring, wait_nr) : io_uring_submit(&u->ring);
        if (rc >= 0)
            return 0;
        /* io_uring_enter reports the count when it submitted anything, even if the wait was
         * interrupted: -EINTR means nothing went out yet. */
        if (rc == -EINTR)
            continue;
        if ((rc == -EAGAIN || rc == -EBUSY) && tries < URING_SUBMIT_RETRIES) {
            /* The kernel wants completions consumed first. */
            drain_ready(u);
            sched_yield();
            continue;
        }
        /* The SQE stays queued and would go out with the next submit, pointing at a buffer
         * its caller no longer expects to be used: never submit again. What is already in
         * flight still completes; new requests take the syscall path. */
        u->use_ring = false;
        snprintf(u->reason, sizeof u->reason, "io_uring_submit: %s", strerror(-rc));
        return rc;
    }
}

/* Recursion submit -> drain -> resubmit of a short transfer: bounded by URING_SUBMIT_RETRIES
 * and the queue depth. */
// NOLINTNEXTLINE(misc-no-recursion)
static void process_cqe(struct uring *u, struct io_uring_cqe *cqe)
{
    unsigned idx = (unsigned)(uintptr_t)io_uring_cqe_get_data(cqe);
    int res = cqe->res;
    struct uring_req *r;
    int rc;

    io_uring_cqe_seen(&u->ring, cqe);
    if (idx > u->depth || u->reqs[idx].state != REQ_INFLIGHT)
        return;
    r = &u->reqs[idx];
    if (res == -EINTR || res == -EAGAIN) {
        rc = submit_req(u, idx, 0);
        if (rc < 0)
            finish(u, idx, rc);
        return;
    }
    if (res < 0) {
        finish(u, idx, res);
        return;
    }
    if (r->op == OP_FSYNC) {
        finish(u, idx, 0);
        return;
    }
    if (res == 0) {
        /* A read of 0 is end of file; a write of 0 would never progress. */
        finish(u, idx, r->op == OP_READ ? (ssize_t)r->done : -EIO);
        return;
    }
    r->done += (size_t)res;
    if (r->done < r->len) {
        rc = submit_req(u, idx, 0);
        if (rc < 0)
            finish(u, idx, rc);
        return;
    }
    finish(u, idx, (ssize_t)r->done);
}

/* Recursion submit -> drain -> resubmit of a short transfer: bounded by URING_SUBMIT_RETRIES
 * and the queue depth. */
// NOLINTNEXTLINE(misc-no-recursion)
static void drain_ready(struct uring *u)
{
    struct io_uring_cqe *cqe;

    while (io_uring_peek_cqe(&u->ring, &cqe) == 0 && cqe != NULL)
        process_cqe(u, cqe);
}

static int wait_one(struct uring *u)
{
    struct io_uring_cqe *cqe;
    int rc;

    do {
        rc = io_uring_wait_cqe(&u->ring, &cqe);
    } while (rc == -EINTR || rc == -EAGAIN);
    if (rc < 0) {
        /* The ring itself failed: take the syscall path from now on. */
        u->use_ring = false;
        snprintf(u->reason, sizeof u->reason, "io_uring_wait_cqe: %s", strerror(-rc));
        return rc;
    }
    process_cqe(u, cqe);
    return 0;
}

static bool any_inflight(const struct uring *u)
{
    for (unsigned i = 0; i <= u->depth; i++) {
        if (u->reqs[i].state == REQ_INFLIGHT)
            return true;
    }
    return false;
}

/* Run one request in the waiting slot and wait for it; other completions that arrive
 * meanwhile are queued for uring_reap. */
static ssize_t ring_run(struct uring *u, enum req_op op, int fd, const void *wbuf, void *rbuf,
                        size_t len, off_t offset)
{
    struct uring_req *r = &u->reqs[u->depth];
    ssize_t result;
    int rc;

    if (!u->use_ring)
        return -EIO; /* not reached: callers check use_ring */
    *r = (struct uring_req){
        .op = op, .fd = fd, .wbuf = wbuf, .rbuf = rbuf, .len = len, .offset = offset};
    rc = submit_req(u, u->depth, 1);
    if (rc < 0) {
        r->state = REQ_FREE;
        return rc;
    }
    drain_ready(u);
    while (r->state != REQ_DONE) {
        rc = wait_one(u);
        if (rc < 0)
            return rc; /* the ring itself failed: nothing sensible left to wait for */
    }
    result = r->result;
    r->state = REQ_FREE;
    return result;
}

/* ---- the API ---------------------------------------------------------------------------- */

ssize_t uring_read(struct uring *u, int fd, void *buf, size_t len, off_t offset)
{
    if (u == NULL || offset < 0 || (buf == NULL && len > 0) || len > (size_t)PTRDIFF_MAX)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (!u->use_ring)
        return sys_read(fd, buf, len, offset);
    return ring_run(u, OP_READ, fd, NULL, buf, len, offset);
}

int uring_fsync(struct uring *u, int fd)
{
    if (u == NULL)
        return -EINVAL;
    if (!u->use_ring)
        return sys_fsync(fd);
    return (int)ring_run(u, OP_FSYNC, fd, NULL, NULL, 0, 0);
}

/* Queue a write (wbuf) or read (rbuf) in a free async slot. */
static int queue_async(struct uring *u, enum req_op op, int fd, const void *wbuf, void *rbuf,
                       size_t len, off_t offset, uint64_t user_data)
{
    struct uring_req *r = NULL;
    unsigned idx;
    int rc;

    if (u == NULL || offset < 0 || (wbuf == NULL && rbuf == NULL && len > 0) ||
        len > (size_t)PTRDIFF_MAX)
        return -EINVAL;
    if (u->pending >= u->depth)
        return -EBUSY;
    for (idx = 0; idx < u->depth; idx++) {
        if (u->reqs[idx].state == REQ_FREE) {
            r = &u->reqs[idx];
            break;
        }
    }
    if (r == NULL)
        return -EBUSY;
    *r = (struct uring_req){.op = op,
                            .fd = fd,
                            .wbuf = wbuf,
                            .rbuf = rbuf,
                            .len = len,
                            .offset = offset,
                            .user_data = user_data};
    u->pending++;
    if (!u->use_ring || len == 0) {
        /* Done now; uring_reap hands the result back like a completion. */
        ssize_t res = 0;
        if (!u->use_ring && len > 0)
            res = op == OP_READ ? sys_read(fd, rbuf, len, offset)
                                : sys_write_all(fd, wbuf, len, offset);
        finish(u, idx, res < 0 ? res : op == OP_READ ? res : (ssize_t)len);
        return 0;
    }
    rc = submit_req(u, idx, 0);
    if (rc < 0) {
        u->pending--;
        r->state = REQ_FREE;
        return rc;
    }
    return 0;
}

int uring_write_async(struct uring *u, int fd, const void *buf, size_t len, off_t offset,
                      uint64_t user_data)
{
    if (buf == NULL && len > 0)
        return -EINVAL;
    return queue_async(u, OP_WRITE, fd, buf, NULL, len, offset, user_data);
}

int uring_read_async(struct uring *u, int fd, void *buf, size_t len, off_t offset,
                     uint64_t user_data)
{
    if (buf == NULL && len > 0)
        return -EINVAL;
    return queue_async(u, OP_READ, fd, NULL, buf, len, offset, user_data);
}

int uring_reap(struct uring *u, unsigned min_complete,
               void (*done)(void *arg, uint64_t user_data, ssize_t result), void *arg)
{
    int reaped = 0;

    if (u == NULL)
        return -EINVAL;
    if (min_complete > u->pending)
        min_complete = u->pending; /* never wait for what was not asked for */
    for (;;) {
        unsigned k;

        if (u->ring_ok)
            drain_ready(u);
        /* Only what is finished now: a callback may queue (and, in the syscall backend,
         * finish) more, which the next call hands back. */
        for (k = u->dq_len; k > 0; k--) {
            unsigned idx = u->doneq[u->dq_head];
            struct uring_req *r = &u->reqs[idx];
            uint64_t ud = r->user_data;
            ssize_t res = r->result;

            u->dq_head = (u->dq_head + 1) % u->depth;
            u->dq_len--;
            r->state = REQ_FREE;
            u->pending--;
            reaped++;
            if (done != NULL)
                done(arg, ud, res);
        }
        if ((unsigned)reaped >= min_complete)
            return reaped;
        {
            int rc = any_inflight(u) ? wait_one(u) : -EIO;

            if (rc < 0)
                return reaped > 0 ? reaped : rc;
        }
    }
}

void uring_free(struct uring *u)
{
    if (u == NULL)
        return;
    if (u->ring_ok) {
        /* The kernel may still read from callers' buffers: wait for everything in flight
         * (results are dropped) before tearing the ring down. */
        while (any_inflight(u) && wait_one(u) == 0)
            ;
        io_uring_queue_exit(&u->ring);
    }
    free(u->reqs);
    free(u->doneq);
    free(u);
}
