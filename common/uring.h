/* uring.h - file reads and writes through io_uring, with a plain pread/pwrite fallback.
 *
 * One small API: open a handle, submit reads/writes at offsets, keep several in flight, wait.
 * The io_uring backend is used when io_uring_queue_init succeeds; under a seccomp profile
 * that forbids it (EPERM/ENOSYS, Docker's and containerd's defaults) or when disabled, the same
 * calls run synchronously with pread/pwrite. Which backend is active is logged once by the
 * caller and exposed as uring_backend_name(). Short reads/writes are resubmitted for the rest;
 * a read of 0 bytes is end of file. */
#ifndef ER_URING_H
#define ER_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct uring;

/* Not thread-safe: one thread uses a handle at a time.
 * queue_depth: in-flight requests (e.g. 8..64), clamped to [1, URING_MAX_DEPTH]; the waiting
 * calls below have one slot of their own, so they work while queue_depth writes are pending.
 * disable: force the fallback.
 * Never fails for lack of io_uring; NULL only on allocation failure. */
struct uring *uring_new(unsigned queue_depth, bool disable);
/* Waits for requests still in flight (their results are dropped), then frees. */
void uring_free(struct uring *u);
/* "io_uring" or "syscalls" */
const char *uring_backend_name(const struct uring *u);
bool uring_is_io_uring(const struct uring *u);
/* Reason io_uring was not used ("" if it is), e.g. "io_uring_queue_init: Operation not permitted"
 */
const char *uring_fallback_reason(const struct uring *u);

/* Read up to len bytes at offset; returns bytes read (0 at EOF) or negative errno. */
ssize_t uring_read(struct uring *u, int fd, void *buf, size_t len, off_t offset);

/* Pipelined sequential copy helpers built on the queue: */
/* Queue a write of buf (caller keeps it valid until completion is reaped); user_data comes
 * back from uring_reap. Returns 0 or negative errno (-EBUSY if queue_depth writes are
 * pending: reap first). */
int uring_write_async(struct uring *u, int fd, const void *buf, size_t len, off_t offset,
                      uint64_t user_data);
/* Queue a read of up to len bytes into buf (kept valid until reaped). Its result is the bytes
 * read: len, or fewer only at end of file (short reads are resubmitted for the rest), or a
 * negative errno. Completions may come back in any order. Returns 0 or negative errno (-EBUSY
 * when queue_depth requests are pending). */
int uring_read_async(struct uring *u, int fd, void *buf, size_t len, off_t offset,
                     uint64_t user_data);
/* Wait for at least min_complete completions (0: only those ready). For each finished request
 * calls done(arg, user_data, result) where result is the full length or a negative errno
 * (short writes are completed internally). Returns number reaped or negative errno. */
int uring_reap(struct uring *u, unsigned min_complete,
               void (*done)(void *arg, uint64_t user_data, ssize_t result), void *arg);
/* Requests queued by uring_write_async/uring_read_async and not yet handed back by uring_reap (in
 * flight or finished). */
unsigned uring_pending(const struct uring *u);
/* fsync through the ring (or fsync(2)). */
int uring_fsync(struct uring *u, int fd);

#endif
