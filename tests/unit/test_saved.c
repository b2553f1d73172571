/* test_saved.c - agent/saved.c without etcd: snapshot names (format, strict validation against
 * traversal), Range parsing (206/416/ignored), listing order, retention, .part cleanup, and the
 * uring writer (content, error path removes the file). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "saved.h"
#include "testutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_saved.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_tree(dir);
}

static void touch(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
}

static bool exists(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_name_format(void **state)
{
    (void)state;
    char name[SAVED_NAME_MAX];
    assert_int_equal(saved_name_format(name, sizeof name, 1795473240, 1234), 0);
    assert_string_equal(name, "20261123T223400Z-rev1234.db");
    assert_true(saved_name_valid(name));
    char small[10];
    assert_int_equal(saved_name_format(small, sizeof small, 0, 1), -ENAMETOOLONG);
}

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(saved_name_valid("20261123T223400Z-rev1.db"));
    assert_true(saved_name_valid("20261123T223400Z-rev9223372036854775807.db"));
    static const char *const bad[] = {
        "",
        "..",
        "../etc/passwd",
        "20261123T223400Z-rev1.db.part",
        "20261123T223400Z-rev.db",
        "20261123T223400Z-rev1.db/..",
        "x0261123T223400Z-rev1.db",
        "20261123T223400Z-rev1.dbx",
        "20261123T223400Z-rev1/a.db",
        "20261123T223400Z-rev12345678901234567890.db",
        "20261123 223400Z-rev1.db",
        "20261123T223400Z-rev-1.db",
        "/20261123T223400Z-rev1.db",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (saved_name_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_range(void **state)
{
    (void)state;
    uint64_t a, b;
    assert_int_equal(saved_parse_range("bytes=0-99", 1000, &a, &b), 0);
    assert_true(a == 0 && b == 99);
    assert_int_equal(saved_parse_range("bytes=500-", 1000, &a, &b), 0);
    assert_true(a == 500 && b == 999);
    assert_int_equal(saved_parse_range("bytes=-100", 1000, &a, &b), 0);
    assert_true(a == 900 && b == 999);
    assert_int_equal(saved_parse_range("bytes=-5000", 1000, &a, &b), 0);
    assert_true(a == 0 && b == 999);
    assert_int_equal(saved_parse_range("bytes=900-5000", 1000, &a, &b), 0);
    assert_true(a == 900 && b == 999);
    assert_int_equal(saved_parse_range("bytes=999-999", 1000, &a, &b), 0);
    assert_true(a == 999 && b == 999);
    /* unsatisfiable -> 416 */
    assert_int_equal(saved_parse_range("bytes=1000-", 1000, &a, &b), -ERANGE);
    assert_int_equal(saved_parse_range("bytes=-0", 1000, &a, &b), -ERANGE);
    assert_int_equal(saved_parse_range("bytes=0-0", 0, &a, &b), -ERANGE);
    /* ignored -> 200 whole file */
    static const char *const ign[] = {
        NULL,
        "",
        "bytes=",
        "bytes=-",
        "items=0-1",
        "bytes=5-1",
        "bytes=0-1,5-6",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=99999999999999999999-",
        "bytes=+1-2",
    };
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++) {
        if (saved_parse_range(ign[i], 1000, &a, &b) != -EINVAL)
            fail_msg("not ignored: %s", ign[i] ? ign[i] : "(null)");
    }
}

static void test_list_retain_parts(void **state)
{
    (void)state;
    touch("20261123T223402Z-rev30.db");
    touch("20261123T223400Z-rev10.db");
    touch("20261123T223401Z-rev20.db");
    touch("20261123T223403Z-rev40.db.part");
    touch("notes.txt");
    char **names;
    size_t n;
    assert_int_equal(saved_list(dir, &names, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "20261123T223400Z-rev10.db");
    assert_string_equal(names[2], "20261123T223402Z-rev30.db");
    saved_names_free(names, n);

    assert_int_equal(saved_remove_parts(dir), 1);
    assert_false(exists("20261123T223403Z-rev40.db.part"));
    assert_int_equal(saved_retain(dir, 0), 0);
    assert_int_equal(saved_retain(dir, 2), 1);
    assert_false(exists("20261123T223400Z-rev10.db"));
    assert_true(exists("20261123T223401Z-rev20.db"));
    assert_true(exists("20261123T223402Z-rev30.db"));
    assert_true(exists("notes.txt")); /* never touches what it did not make */
    assert_int_equal(saved_retain(dir, 2), 0);
    assert_int_equal(saved_list("/nonexistent/dir", &names, &n), -ENOENT);
}

static void test_writer(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/w.part", dir);
    int err;
    struct saved_writer *w = saved_writer_open(path, false, &err);
    assert_non_null(w);
    const size_t total = 3 * SNAPSHOT_SPOOL_BLOCK * SNAPSHOT_SPOOL_QD + 12345;
    uint8_t *buf = malloc(total);
    for (size_t i = 0; i < total; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 12));
    /* odd-sized pieces cross block boundaries */
    for (size_t off = 0; off < total;) {
        size_t n = total - off < 40000 ? total - off : 40000;
        assert_int_equal(saved_writer_put(w, buf + off, n), 0);
        off += n;
    }
    assert_int_equal(saved_writer_close(w, true), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *back = malloc(total + 1);
    assert_int_equal(fread(back, 1, total + 1, f), total);
    fclose(f);
    assert_memory_equal(back, buf, total);
    free(back);

    /* an existing file is never overwritten */
    assert_null(saved_writer_open(path, false, &err));
    assert_int_equal(err, -EEXIST);
    unlink(path);

    /* not kept: removed */
    w = saved_writer_open(path, false, &err);
    assert_int_equal(saved_writer_put(w, buf, 1000), 0);
    assert_int_equal(saved_writer_close(w, false), 0);
    assert_int_equal(access(path, F_OK), -1);
    free(buf);
}

/* A write error (here EFBIG from RLIMIT_FSIZE, standing in for ENOSPC) fails the writer and
 * leaves no file behind. */
static void test_writer_error(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/e.part", dir);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = SNAPSHOT_SPOOL_BLOCK + 4096;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int err;
    struct saved_writer *w = saved_writer_open(path, false, &err);
    assert_non_null(w);
    uint8_t *buf = calloc(1, SNAPSHOT_SPOOL_BLOCK);
    int rc = 0;
    for (int i = 0; i < 2 * SNAPSHOT_SPOOL_QD + 2 && rc == 0; i++)
        rc = saved_writer_put(w, buf, SNAPSHOT_SPOOL_BLOCK);
    int crc = saved_writer_close(w, true);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(rc < 0 || crc < 0);
    assert_int_equal(rc < 0 ? rc : crc, -EFBIG);
    assert_int_equal(access(path, F_OK), -1);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_format), cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_range),       cmocka_unit_test(test_list_retain_parts),
        cmocka_unit_test(test_writer),      cmocka_unit_test(test_writer_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
