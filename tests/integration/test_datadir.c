/* test_datadir.c - datadir_inspect and datadir_wal_locked against a real etcd 3.4 member's
 * data dir (cluster from tests/cluster.sh, $CLUSTER_DIR): running, stopped, and corrupted
 * copies. Leaves member 0 running and healthy. Synthetic cases are in tests/unit. */
#include "datadir.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define CMD_MAX 1024
#define OUT_MAX 8192

static char g_data[512]; /* member 0's data dir */
static char g_copy[256]; /* temp dir for corrupted copies ("" if none) */
static bool g_stopped;   /* member 0 stopped by this test: restart in teardown */
static uint64_t g_member_id, g_cluster_id;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof cmd)
        return -1;
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

/* u64 after "key": in JSON text (etcdctl prints IDs as numbers: parse as integers, not
 * doubles). */
static int json_u64(const char *json, const char *key, uint64_t *v)
{
    char pat[64];
    (void)snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(p, &end, 10);
    if (errno || end == p)
        return -1;
    *v = x;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    const char *cd = getenv("CLUSTER_DIR");
    if (!cd || !*cd) {
        fprintf(stderr, "CLUSTER_DIR not set: run via tests/integration/run.sh\n");
        return -1;
    }
    if (snprintf(g_data, sizeof g_data, "%s/members/0/data", cd) >= (int)sizeof g_data)
        return -1;
    FILE *f = popen("tests/cluster.sh etcdctl 0 endpoint status -w json", "r");
    if (!f)
        return -1;
    char out[OUT_MAX];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    if (pclose(f) != 0 || json_u64(out, "member_id", &g_member_id) < 0 ||
        json_u64(out, "cluster_id", &g_cluster_id) < 0) {
        fprintf(stderr, "endpoint status failed: %s\n", out);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (g_copy[0]) {
        test_rm_tree(g_copy);
        g_copy[0] = '\0';
    }
    if (g_stopped) {
        if (sh("tests/cluster.sh start 0 existing && tests/cluster.sh wait-healthy 0") < 0)
            rc = -1;
        g_stopped = false;
    }
    return rc;
}

/* running: etcd may be writing a meta page or a WAL record while we read them */
static void expect_valid(const char *dir, bool running)
{
    struct datadir_report r;
    assert_int_equal(datadir_inspect(dir, &r), 0);
    if (r.verdict != DATADIR_VALID)
        fail_msg("%s: verdict %d: %s", dir, (int)r.verdict, r.reason);
    assert_true(r.ids_known);
    assert_true(r.member_id == g_member_id);
    assert_true(r.cluster_id == g_cluster_id);
    assert_true(r.has_db);
    assert_true(r.db_valid_metas == 2 || (running && r.db_valid_metas == 1));
    assert_true(running || !r.wal_torn_tail);
    assert_true(r.wal_files >= 1);
    assert_true(r.wal_last_index > 0);
    print_message("%s: VALID member %" PRIx64 " cluster %" PRIx64 ", %zu WAL files, %" PRIu64
                  " records, last index %" PRIu64 ", db page %u txid %" PRIu64 ", %zu snaps, "
                  "%" PRIu64 " us\n",
                  dir, r.member_id, r.cluster_id, r.wal_files, r.wal_records, r.wal_last_index,
                  r.db_page_size, r.db_txid, r.snap_files, r.took_us);
}

static void expect_corrupt(const char *dir, const char *needle)
{
    struct datadir_report r;
    assert_int_equal(datadir_inspect(dir, &r), 0);
    if (r.verdict != DATADIR_CORRUPT || !strstr(r.reason, needle))
        fail_msg("%s: want CORRUPT with \"%s\", got %d: %s", dir, needle, (int)r.verdict, r.reason);
    print_message("%s: CORRUPT: %s\n", dir, r.reason);
}

/* A fresh copy of member 0's (stopped) data dir at g_copy/<name>. */
static void copy_data(const char *name, char *out, size_t n)
{
    if (!g_copy[0]) {
        assert_true(snprintf(g_copy, sizeof g_copy, "/tmp/test_datadir_integ.XXXXXX") <
                    (int)sizeof g_copy);
        assert_non_null(mkdtemp(g_copy));
    }
    assert_true(snprintf(out, n, "%s/%s", g_copy, name) < (int)n);
    assert_int_equal(sh("cp -a '%s' '%s'", g_data, out), 0);
}

/* Path of the first or last WAL file of dir (sorted by name = by sequence). */
static void wal_file(const char *dir, bool last, char *out, size_t n)
{
    char cmd[CMD_MAX];
    assert_true(snprintf(cmd, sizeof cmd, "ls '%s'/member/wal/*.wal | %s -1", dir,
                         last ? "tail" : "head") < (int)sizeof cmd);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)n, f));
    pclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static uint64_t rd64(int fd, off_t off)
{
    uint8_t b[8];
    assert_int_equal(pread(fd, b, 8, off), 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void test_running_stopped_corrupted(void **state)
{
    (void)state;
    char dir[512], wal[1024];

    /* some traffic so the WAL holds entries beyond the bootstrap */
    assert_int_equal(sh("for i in 1 2 3 4 5; do tests/cluster.sh etcdctl 0 put dd-$i v$i "
                        ">/dev/null || exit 1; done"),
                     0);

    /* running: etcd holds its OFD locks; reading is still fine */
    assert_int_equal(datadir_wal_locked(g_data), 1);
    expect_valid(g_data, true);

    g_stopped = true;
    assert_int_equal(sh("tests/cluster.sh stop 0"), 0);
    assert_int_equal(datadir_wal_locked(g_data), 0);
    expect_valid(g_data, false);

    /* both bbolt meta pages overwritten with garbage */
    copy_data("metas", dir, sizeof dir);
    expect_valid(dir, false);
    struct datadir_report r;
    assert_int_equal(datadir_inspect(dir, &r), 0);
    assert_int_equal(sh("head -c %u /dev/urandom | dd of='%s/member/snap/db' conv=notrunc "
                        "status=none",
                        2 * r.db_page_size, dir),
                     0);
    expect_corrupt(dir, "both bbolt meta pages are invalid");

    /* one meta page garbage: bbolt (and the verdict) live with the other one */
    copy_data("meta1", dir, sizeof dir);
    assert_int_equal(sh("head -c 100 /dev/urandom | dd of='%s/member/snap/db' bs=1 seek=%u "
                        "conv=notrunc status=none",
                        dir, r.db_page_size),
                     0);
    assert_int_equal(datadir_inspect(dir, &r), 0);
    assert_int_equal(r.verdict, DATADIR_VALID);
    assert_int_equal(r.db_valid_metas, 1);

    /* a byte flipped inside the metadata record's data (second record of the first file) */
    copy_data("walflip", dir, sizeof dir);
    wal_file(dir, false, wal, sizeof wal);
    int fd = open(wal, O_RDWR);
    assert_true(fd >= 0);
    uint64_t lw = rd64(fd, 0);
    off_t second =
        8 + (off_t)(lw & 0x00ffffffffffffffull) + (off_t)((lw >> 63) ? (lw >> 56) & 7 : 0);
    uint64_t lw2 = rd64(fd, second);
    off_t last = second + 8 + (off_t)(lw2 & 0x00ffffffffffffffull) - 1; /* in Record.data */
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, last), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, last), 1);
    close(fd);
    expect_corrupt(dir, "CRC mismatch");

    /* WAL cut inside a record at the end of the last file: etcd repairs it */
    copy_data("torn", dir, sizeof dir);
    wal_file(dir, true, wal, sizeof wal);
    {
        /* truncate 3 bytes before the end of the data */
        fd = open(wal, O_RDWR);
        assert_true(fd >= 0);
        off_t off = 0, end = 0;
        for (;;) {
            uint64_t w = rd64(fd, off);
            if (w == 0)
                break;
            end = off + 8 + (off_t)(w & 0x00ffffffffffffffull) +
                  (off_t)((w >> 63) ? (w >> 56) & 7 : 0);
            off = end;
        }
        assert_int_equal(ftruncate(fd, end - 3), 0);
        close(fd);
        assert_int_equal(datadir_inspect(dir, &r), 0);
        assert_int_equal(r.verdict, DATADIR_VALID);
        assert_true(r.wal_torn_tail);
    }

    /* back to a healthy cluster */
    assert_int_equal(sh("tests/cluster.sh start 0 existing && tests/cluster.sh wait-healthy 0"), 0);
    g_stopped = false;
    assert_int_equal(datadir_wal_locked(g_data), 1);
    expect_valid(g_data, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_running_stopped_corrupted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
