/* test_readall.c - common/readall.c and common/dirsync.c: a file read to its end below, at and
 * above the cap, a pipe that delivers in pieces, a bad descriptor; fsync of a directory and of a
 * path's parent, and their errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <limits.h>
#include <unistd.h>

#include "dirsync.h"
#include "readall.h"

#define CAP 16

/* A file of `size` bytes read with cap CAP: the result and the count. */
static const struct {
    size_t size;
    int rc;
    size_t len;
} file_rows[] = {
    {0, 0, 0},
    {1, 0, 1},
    {CAP - 1, 0, CAP - 1},
    {CAP, -EFBIG, CAP},
    {CAP + 1, -EFBIG, CAP},
    {5 * CAP, -EFBIG, CAP},
};

static void test_file(void **state)
{
    (void)state;
    char src[5 * CAP], buf[CAP + 4];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof file_rows / sizeof file_rows[0]; i++) {
        char path[] = "/tmp/test_readall.XXXXXX";
        int fd = mkstemp(path);
        size_t len = 99;
        assert_true(fd >= 0);
        assert_int_equal(write(fd, src, file_rows[i].size), (ssize_t)file_rows[i].size);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        memset(buf, 0, sizeof buf);
        print_message("size %zu\n", file_rows[i].size);
        assert_int_equal(readall(fd, buf, CAP, &len), file_rows[i].rc);
        assert_int_equal(len, file_rows[i].len);
        assert_memory_equal(buf, src, len);
        assert_int_equal(buf[CAP], 0); /* nothing past the cap */
        close(fd);
        unlink(path);
    }
}

/* A pipe hands over what was written so far: readall keeps reading until the writer closes. */
static void test_pipe_pieces(void **state)
{
    (void)state;
    int p[2];
    char buf[CAP];
    size_t len;
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        for (int i = 0; i < 3; i++) {
            if (write(p[1], "abc", 3) != 3)
                _exit(1);
            usleep(20000);
        }
        _exit(0);
    }
    close(p[1]);
    assert_int_equal(readall(p[0], buf, sizeof buf, &len), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(buf, "abcabcabc", 9);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_bad_fd(void **state)
{
    (void)state;
    char buf[CAP];
    size_t len = 99;
    assert_int_equal(readall(-1, buf, sizeof buf, &len), -EBADF);
    assert_int_equal(len, 0);
}

static void test_dirsync(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_dirsync.XXXXXX", path[64], longp[PATH_MAX + 16];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/file", dir);
    assert_int_equal(dirsync(dir), 0);
    assert_int_equal(dirsync("/"), 0);
    assert_int_equal(dirsync_parent(path), 0);            /* dir itself, the file need not exist */
    assert_int_equal(dirsync_parent("/etc"), 0);          /* "/" */
    assert_int_equal(dirsync_parent("relative-name"), 0); /* the working directory */
    assert_int_equal(dirsync_parent("/nonexistent/x"), -ENOENT);
    assert_int_equal(dirsync(path), -ENOENT);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(dirsync(path), -ENOTDIR);
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 3] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(dirsync_parent(longp), -ENAMETOOLONG);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_pipe_pieces),
        cmocka_unit_test(test_bad_fd),
        cmocka_unit_test(test_dirsync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
