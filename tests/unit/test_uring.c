/* test_uring.c - unit tests for common/uring.c, every test run twice: on the io_uring backend
 * (skipped with the reason when io_uring is unavailable here) and on the forced syscall
 * fallback. Round trips, EOF, offsets, short writes, errors (EBADF, EFBIG, ENOSPC on a tiny
 * tmpfs when mounting is allowed), queue accounting and reap callbacks; plus an informational
 * 200 MB copy timed against cp(1) (never pass/fail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "clock.h"
#include "uring.h"

#define MiB (1024u * 1024u)
#define KiB 1024u
#define TEST_ROUNDTRIP_BYTES (4 * MiB + 12345) /* not a multiple of the block */
#define TEST_ROUNDTRIP_BLOCK (128 * KiB)
#define TEST_DEPTH 8
#define TEST_BENCH_DEFAULT_MB 200
#define TEST_BENCH_BLOCK MiB

struct mode {
    const char *name;
    bool disable;
};

static struct mode mode_ring = {"io_uring", false};
static struct mode mode_sys = {"syscalls", true};

struct fixture {
    const struct mode *mode;
    struct uring *u;
    char dir[64];
    char mnt[96];
    bool mounted;
};

/* ---- fixture ---------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    f->mode = *state;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_uring.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    uring_free(f->u);
    if (f->mounted)
        umount2(f->mnt, MNT_DETACH);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* The handle for this run's backend; skips the io_uring half when it is unavailable. */
static struct uring *get_uring(struct fixture *f, unsigned depth)
{
    uring_free(f->u);
    f->u = uring_new(depth, f->mode->disable);
    assert_non_null(f->u);
    if (!f->mode->disable && !uring_is_io_uring(f->u)) {
        print_message("[  SKIP    ] io_uring unavailable here (%s); the syscall half still runs\n",
                      uring_fallback_reason(f->u));
        skip();
    }
    return f->u;
}

static int open_in(struct fixture *f, const char *dir, const char *name, int flags)
{
    char path[256];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir != NULL ? dir : f->dir, name);
    fd = open(path, flags | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    return fd;
}

static void fill_pattern(unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed | 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static double now_ms(void)
{
    return (double)clock_mono_ns() / 1e6;
}

/* ---- reap bookkeeping ------------------------------------------------------------------- */

struct reaped {
    unsigned n;
    uint64_t ud[64];
    ssize_t res[64];
};

static void on_done(void *arg, uint64_t user_data, ssize_t result)
{
    struct reaped *r = arg;

    assert_true(r->n < 64);
    r->ud[r->n] = user_data;
    r->res[r->n] = result;
    r->n++;
}

/* The production write path (agent/saved.c, agent/spool.c): one uring_write_async, reaped.
 * 0 when all len bytes landed, else the negative errno of the queueing or of the completion. */
#define WRITE_SYNC_UD 0x5ca1ab1eu

static void on_write_sync(void *arg, uint64_t user_data, ssize_t result)
{
    if (user_data == WRITE_SYNC_UD)
        *(ssize_t *)arg = result;
}

static int write_sync(struct uring *u, int fd, const void *buf, size_t len, off_t offset)
{
    ssize_t res = -EIO;
    int rc = uring_write_async(u, fd, buf, len, offset, WRITE_SYNC_UD);

    if (rc < 0)
        return rc;
    rc = uring_reap(u, 1, on_write_sync, &res);
    if (rc < 0)
        return rc;
    if (res < 0)
        return (int)res;
    return (size_t)res == len ? 0 : -EIO;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_backend(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);

    if (f->mode->disable) {
        assert_false(uring_is_io_uring(u));
        assert_string_equal(uring_backend_name(u), "syscalls");
        assert_string_equal(uring_fallback_reason(u), "disabled by configuration");
    } else {
        assert_true(uring_is_io_uring(u));
        assert_string_equal(uring_backend_name(u), "io_uring");
        assert_string_equal(uring_fallback_reason(u), "");
    }
    assert_int_equal(uring_pending(u), 0);
    /* depth is clamped, never refused */
    uring_free(uring_new(0, f->mode->disable));
    uring_free(uring_new(1000000, f->mode->disable));
    uring_free(NULL);
    assert_string_equal(uring_backend_name(NULL), "syscalls");
}

/* Pipelined write of `len` bytes in `block` pieces with at most `depth` in flight. */
static void write_pipelined(struct uring *u, int fd, const unsigned char *data, size_t len,
                            size_t block)
{
    struct reaped r = {0};
    size_t off = 0, completed = 0;

    while (off < len || uring_pending(u) > 0) {
        if (off < len && uring_pending(u) < TEST_DEPTH) {
            size_t n = len - off < block ? len - off : block;

            assert_int_equal(uring_write_async(u, fd, data + off, n, (off_t)off, n), 0);
            off += n;
            continue;
        }
        r.n = 0;
        assert_true(uring_reap(u, 1, on_done, &r) >= 1);
        for (unsigned i = 0; i < r.n; i++) {
            /* user_data is the length asked for: the result must be all of it */
            assert_int_equal(r.res[i], (ssize_t)r.ud[i]);
            completed += (size_t)r.res[i];
        }
    }
    assert_int_equal(completed, len);
}

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);
    /* back has room for a whole last block: the short read at EOF asks for all of it */
    unsigned char *data = malloc(TEST_ROUNDTRIP_BYTES);
    unsigned char *back = malloc(TEST_ROUNDTRIP_BYTES + TEST_ROUNDTRIP_BLOCK);
    int fd = open_in(f, NULL, "rt", O_RDWR | O_CREAT | O_TRUNC);
    struct stat st;
    size_t off;

    assert_non_null(data);
    assert_non_null(back);
    fill_pattern(data, TEST_ROUNDTRIP_BYTES, 7);
    write_pipelined(u, fd, data, TEST_ROUNDTRIP_BYTES, TEST_ROUNDTRIP_BLOCK);
    assert_int_equal(uring_fsync(u, fd), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, TEST_ROUNDTRIP_BYTES);

    /* block by block, the last one short */
    memset(back, 0xee, TEST_ROUNDTRIP_BYTES);
    for (off = 0; off < TEST_ROUNDTRIP_BYTES; off += TEST_ROUNDTRIP_BLOCK) {
        size_t want = TEST_ROUNDTRIP_BYTES - off < TEST_ROUNDTRIP_BLOCK ? TEST_ROUNDTRIP_BYTES - off
                                                                        : TEST_ROUNDTRIP_BLOCK;
        ssize_t n = uring_read(u, fd, back + off, TEST_ROUNDTRIP_BLOCK, (off_t)off);

        assert_int_equal(n, (ssize_t)want);
    }
    assert_memory_equal(data, back, TEST_ROUNDTRIP_BYTES);

    /* all at once */
    memset(back, 0xee, TEST_ROUNDTRIP_BYTES);
    assert_int_equal(uring_read(u, fd, back, TEST_ROUNDTRIP_BYTES, 0), TEST_ROUNDTRIP_BYTES);
    assert_memory_equal(data, back, TEST_ROUNDTRIP_BYTES);

    /* one whole-buffer write, reaped (write_sync), round trip too */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(write_sync(u, fd, data, TEST_ROUNDTRIP_BYTES, 0), 0);
    memset(back, 0xee, TEST_ROUNDTRIP_BYTES);
    assert_int_equal(uring_read(u, fd, back, TEST_ROUNDTRIP_BYTES, 0), TEST_ROUNDTRIP_BYTES);
    assert_memory_equal(data, back, TEST_ROUNDTRIP_BYTES);
    close(fd);
    free(data);
    free(back);
}

static void test_eof(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);
    int fd = open_in(f, NULL, "eof", O_RDWR | O_CREAT | O_TRUNC);
    char buf[4096];

    memset(buf, 0, sizeof buf);
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 0), 0); /* empty file */
    assert_int_equal(write_sync(u, fd, "0123456789", 10, 0), 0);
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 10), 0);   /* at EOF */
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 1000), 0); /* past EOF */
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 4), 6);    /* across EOF */
    assert_memory_equal(buf, "456789", 6);
    assert_int_equal(uring_read(u, fd, buf, 0, 0), 0); /* nothing asked */
    close(fd);
}

static void test_offsets(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);
    int fd = open_in(f, NULL, "off", O_RDWR | O_CREAT | O_TRUNC);
    char buf[64], want[64];
    struct reaped r = {0};

    memset(want, 'A', 32);
    assert_int_equal(write_sync(u, fd, want, 32, 0), 0);
    assert_int_equal(write_sync(u, fd, "BBBB", 4, 10), 0);
    /* out of order async writes, one past the end (leaves a hole of zeros) */
    assert_int_equal(uring_write_async(u, fd, "DD", 2, 40, 2), 0);
    assert_int_equal(uring_write_async(u, fd, "CC", 2, 30, 1), 0);
    assert_int_equal(uring_reap(u, 2, on_done, &r), 2);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.res[0], 2);
    assert_int_equal(r.res[1], 2);
    memcpy(want + 10, "BBBB", 4);
    memcpy(want + 30, "CC", 2);
    memset(want + 32, 0, 8);
    memcpy(want + 40, "DD", 2);
    memset(buf, 0x55, sizeof buf);
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 0), 42);
    assert_memory_equal(buf, want, 42);
    /* the file position is never used: a plain read still starts at 0 */
    assert_int_equal(read(fd, buf, 4), 4);
    assert_memory_equal(buf, "AAAA", 4);
    close(fd);
}

static void test_bad_args(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);
    char buf[8];

    assert_int_equal(write_sync(u, 1, buf, sizeof buf, -1), -EINVAL);
    assert_int_equal(uring_read(u, 0, buf, sizeof buf, -1), -EINVAL);
    assert_int_equal(uring_write_async(u, 1, buf, sizeof buf, -5, 0), -EINVAL);
    assert_int_equal(write_sync(u, 1, NULL, 1, 0), -EINVAL);
    assert_int_equal(write_sync(NULL, 1, buf, 1, 0), -EINVAL);
    assert_int_equal(uring_read(NULL, 0, buf, 1, 0), -EINVAL);
    assert_int_equal(uring_fsync(NULL, 0), -EINVAL);
    assert_int_equal(uring_reap(NULL, 0, NULL, NULL), -EINVAL);
    assert_int_equal(write_sync(u, -1, buf, 0, 0), 0); /* nothing to write */
    assert_int_equal(uring_pending(NULL), 0);
}

static void test_ebadf(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);
    int fd = open_in(f, NULL, "bad", O_RDWR | O_CREAT | O_TRUNC);
    int ro = open_in(f, NULL, "bad", O_RDONLY), wo = open_in(f, NULL, "bad", O_WRONLY);
    struct reaped r = {0};
    char buf[16] = "x";

    close(fd);
    assert_int_equal(write_sync(u, fd, buf, sizeof buf, 0), -EBADF);
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 0), -EBADF);
    assert_int_equal(uring_fsync(u, fd), -EBADF);
    assert_int_equal(write_sync(u, ro, buf, sizeof buf, 0), -EBADF);
    assert_int_equal(uring_read(u, wo, buf, sizeof buf, 0), -EBADF);
    /* async: the error comes back through reap, with its user_data */
    assert_int_equal(uring_write_async(u, fd, buf, sizeof buf, 0, 77), 0);
    assert_int_equal(uring_write_async(u, wo, buf, sizeof buf, 0, 78), 0);
    assert_int_equal(uring_pending(u), 2);
    assert_int_equal(uring_reap(u, 2, on_done, &r), 2);
    for (unsigned i = 0; i < r.n; i++)
        assert_int_equal(r.res[i], r.ud[i] == 77 ? -EBADF : (ssize_t)sizeof buf);
    assert_true(r.ud[0] + r.ud[1] == 77 + 78);
    assert_int_equal(uring_pending(u), 0);
    close(ro);
    close(wo);
}

/* A write crossing RLIMIT_FSIZE comes back short; the rest is resubmitted and fails EFBIG:
 * exercises both the short-write path and error propagation. In a child (limits, SIGXFSZ). */
static void test_short_write_then_efbig(void **state)
{
    struct fixture *f = *state;
    int fd = open_in(f, NULL, "fsize", O_RDWR | O_CREAT | O_TRUNC);
    pid_t pid;

    (void)get_uring(f, TEST_DEPTH); /* skips when io_uring is unavailable */
    int status;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {100000, 100000};
        static char buf[256 * 1024];
        struct stat st;
        int code = 0;
        /* Its own ring: a ring's memory is shared across fork, its liburing state is not. */
        struct uring *u = uring_new(TEST_DEPTH, f->mode->disable);

        if (u == NULL)
            _exit(9);
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(10);
        if (write_sync(u, fd, buf, sizeof buf, 0) != -EFBIG)
            code = 11;
        else if (fstat(fd, &st) != 0 || st.st_size != 100000)
            code = 12; /* the short part did land */
        else if (write_sync(u, fd, buf, 100000, 0) != 0)
            code = 13; /* below the limit everything works */
        uring_free(u);
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(fd);
}

static void test_enospc(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, TEST_DEPTH);
    unsigned char *big = calloc(1, 2 * MiB);
    struct reaped r = {0};
    int fd;

    assert_non_null(big);
    snprintf(f->mnt, sizeof f->mnt, "%s/mnt", f->dir);
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=1m") != 0) {
        print_message("[  SKIP    ] cannot mount a tmpfs here (%s): ENOSPC case not run\n",
                      strerror(errno));
        free(big);
        skip();
    }
    f->mounted = true;
    fd = open_in(f, f->mnt, "full", O_RDWR | O_CREAT | O_TRUNC);
    assert_int_equal(write_sync(u, fd, big, 2 * MiB, 0), -ENOSPC);
    assert_int_equal(uring_write_async(u, fd, big, 2 * MiB, 0, 5), 0);
    assert_int_equal(uring_reap(u, 1, on_done, &r), 1);
    assert_int_equal(r.res[0], -ENOSPC);
    assert_int_equal(r.ud[0], 5);
    /* the handle still works after the error */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(write_sync(u, fd, big, 4096, 0), 0);
    assert_int_equal(uring_fsync(u, fd), 0);
    close(fd);
    free(big);
}

static void test_pending_and_reap(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, 4);
    int fd = open_in(f, NULL, "pend", O_RDWR | O_CREAT | O_TRUNC);
    static char blocks[4][64 * 1024];
    struct reaped r = {0};
    char small[16] = "sync";
    int n;

    assert_int_equal(uring_reap(u, 0, on_done, &r), 0); /* nothing pending */
    assert_int_equal(uring_reap(u, 3, on_done, &r), 0); /* never waits for nothing */
    assert_int_equal(write_sync(u, fd, small, 4, 4 * sizeof(blocks[0])), 0);
    for (unsigned i = 0; i < 4; i++) {
        memset(blocks[i], 'a' + (int)i, sizeof blocks[i]);
        assert_int_equal(uring_write_async(u, fd, blocks[i], sizeof blocks[i],
                                           (off_t)(i * sizeof blocks[i]), 100 + i),
                         0);
        assert_int_equal(uring_pending(u), i + 1);
    }
    assert_int_equal(uring_write_async(u, fd, small, 1, 0, 999), -EBUSY);
    assert_int_equal(uring_pending(u), 4);
    /* the waiting calls have their own slot: they work with the queue full (the tail was
     * written through the same handle before the queue filled) */
    memset(small, 0, 4);
    assert_int_equal(uring_read(u, fd, small, 4, 4 * sizeof blocks[0]), 4);
    assert_memory_equal(small, "sync", 4);
    assert_int_equal(uring_fsync(u, fd), 0);
    assert_int_equal(uring_pending(u), 4); /* completions meanwhile are kept for reap */
    n = uring_reap(u, 0, on_done, &r);
    assert_true(n >= 0 && n <= 4);
    assert_int_equal(uring_pending(u), 4 - (unsigned)n);
    n += uring_reap(u, 10, on_done, &r); /* capped at what is pending */
    assert_int_equal(n, 4);
    assert_int_equal(r.n, 4);
    assert_int_equal(uring_pending(u), 0);
    for (unsigned i = 0; i < 4; i++) {
        unsigned seen = 0;

        for (unsigned k = 0; k < r.n; k++) {
            if (r.ud[k] == 100 + i) {
                seen++;
                assert_int_equal(r.res[k], sizeof blocks[0]);
            }
        }
        assert_int_equal(seen, 1);
    }
    /* the NULL callback is allowed */
    assert_int_equal(uring_write_async(u, fd, small, 1, 0, 1), 0);
    assert_int_equal(uring_reap(u, 1, NULL, NULL), 1);
    /* a zero-length async write completes with 0 */
    r.n = 0;
    assert_int_equal(uring_write_async(u, fd, small, 0, 0, 3), 0);
    assert_int_equal(uring_reap(u, 1, on_done, &r), 1);
    assert_int_equal(r.res[0], 0);
    close(fd);
}

/* Async reads with the queue full, across and past EOF, of an empty request, and out of
 * order: each result is the bytes read (short only at EOF). */
static void test_read_async(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, 4);
    int fd = open_in(f, NULL, "rasync", O_RDWR | O_CREAT | O_TRUNC);
    static char data[3 * 64 * 1024 + 100], got[4][64 * 1024];
    struct reaped r = {0};

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7 + 1);
    assert_int_equal(write_sync(u, fd, data, sizeof data, 0), 0);
    /* four 64 KiB blocks: three whole, the last one 100 bytes (EOF), queued in reverse */
    for (int i = 3; i >= 0; i--)
        assert_int_equal(uring_read_async(u, fd, got[i], sizeof got[i],
                                          (off_t)((size_t)i * sizeof got[0]), (uint64_t)i),
                         0);
    assert_int_equal(uring_read_async(u, fd, got[0], 1, 0, 9), -EBUSY); /* queue full */
    assert_int_equal(uring_reap(u, 4, on_done, &r), 4);
    assert_int_equal(r.n, 4);
    for (unsigned k = 0; k < r.n; k++) {
        size_t want = r.ud[k] == 3 ? 100 : sizeof got[0];
        assert_int_equal(r.res[k], (ssize_t)want);
        assert_memory_equal(got[r.ud[k]], data + r.ud[k] * sizeof got[0], want);
    }
    /* at and past EOF: 0 bytes; nothing asked: 0 */
    r.n = 0;
    assert_int_equal(uring_read_async(u, fd, got[0], 10, (off_t)sizeof data, 20), 0);
    assert_int_equal(uring_read_async(u, fd, got[1], 10, (off_t)sizeof data + 4096, 21), 0);
    assert_int_equal(uring_read_async(u, fd, got[2], 0, 0, 22), 0);
    assert_int_equal(uring_reap(u, 3, on_done, &r), 3);
    for (unsigned k = 0; k < r.n; k++)
        assert_int_equal(r.res[k], 0);
    /* bad arguments, and an error completion */
    assert_int_equal(uring_read_async(u, fd, NULL, 10, 0, 0), -EINVAL);
    assert_int_equal(uring_read_async(u, fd, got[0], 10, -1, 0), -EINVAL);
    r.n = 0;
    assert_int_equal(uring_read_async(u, -1, got[0], 10, 0, 30), 0);
    assert_int_equal(uring_reap(u, 1, on_done, &r), 1);
    assert_int_equal(r.res[0], -EBADF);
    close(fd);
}

/* A callback that queues the next write (the copy loop's shape). */
struct chain {
    struct uring *u;
    int fd;
    const char *buf;
    unsigned left, calls;
};

static void on_done_chain(void *arg, uint64_t user_data, ssize_t result)
{
    struct chain *c = arg;

    assert_int_equal(result, 1);
    c->calls++;
    if (c->left > 0) {
        c->left--;
        assert_int_equal(
            uring_write_async(c->u, c->fd, c->buf, 1, (off_t)user_data + 1, user_data + 1), 0);
    }
}

static void test_reap_callback_requeues(void **state)
{
    struct fixture *f = *state;
    struct uring *u = get_uring(f, 2);
    int fd = open_in(f, NULL, "chain", O_RDWR | O_CREAT | O_TRUNC);
    struct chain c = {u, fd, "z", 9, 0};
    char buf[16];
    int guard = 0;

    /* valgrind cannot see io_uring fill a buffer: start from known bytes */
    memset(buf, 0, sizeof buf);
    assert_int_equal(uring_write_async(u, fd, "z", 1, 0, 0), 0);
    while (uring_pending(u) > 0 && guard++ < 100)
        assert_true(uring_reap(u, 1, on_done_chain, &c) >= 1);
    assert_int_equal(c.calls, 10);
    assert_int_equal(uring_read(u, fd, buf, sizeof buf, 0), 10);
    assert_memory_equal(buf, "zzzzzzzzzz", 10);
    close(fd);
}

/* Like Docker's and containerd's default seccomp profiles: io_uring_setup fails with errno
 * `err`. In a child, since a filter cannot be removed. */
static int deny_io_uring(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {ARRAY_SIZE(filter), filter};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static int seccomp_child(const char *dir, int err, const char *want_reason)
{
    char path[256], buf[8] = {0};
    struct uring *u;
    int fd, code = 0;

    if (deny_io_uring(err) != 0)
        return 20;
    u = uring_new(4, false);
    if (u == NULL)
        return 21;
    snprintf(path, sizeof path, "%s/seccomp", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (uring_is_io_uring(u) || strcmp(uring_backend_name(u), "syscalls") != 0)
        code = 22;
    else if (strcmp(uring_fallback_reason(u), want_reason) != 0)
        code = 23;
    else if (fd < 0 || write_sync(u, fd, "seccomp", 7, 0) != 0 ||
             uring_read(u, fd, buf, sizeof buf, 0) != 7 || memcmp(buf, "seccomp", 7) != 0)
        code = 24;
    uring_free(u);
    if (fd >= 0)
        close(fd);
    return code;
}

static void test_fallback_under_seccomp(void **state)
{
    static const struct {
        int err;
        const char *reason;
    } cases[] = {{EPERM, "io_uring_queue_init: Operation not permitted"},
                 {ENOSYS, "io_uring_queue_init: Function not implemented"}};
    struct fixture *f = *state;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        pid_t pid = fork();
        int status;

        assert_true(pid >= 0);
        if (pid == 0)
            _exit(seccomp_child(f->dir, cases[i].err, cases[i].reason));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

/* ---- informational copy benchmark ------------------------------------------------------- */

static void copy_via_uring(struct uring *u, int in, int out, size_t size)
{
    static unsigned char bufs[TEST_DEPTH][TEST_BENCH_BLOCK];
    bool busy[TEST_DEPTH] = {false};
    struct reaped r;
    size_t off = 0;

    while (off < size || uring_pending(u) > 0) {
        unsigned slot = TEST_DEPTH;

        for (unsigned i = 0; i < TEST_DEPTH && off < size; i++) {
            if (!busy[i]) {
                slot = i;
                break;
            }
        }
        if (slot < TEST_DEPTH) {
            ssize_t n = uring_read(u, in, bufs[slot], TEST_BENCH_BLOCK, (off_t)off);

            assert_true(n > 0);
            assert_int_equal(uring_write_async(u, out, bufs[slot], (size_t)n, (off_t)off, slot), 0);
            busy[slot] = true;
            off += (size_t)n;
            continue;
        }
        r.n = 0;
        assert_true(uring_reap(u, 1, on_done, &r) >= 1);
        for (unsigned i = 0; i < r.n; i++) {
            assert_true(r.res[i] > 0);
            busy[r.ud[i]] = false;
        }
    }
    assert_int_equal(uring_fsync(u, out), 0);
}

/* Times one copy of src (size bytes) to dst through a handle on the given backend. */
static double time_copy(struct fixture *f, bool disable, int in, size_t size, const char *name,
                        const char **backend)
{
    struct uring *u = uring_new(TEST_DEPTH, disable);
    int out = open_in(f, NULL, name, O_RDWR | O_CREAT | O_TRUNC);
    char cmd[256];
    double t0, t;

    assert_non_null(u);
    *backend = uring_backend_name(u);
    t0 = now_ms();
    copy_via_uring(u, in, out, size);
    t = now_ms() - t0;
    close(out);
    uring_free(u);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/src' '%s/%s'", f->dir, f->dir, name);
    assert_int_equal(system(cmd), 0); /* the copy is right */
    return t;
}

/* Informational: both backends and cp(1) copy the same file; times are printed, never
 * judged (the machine is shared). TEST_URING_BENCH_MB sets the size (0 skips). */
static void test_copy_bench(void **state)
{
    struct fixture *f = *state;
    const char *env = getenv("TEST_URING_BENCH_MB"), *b_ring = "", *b_sys = "";
    unsigned long mb = env != NULL ? strtoul(env, NULL, 10) : TEST_BENCH_DEFAULT_MB;
    unsigned char *block = malloc(TEST_BENCH_BLOCK);
    char cmd[512];
    double t_ring, t_sys, t_cp;
    struct uring *probe;
    int in;

    assert_non_null(block);
    if (mb == 0) {
        print_message("[  SKIP    ] TEST_URING_BENCH_MB=0: copy benchmark not run\n");
        free(block);
        skip();
    }
    in = open_in(f, NULL, "src", O_RDWR | O_CREAT | O_TRUNC);
    for (unsigned long i = 0; i < mb; i++) {
        fill_pattern(block, TEST_BENCH_BLOCK, (uint32_t)i + 1);
        assert_int_equal(pwrite(in, block, TEST_BENCH_BLOCK, (off_t)(i * MiB)), TEST_BENCH_BLOCK);
    }
    assert_int_equal(fsync(in), 0);
    free(block);

    probe = uring_new(1, false);
    assert_non_null(probe);
    if (uring_is_io_uring(probe)) {
        t_ring = time_copy(f, false, in, mb * MiB, "dst_ring", &b_ring);
    } else {
        print_message("[  INFO    ] io_uring unavailable (%s): timing the fallback only\n",
                      uring_fallback_reason(probe));
        t_ring = -1;
    }
    uring_free(probe);
    t_sys = time_copy(f, true, in, mb * MiB, "dst_sys", &b_sys);

    /* cp, then fsync of the copy (coreutils' sync FILE) so every copy ends on disk */
    snprintf(cmd, sizeof cmd, "cp '%s/src' '%s/dst_cp' && sync '%s/dst_cp'", f->dir, f->dir,
             f->dir);
    t_cp = now_ms();
    assert_int_equal(system(cmd), 0);
    t_cp = now_ms() - t_cp;
    print_message(
        "[  INFO    ] copy %lu MiB (qd %u, %u KiB blocks, fsync): %s %.0f ms, %s %.0f ms, "
        "cp+sync %.0f ms -- information only, not judged\n",
        mb, TEST_DEPTH, TEST_BENCH_BLOCK / KiB, t_ring >= 0 ? b_ring : "io_uring", t_ring, b_sys,
        t_sys, t_cp);
    close(in);
}

/* ---- main ------------------------------------------------------------------------------- */

#define BOTH(t)                                                                                    \
    {#t "/io_uring", t, setup, teardown, &mode_ring},                                              \
    {                                                                                              \
#t "/syscalls", t, setup, teardown, &mode_sys                                              \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_backend),
        BOTH(test_roundtrip),
        BOTH(test_eof),
        BOTH(test_offsets),
        BOTH(test_bad_args),
        BOTH(test_ebadf),
        BOTH(test_short_write_then_efbig),
        BOTH(test_enospc),
        BOTH(test_pending_and_reap),
        BOTH(test_read_async),
        BOTH(test_reap_callback_requeues),
        {"test_copy_bench", test_copy_bench, setup, teardown, &mode_ring},
        {"test_fallback_under_seccomp", test_fallback_under_seccomp, setup, teardown, &mode_ring},
    };

    return cmocka_run_group_tests_name("uring", tests, NULL, NULL);
}
