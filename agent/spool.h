/* spool.h - a one-producer, one-consumer byte pipe with bounded memory: a fixed in-memory
 * ring, and (optionally) a spill file for when the consumer falls behind.
 *
 * The producer is a worker thread (etcd snapshot stream, file reader); the consumer is the
 * HTTP event loop (a body source's read()). With spilling on, spool_write never waits for the
 * consumer: once the ring is full, further bytes go to an unlinked temp file through
 * common/uring (aligned blocks, several writes in flight), the consumer reads the ring, then
 * the file, in order, and the spool returns to memory once the consumer has caught up. Every
 * file call is the producer's: the consumer asks for read-backs (spool_drain serves them once
 * the producer is done writing). With spilling off, spool_write waits for ring space (file
 * sources: no etcd transaction to free). HTTP glue, etcd and compression are the callers'.
 * Depends on common/uring and bounds.h only; used by snapjob.c, stream.c and disksource.c. */
#ifndef ER_SPOOL_H
#define ER_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spool;

struct spool_config {
    size_t mem_bytes; /* ring capacity; 0 -> SNAPSHOT_SPOOL_MEM */
    bool spill;       /* true: spill to a file in dir instead of waiting for the consumer */
    const char *dir;  /* spill directory (copied); NULL -> "/tmp" */
    bool no_io_uring; /* force the pread/pwrite backend */
    /* With spill: how long, in total over the stream, the producer may wait for the consumer to
     * free half the ring before it spills instead (a consumer that was only descheduled for
     * a moment costs no file round trip; a slow one delays the producer by at most this).
     * 0: spill as soon as the ring is full. */
    unsigned stall_budget_ms;
    /* Called from the producer's thread, with no spool lock held, when a consumer that got
     * -EAGAIN may now make progress (data, end, or failure). May be NULL. */
    void (*notify)(void *arg);
    void *notify_arg;
};

/* Returns NULL on allocation failure. The spill file is created only when first needed. */
struct spool *spool_new(const struct spool_config *cfg);
/* Frees everything; call once both sides are finished with it. */
void spool_free(struct spool *sp);

/* ---- producer ------------------------------------------------------------------------------ */
/* Append len bytes. 0 on success; -ECANCELED once the consumer called spool_cancel; a negative
 * errno from the spill file (-ENOSPC, -EIO, ...) after which the spool is failed. */
int spool_write(struct spool *sp, const void *data, size_t len);
/* Zero-copy production, spools without spilling only: reserve len bytes of ring space after
 * what is already reserved (the caller fills them, e.g. by an async file read), then commit
 * reservations in order. len must not wrap the ring: use pieces that divide mem_bytes (the last
 * one may be shorter). wait=false returns -EAGAIN instead of waiting for the consumer. Returns
 * 0, -EAGAIN, -ECANCELED, the spool's error, or -EINVAL. spool_write must not be called while
 * reservations are outstanding. */
int spool_reserve(struct spool *sp, size_t len, bool wait, uint8_t **out);
/* Hand the oldest len reserved bytes to the consumer. 0 or -EINVAL. */
int spool_commit(struct spool *sp, size_t len);
/* Publish spill writes that have completed and read back the block of the spill file the
 * consumer asked for, if any (spool_write does both anyway; a producer that plays both sides,
 * as the unit tests do, calls it). 0 or the spool's error. */
int spool_serve(struct spool *sp);
/* End of data: flushes the spill file; the consumer gets 0 after the last byte. 0 or -errno. */
int spool_finish(struct spool *sp);
/* Fail the stream now (err < 0): the consumer's next read returns err, data pending or not. */
void spool_fail(struct spool *sp, int err);
/* Last call of a producer that may have spilled (after spool_finish or spool_fail): reads the
 * spill file back for the consumer until it has every byte, cancelled, or the spool failed, then
 * closes the file, so that the consumer's thread never makes a file call. 0, -ECANCELED or the
 * spool's error. */
int spool_drain(struct spool *sp);

/* ---- consumer ------------------------------------------------------------------------------ */
/* Copy up to len bytes in order. Returns >0, 0 at the end, -EAGAIN when nothing is ready (the
 * notify callback fires when that changes), or the negative errno of a failure. */
ssize_t spool_read(struct spool *sp, uint8_t *buf, size_t len);
/* The consumer is gone: the producer's next spool_write returns -ECANCELED (a producer waiting
 * for ring space is woken). */
void spool_cancel(struct spool *sp);

struct spool_stats {
    uint64_t written;    /* bytes accepted from the producer */
    uint64_t read;       /* bytes handed to the consumer */
    uint64_t spilled;    /* bytes that went through the spill file */
    uint64_t spill_peak; /* largest spill file size */
    unsigned spill_episodes;
    uint64_t stall_ns;   /* time the producer waited for the consumer (stall budget) */
    const char *backend; /* "io_uring", "syscalls", or "" if the file was never used */
};
void spool_get_stats(struct spool *sp, struct spool_stats *out);

/* Open an unlinked read-write temp file in dir (O_TMPFILE, else mkstemp + unlink).
 * Returns the fd or a negative errno. Exposed for saved.c's tests and the spool's. */
int spool_tmpfile(const char *dir);

#endif
