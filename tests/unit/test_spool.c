/* test_spool.c - agent/spool.c: order and completeness through memory and spill file, the
 * unspill path, no-spill back-pressure, cancel, failure, the unlinked spill file, zero-copy
 * reservations and the stall budget. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"
#include "spool.h"

static uint8_t pat(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 11) ^ (uint8_t)(i % 251);
}

static void fill(uint8_t *buf, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(pos + i);
}

static int check(const uint8_t *buf, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(pos + i))
            return -1;
    return 0;
}

static char tmpdir[64];
static bool no_uring; /* second pass: the pread/pwrite backend */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_spool.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* Read everything, polling on -EAGAIN; returns bytes read and checks the pattern. With
 * `serve`, this thread is the producer too (it finished) and serves the file read-backs. */
static uint64_t drain_ex(struct spool *sp, size_t chunk, unsigned sleep_us, bool serve)
{
    uint8_t *buf = malloc(chunk);
    uint64_t pos = 0;
    for (;;) {
        ssize_t r = spool_read(sp, buf, chunk);
        if (r == -EAGAIN) {
            if (serve)
                assert_int_equal(spool_serve(sp), 0);
            usleep(200);
            continue;
        }
        assert_true(r >= 0);
        if (r == 0)
            break;
        assert_int_equal(check(buf, pos, (size_t)r), 0);
        pos += (uint64_t)r;
        if (sleep_us)
            usleep(sleep_us);
    }
    free(buf);
    return pos;
}

static uint64_t drain(struct spool *sp, size_t chunk, unsigned sleep_us)
{
    return drain_ex(sp, chunk, sleep_us, true);
}

static void test_memory_only(void **state)
{
    (void)state;
    struct spool_config cfg = {
        .mem_bytes = 1 << 20, .spill = true, .dir = tmpdir, .no_io_uring = no_uring};
    struct spool *sp = spool_new(&cfg);
    assert_non_null(sp);
    uint8_t buf[1000];
    uint8_t out[4096];
    assert_int_equal(spool_read(sp, out, sizeof out), -EAGAIN);
    for (uint64_t pos = 0; pos < 100000; pos += sizeof buf) {
        fill(buf, pos, sizeof buf);
        assert_int_equal(spool_write(sp, buf, sizeof buf), 0);
    }
    assert_int_equal(spool_finish(sp), 0);
    assert_int_equal(drain(sp, 4096, 0), 100000);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.spilled, 0);
    assert_string_equal(st.backend, "");
    spool_free(sp);
}

/* The ring fills with nobody reading: the rest goes to the file, nothing is left in dir. */
static void test_spill_then_read(void **state)
{
    (void)state;
    struct spool_config cfg = {
        .mem_bytes = 64 * 1024, .spill = true, .dir = tmpdir, .no_io_uring = no_uring};
    struct spool *sp = spool_new(&cfg);
    assert_non_null(sp);
    const uint64_t total = 5u * 1024 * 1024 + 777;
    uint8_t *buf = malloc(32768);
    for (uint64_t pos = 0; pos < total;) {
        size_t n = total - pos < 32768 ? (size_t)(total - pos) : 32768;
        fill(buf, pos, n);
        assert_int_equal(spool_write(sp, buf, n), 0);
        pos += n;
    }
    assert_int_equal(spool_finish(sp), 0);
    assert_int_equal(dir_entries(tmpdir), 0); /* spill file is unlinked */
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.spilled, total - 64 * 1024);
    assert_int_equal(st.spill_episodes, 1);
    assert_int_equal(drain(sp, 65536, 0), total);
    free(buf);
    spool_free(sp);
}

struct producer {
    struct spool *sp;
    uint64_t total;
    size_t chunk;
    int rc;
    bool same_thread; /* the reader is this thread: no spool_drain (it would wait for it) */
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    uint8_t *buf = malloc(p->chunk);
    p->rc = 0;
    for (uint64_t pos = 0; pos < p->total && p->rc == 0;) {
        size_t n = p->total - pos < p->chunk ? (size_t)(p->total - pos) : p->chunk;
        fill(buf, pos, n);
        p->rc = spool_write(p->sp, buf, n);
        pos += n;
    }
    if (p->rc == 0)
        p->rc = spool_finish(p->sp);
    if (p->rc == 0 && !p->same_thread)
        p->rc = spool_drain(p->sp); /* serves the reader's read-backs until it has all */
    free(buf);
    return NULL;
}

/* The producer on its own thread and this one the reader: after head_start_us, reads `chunk`
 * bytes at a time, sleep_us between reads. Checks that all of it arrived in order and that the
 * producer succeeded. */
static void produce_and_drain(struct producer *p, unsigned head_start_us, size_t chunk,
                              unsigned sleep_us)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, produce, p), 0);
    if (head_start_us)
        usleep(head_start_us);
    assert_int_equal(drain_ex(p->sp, chunk, sleep_us, false), p->total);
    pthread_join(t, NULL);
    assert_int_equal(p->rc, 0);
}

/* A slow reader: the producer never waits, spills, and comes back to memory once the reader
 * caught up (several spill episodes); order and content hold throughout. */
static void test_concurrent_slow_reader(void **state)
{
    (void)state;
    struct spool_config cfg = {
        .mem_bytes = 256 * 1024, .spill = true, .dir = tmpdir, .no_io_uring = no_uring};
    struct spool *sp = spool_new(&cfg);
    struct producer p = {.sp = sp, .total = 12u * 1024 * 1024 + 5, .chunk = 32768};
    produce_and_drain(&p, 0, 16384, 20);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.read, p.total);
    assert_int_equal(st.written, p.total);
    assert_true(st.spilled > 0);
    spool_free(sp);
}

/* Reader catches up while producing: unspill must move staged bytes without loss. */
static void test_unspill(void **state)
{
    (void)state;
    struct spool_config cfg = {
        .mem_bytes = 1 << 20, .spill = true, .dir = tmpdir, .no_io_uring = no_uring};
    struct spool *sp = spool_new(&cfg);
    uint8_t *buf = malloc(4 << 20);
    uint64_t wpos = 0, rpos = 0;
    for (int round = 0; round < 3; round++) {
        /* ring + one spill block + a partial block: spills; the partial block stays staged */
        size_t n = (1 << 20) + SNAPSHOT_SPOOL_BLOCK + 1000;
        fill(buf, wpos, n);
        assert_int_equal(spool_write(sp, buf, n), 0);
        wpos += n;
        /* reader drains the ring and the written block; the partial block stays staged */
        ssize_t r;
        while (rpos < wpos - 1000) {
            r = spool_read(sp, buf, 4 << 20);
            if (r == -EAGAIN) {
                /* the block's write may be in flight; this thread is the producer too */
                assert_int_equal(spool_serve(sp), 0);
                usleep(100);
                continue;
            }
            assert_true(r > 0);
            assert_int_equal(check(buf, rpos, (size_t)r), 0);
            rpos += (uint64_t)r;
        }
        assert_int_equal(rpos, wpos - 1000);
        assert_int_equal(spool_read(sp, buf, 4 << 20), -EAGAIN);
        /* next small write finds the reader caught up: staged bytes go back to memory */
        fill(buf, wpos, 100);
        assert_int_equal(spool_write(sp, buf, 100), 0);
        wpos += 100;
        while ((r = spool_read(sp, buf, 4 << 20)) > 0) {
            assert_int_equal(check(buf, rpos, (size_t)r), 0);
            rpos += (uint64_t)r;
        }
        assert_int_equal(rpos, wpos);
    }
    assert_int_equal(spool_finish(sp), 0);
    assert_int_equal(spool_read(sp, buf, 10), 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.spill_episodes, 3);
    free(buf);
    spool_free(sp);
}

/* Without spilling the producer waits for the reader; nothing touches the disk. */
static void test_no_spill_backpressure(void **state)
{
    (void)state;
    struct spool_config cfg = {.mem_bytes = 8192, .spill = false, .dir = "/nonexistent"};
    struct spool *sp = spool_new(&cfg);
    struct producer p = {.sp = sp, .total = 1u << 20, .chunk = 5000};
    produce_and_drain(&p, 0, 3000, 0);
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.spilled, 0);
    spool_free(sp);
}

static void test_cancel_wakes_producer(void **state)
{
    (void)state;
    struct spool_config cfg = {.mem_bytes = 4096, .spill = false};
    struct spool *sp = spool_new(&cfg);
    struct producer p = {.sp = sp, .total = 1u << 20, .chunk = 4096};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
    usleep(20000);
    spool_cancel(sp);
    pthread_join(t, NULL);
    assert_int_equal(p.rc, -ECANCELED);
    spool_free(sp);
}

static void test_fail_is_seen_before_data(void **state)
{
    (void)state;
    struct spool_config cfg = {
        .mem_bytes = 4096, .spill = true, .dir = tmpdir, .no_io_uring = no_uring};
    struct spool *sp = spool_new(&cfg);
    uint8_t buf[100] = {0};
    assert_int_equal(spool_write(sp, buf, sizeof buf), 0);
    spool_fail(sp, -EPIPE);
    assert_int_equal(spool_read(sp, buf, sizeof buf), -EPIPE);
    assert_int_equal(spool_write(sp, buf, sizeof buf), -EPIPE);
    spool_free(sp);
}

/* A spill that cannot create its file fails the spool for both sides. */
static void test_spill_error(void **state)
{
    (void)state;
    struct spool_config cfg = {.mem_bytes = 4096, .spill = true, .dir = "/nonexistent/dir"};
    struct spool *sp = spool_new(&cfg);
    uint8_t buf[8192] = {0};
    int r = spool_write(sp, buf, sizeof buf);
    assert_true(r < 0);
    uint8_t out[16];
    assert_int_equal(spool_read(sp, out, sizeof out), r);
    spool_free(sp);
}

static int notified;
static void on_notify(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&notified, 1, __ATOMIC_SEQ_CST);
}

/* notify fires only for a reader that saw -EAGAIN, once per wait, and only once a worthwhile
 * amount is buffered (here: the ring is full) or the stream ends. */
static void test_notify(void **state)
{
    (void)state;
    struct spool_config cfg = {
        .mem_bytes = 4096, .spill = true, .dir = tmpdir, .notify = on_notify};
    struct spool *sp = spool_new(&cfg);
    uint8_t buf[4096] = {0};
    notified = 0;
    assert_int_equal(spool_write(sp, buf, 16), 0);
    assert_int_equal(notified, 0);
    assert_int_equal(spool_read(sp, buf, 16), 16);
    assert_int_equal(spool_read(sp, buf, 16), -EAGAIN);
    assert_int_equal(spool_write(sp, buf, 1), 0);
    assert_int_equal(notified, 0); /* one byte is not worth a wakeup */
    assert_int_equal(spool_write(sp, buf, 4095), 0);
    assert_int_equal(notified, 1);                 /* the ring is full */
    assert_int_equal(spool_write(sp, buf, 10), 0); /* spills; no new wait, no new notify */
    assert_int_equal(notified, 1);
    assert_int_equal(spool_read(sp, buf, sizeof buf), 4096);
    assert_int_equal(spool_read(sp, buf, sizeof buf), -EAGAIN); /* 10 bytes staged */
    assert_int_equal(spool_finish(sp), 0);
    assert_int_equal(notified, 2);
    /* the 10 bytes are in the file: the reader asks, the producer reads them back */
    assert_int_equal(spool_read(sp, buf, sizeof buf), -EAGAIN);
    assert_int_equal(spool_serve(sp), 0);
    assert_int_equal(notified, 3);
    assert_int_equal(spool_read(sp, buf, sizeof buf), 10);
    assert_int_equal(spool_read(sp, buf, sizeof buf), 0);
    spool_free(sp);
}

/* Zero-copy production: reserve pieces (the last one shorter), fill, commit in order; a
 * consumer thread sees every byte in order, then the trailing spool_write. */
struct reserver {
    struct spool *sp;
    uint64_t total;
    size_t piece;
    int rc;
};

static void *reserve_produce(void *arg)
{
    struct reserver *p = arg;
    uint64_t pos = 0;
    p->rc = 0;
    while (pos < p->total && p->rc == 0) {
        /* two reservations outstanding at a time when there is room */
        uint8_t *a = NULL, *b = NULL;
        size_t na = p->total - pos < p->piece ? (size_t)(p->total - pos) : p->piece;
        if ((p->rc = spool_reserve(p->sp, na, true, &a)) < 0)
            break;
        uint64_t pos_b = pos + na;
        size_t nb = p->total - pos_b < p->piece ? (size_t)(p->total - pos_b) : p->piece;
        int rb = nb ? spool_reserve(p->sp, nb, false, &b) : -EAGAIN;
        fill(a, pos, na);
        if (rb == 0)
            fill(b, pos_b, nb);
        if ((p->rc = spool_commit(p->sp, na)) < 0)
            break;
        pos += na;
        if (rb == 0) {
            if ((p->rc = spool_commit(p->sp, nb)) < 0)
                break;
            pos += nb;
        } else if (rb != -EAGAIN) {
            p->rc = rb;
        }
    }
    if (p->rc == 0) {
        uint8_t tail[7];
        fill(tail, pos, sizeof tail);
        p->rc = spool_write(p->sp, tail, sizeof tail);
    }
    if (p->rc == 0)
        p->rc = spool_finish(p->sp);
    return NULL;
}

static void test_reserve_commit(void **state)
{
    (void)state;
    struct spool_config cfg = {.mem_bytes = 4 * 4096, .spill = false};
    struct spool *sp = spool_new(&cfg);
    struct reserver p = {.sp = sp, .total = 1000u * 4096 + 123, .piece = 4096};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reserve_produce, &p), 0);
    assert_int_equal(drain_ex(sp, 3000, 0, false), p.total + 7);
    pthread_join(t, NULL);
    assert_int_equal(p.rc, 0);
    spool_free(sp);
}

/* Edge cases: wrap, too big, no room without waiting, commit beyond the reservations, spill
 * spools, cancel while waiting for room. */
static void *reserve_blocked(void *arg)
{
    struct reserver *p = arg;
    uint8_t *x = NULL;
    p->rc = spool_reserve(p->sp, 4096, true, &x);
    return NULL;
}

static void test_reserve_edges(void **state)
{
    (void)state;
    struct spool_config cfg = {.mem_bytes = 3 * 4096, .spill = false};
    struct spool *sp = spool_new(&cfg);
    uint8_t *a = NULL, *b = NULL, out[8192];
    assert_int_equal(spool_reserve(sp, 0, false, &a), -EINVAL);
    assert_int_equal(spool_reserve(sp, 4 * 4096, false, &a), -EINVAL);
    assert_int_equal(spool_commit(sp, 1), -EINVAL); /* nothing reserved */
    assert_int_equal(spool_reserve(sp, 8192, false, &a), 0);
    assert_int_equal(spool_reserve(sp, 8192, false, &b), -EINVAL); /* would wrap */
    assert_int_equal(spool_reserve(sp, 4096, false, &b), 0);
    assert_ptr_equal(b, a + 8192);
    assert_int_equal(spool_reserve(sp, 4096, false, &b), -EAGAIN); /* ring all reserved */
    assert_int_equal(spool_commit(sp, 3 * 4096 + 1), -EINVAL);     /* more than reserved */
    assert_int_equal(spool_read(sp, out, sizeof out), -EAGAIN);    /* reserved is not data */
    fill(a, 0, 8192);
    assert_int_equal(spool_commit(sp, 8192), 0);
    assert_int_equal(spool_read(sp, out, 4096), 4096);
    assert_int_equal(check(out, 0, 4096), 0);
    /* 4096 free again, at the start of the ring */
    assert_int_equal(spool_reserve(sp, 4096, false, &a), 0);
    assert_int_equal(spool_reserve(sp, 4096, false, &a), -EAGAIN);
    /* a waiting reservation is woken by cancel */
    struct reserver p = {.sp = sp};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reserve_blocked, &p), 0);
    usleep(20000);
    spool_cancel(sp);
    pthread_join(t, NULL);
    assert_int_equal(p.rc, -ECANCELED);
    spool_free(sp);

    struct spool_config sc = {.mem_bytes = 8192, .spill = true, .dir = tmpdir};
    sp = spool_new(&sc);
    assert_int_equal(spool_reserve(sp, 4096, false, &a), -EINVAL); /* spill spools copy */
    spool_free(sp);
}

/* Stall budget: a reader that is a little late costs no spill; one that never reads gets the
 * rest spilled once the budget is spent. */
static void test_stall_budget(void **state)
{
    (void)state;
    struct spool_config cfg = {.mem_bytes = 64 * 1024,
                               .spill = true,
                               .dir = tmpdir,
                               .no_io_uring = no_uring,
                               .stall_budget_ms = 5000};
    struct spool *sp = spool_new(&cfg);
    struct producer p = {.sp = sp, .total = 4u * 1024 * 1024, .chunk = 32768};
    produce_and_drain(&p, 50000, 16384, 0); /* the producer waits for us meanwhile */
    struct spool_stats st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.spilled, 0);
    assert_true(st.stall_ns > 0);
    spool_free(sp);

    cfg.stall_budget_ms = 30;
    sp = spool_new(&cfg);
    p = (struct producer){.sp = sp, .total = 1u * 1024 * 1024, .chunk = 32768, .same_thread = true};
    produce(&p); /* nobody reads: waits 30 ms in all, then spills */
    assert_int_equal(p.rc, 0);
    spool_get_stats(sp, &st);
    assert_true(st.spilled > 0);
    assert_true(st.stall_ns >= 30u * 1000000 && st.stall_ns < 5000u * 1000000);
    assert_int_equal(drain(sp, 16384, 0), p.total);
    spool_free(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_only),
        cmocka_unit_test(test_spill_then_read),
        cmocka_unit_test(test_concurrent_slow_reader),
        cmocka_unit_test(test_unspill),
        cmocka_unit_test(test_no_spill_backpressure),
        cmocka_unit_test(test_cancel_wakes_producer),
        cmocka_unit_test(test_fail_is_seen_before_data),
        cmocka_unit_test(test_spill_error),
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_reserve_edges),
        cmocka_unit_test(test_stall_budget),
    };
    int failed = cmocka_run_group_tests_name("io_uring", tests, setup, teardown);
    no_uring = true;
    failed += cmocka_run_group_tests_name("syscalls", tests, setup, teardown);
    return failed;
}
