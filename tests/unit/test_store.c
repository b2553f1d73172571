/* test_store.c - the store interface without a network: store_file.c (put in parts, get, list,
 * remove; a half-written object is never listed; stale temp files swept), name and URL checks
 * (store.c), and s3xml.c on S3's answer shapes (listing with entities and paging, uploads,
 * errors, malformed input). The S3 store against a real server is
 * tests/integration/test_store_s3.c's. */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "s3xml.h"
#include "store.h"
#include "testutil.h"

static char dir[64], url[96];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_store.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(url, sizeof(url), "file://%s/", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_tree(dir);
}

struct listing {
    int count;
    char names[16][STORE_MAX_NAME + 1];
    uint64_t sizes[16];
};

static int on_entry(void *arg, const struct store_entry *e)
{
    struct listing *l = arg;
    if (l->count < 16) {
        snprintf(l->names[l->count], sizeof(l->names[0]), "%s", e->name);
        l->sizes[l->count] = e->size;
    }
    l->count++;
    return 0;
}

struct buf {
    char data[1 << 16];
    size_t len;
};

static int on_bytes(void *arg, const void *p, size_t len)
{
    struct buf *b = arg;
    if (b->len + len > sizeof(b->data))
        return -EFBIG;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

static int temp_file(const char *content, size_t len)
{
    char path[] = "/tmp/test_store_src.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    return fd;
}

/* part n: bytes [off, off+len) of fd, at obj_off in the object */
static int put_part(struct store_upload *u, unsigned n, uint64_t obj_off, int fd, uint64_t off,
                    uint64_t len, char *err, size_t err_len)
{
    struct store_part p = {.number = n, .obj_off = obj_off, .fd = fd, .off = off, .len = len};
    return store_upload_part(u, &p, err, err_len);
}

static void test_file_roundtrip(void **state)
{
    struct store *st;
    struct store_upload *u;
    struct listing l = {0};
    struct buf b = {0};
    char err[256] = "";
    const char *text = "0123456789abcdefghij";
    int fd = temp_file(text, 20);

    (void)state;
    assert_int_equal(store_open(url, NULL, &st, err, sizeof(err)), 0);
    /* in three parts from a file region, like the backup's spool */
    assert_int_equal(store_upload_begin(st, "c1/20261203T215500Z-rev9.db", &u, err, sizeof(err)),
                     0);
    assert_int_equal(put_part(u, 1, 0, fd, 2, 5, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 2, 5, fd, 7, 5, err, sizeof(err)), 0);
    /* not committed: not listed, not readable */
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 0);
    assert_int_equal(store_get(st, "c1/20261203T215500Z-rev9.db", on_bytes, &b, err, sizeof(err)),
                     -ENOENT);
    assert_int_equal(put_part(u, 3, 10, fd, 12, 3, err, sizeof(err)), 0);
    assert_int_equal(store_upload_commit(u, err, sizeof(err)), 0);
    assert_int_equal(store_get(st, "c1/20261203T215500Z-rev9.db", on_bytes, &b, err, sizeof(err)),
                     0);
    assert_int_equal(b.len, 13);
    assert_memory_equal(b.data, text + 2, 13);
    assert_int_equal(store_put_buffer(st, "c1/20261203T215500Z-rev9.db.manifest.json", "{}", 2, err,
                                      sizeof(err)),
                     0);
    assert_int_equal(store_put_buffer(st, "c2/x", "", 0, err, sizeof(err)), 0);
    assert_int_equal(store_list(st, "c1/", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_list(st, "c", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 3);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_list(st, "c1/2026", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 2);
    assert_int_equal(store_remove(st, "c2/x", err, sizeof(err)), 0);
    assert_int_equal(store_remove(st, "c2/x", err, sizeof(err)), -ENOENT);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 2);
    close(fd);
    store_close(st);
}

/* Parts land where their numbers and offsets say, whatever order their calls finish in (the
 * backup runs STORE_UPLOAD_STREAMS at once); a part missing below the highest fails the commit
 * and leaves nothing. */
static void test_file_parts_out_of_order(void **state)
{
    struct store *st;
    struct store_upload *u;
    struct listing l = {0};
    struct buf b = {0};
    char err[256] = "";
    const char *text = "0123456789abcdefghij";
    int fd = temp_file(text, 20);

    (void)state;
    assert_int_equal(store_open(url, NULL, &st, err, sizeof(err)), 0);
    assert_int_equal(store_upload_begin(st, "o/whole", &u, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 1, 0, fd, 0, 8, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 3, 14, fd, 14, 6, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 2, 8, fd, 8, 6, err, sizeof(err)), 0);
    assert_int_equal(store_upload_commit(u, err, sizeof(err)), 0);
    assert_int_equal(store_get(st, "o/whole", on_bytes, &b, err, sizeof(err)), 0);
    assert_int_equal(b.len, 20);
    assert_memory_equal(b.data, text, 20);

    assert_int_equal(store_upload_begin(st, "o/gap", &u, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 1, 0, fd, 0, 8, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 3, 14, fd, 14, 6, err, sizeof(err)), 0);
    assert_int_equal(store_upload_commit(u, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "highest is part 3"));
    assert_int_equal(store_list(st, "o/", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 1); /* o/whole only */

    assert_int_equal(store_upload_begin(st, "o/zero", &u, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 0, 0, fd, 0, 8, err, sizeof(err)), -EINVAL);
    store_upload_abort(u);
    close(fd);
    store_close(st);
}

static void test_file_abort_and_stale(void **state)
{
    struct store *st;
    struct store_upload *u;
    struct listing l = {0};
    char err[256] = "", path[256];
    unsigned n = 9;
    int fd = temp_file("abcdef", 6);
    struct utimbuf old = {1000, 1000};

    (void)state;
    assert_int_equal(store_open(url, NULL, &st, err, sizeof(err)), 0);
    assert_int_equal(store_upload_begin(st, "s/aborted", &u, err, sizeof(err)), 0);
    assert_int_equal(put_part(u, 1, 0, fd, 0, 6, err, sizeof(err)), 0);
    store_upload_abort(u);
    /* a crashed writer's temp file: left by an upload never committed nor aborted */
    snprintf(path, sizeof(path), "%s/s/.crashed.part-123456", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    assert_int_equal(store_abort_stale(st, "", time(NULL) - 3600, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0); /* young */
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(utime(path, &old), 0);
    assert_int_equal(store_abort_stale(st, "s/", time(NULL) - 3600, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(store_list(st, "s/", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 0);
    close(fd);
    store_close(st);
}

static void test_open_and_names(void **state)
{
    struct store *st = NULL;
    struct store_options o = {.part_size = 1 << 20};
    char err[256] = "", u2[128];

    (void)state;
    assert_int_equal(store_open("file://relative/path", NULL, &st, err, sizeof(err)), -EINVAL);
    assert_int_equal(store_open("file:///nonexistent/dir", NULL, &st, err, sizeof(err)), -ENOENT);
    assert_int_equal(store_open("http://x/y", NULL, &st, err, sizeof(err)), -EINVAL);
    assert_int_equal(store_open(url, &o, &st, err, sizeof(err)), -EINVAL); /* part too small */
    assert_int_equal(store_open("s3://A_b/x", NULL, &st, err, sizeof(err)), -EINVAL);
    snprintf(u2, sizeof(u2), "file://%s/../x", dir);
    assert_int_equal(store_open(u2, NULL, &st, err, sizeof(err)), -EINVAL);
    assert_true(store_is_url("s3://b/p/") && store_is_url("file:///x"));
    assert_false(store_is_url("/var/snap.db") || store_is_url("https://x/s.db"));
    assert_true(store_name_valid("a/b.db", false));
    assert_true(store_name_valid("a b+c&=é", false));
    assert_false(store_name_valid("", false));
    assert_true(store_name_valid("", true));
    assert_true(store_name_valid("a/", true));
    assert_false(store_name_valid("a/", false));
    assert_false(store_name_valid("/a", false));
    assert_false(store_name_valid("a//b", false));
    assert_false(store_name_valid("a/../b", false));
    assert_false(store_name_valid("a/.hidden", false));
    assert_false(store_name_valid("a\nb", false));
    assert_false(store_name_valid("a\\b", false));
}

static int count_obj(void *arg, const struct s3xml_object *o)
{
    struct listing *l = arg;
    if (l->count < 16) {
        snprintf(l->names[l->count], sizeof(l->names[0]), "%s", o->key);
        l->sizes[l->count] = o->size;
    }
    l->count++;
    return 0;
}

static int count_up(void *arg, const struct s3xml_upload *u)
{
    struct listing *l = arg;
    snprintf(l->names[l->count], sizeof(l->names[0]), "%s", u->upload_id);
    l->sizes[l->count++] = (uint64_t)u->initiated;
    return 0;
}

static void test_s3xml(void **state)
{
    static const char list[] =
        "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>a/b+c=</NextContinuationToken>"
        "<Contents><Key>p/a&amp;b&#x20;&#233;&lt;</Key><LastModified>2026-12-03T21:55:00.000Z"
        "</LastModified><Size>1048576</Size></Contents>"
        "<Contents><Key>p/2</Key><Size>0</Size></Contents></ListBucketResult>";
    static const char ups[] =
        "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>k</Key>"
        "<UploadId>id1</UploadId><Initiated>1970-01-02T00:00:00Z</Initiated></Upload>"
        "</ListMultipartUploadsResult>";
    struct listing l = {0};
    char next[64], next2[64], code[32], msg[64];
    bool truncated = false;
    time_t t;

    (void)state;
    assert_int_equal(
        s3xml_list_objects(list, strlen(list), count_obj, &l, &truncated, next, sizeof(next)), 0);
    assert_true(truncated);
    assert_string_equal(next, "a/b+c=");
    assert_int_equal(l.count, 2);
    assert_string_equal(l.names[0], "p/a&b \xc3\xa9<");
    assert_int_equal(l.sizes[0], 1048576);
    /* a listing cut short is not a listing: no half element is reported as an object */
    assert_int_equal(
        s3xml_list_objects(list, strlen(list) - 60, count_obj, &l, &truncated, next, sizeof(next)),
        -EINVAL);
    memset(&l, 0, sizeof(l));
    assert_int_equal(s3xml_list_uploads(ups, strlen(ups), count_up, &l, &truncated, next,
                                        sizeof(next), next2, sizeof(next2)),
                     0);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.names[0], "id1");
    assert_int_equal(l.sizes[0], 86400);
    assert_false(truncated);
    assert_int_equal(s3xml_error("<Error><Code>NoSuchBucket</Code></Error>", 40, code, sizeof(code),
                                 msg, sizeof(msg)),
                     0);
    assert_string_equal(code, "NoSuchBucket");
    assert_string_equal(msg, "");
    assert_int_equal(s3xml_error(list, strlen(list), code, sizeof(code), msg, sizeof(msg)),
                     -ENOENT);
    assert_int_equal(s3xml_value("<A>&bogus;</A>", 14, NULL, "A", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(s3xml_value("<A>&#0;</A>", 11, NULL, "A", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(s3xml_value("<A>x<B/></A>", 12, NULL, "A", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(s3xml_value("<A>xyz</A>", 10, NULL, "A", msg, 3), -ENOSPC);
    assert_int_equal(s3xml_value("<A>x\0y</A>", 11, NULL, "A", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(s3xml_value("<A>xyz", 6, NULL, "A", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(s3xml_time("2026-12-03T21:55:00Z", &t), 0);
    assert_int_equal(t, 1796334900);
    assert_int_equal(s3xml_time("2026-12-03 21:55:00Z", &t), -EINVAL);
    assert_int_equal(s3xml_time("2026-13-03T21:55:00Z", &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_parts_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_abort_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_and_names, setup, teardown),
        cmocka_unit_test(test_s3xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
