/* test_restore_store.c - init/restore_store.c on the file store (no network, no etcd): backup
 * name parsing, which object a prefix URL resolves to (newest complete: manifest present and
 * its size equal; objects without one skipped), a full object URL with and without manifest,
 * refusals (size or sha256 differing from the manifest, nothing complete, an undecodable .zst,
 * an .age without identity), and the marker's object fields. The real restore is
 * tests/e2e/restore_store.sh's. */
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
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore.h"
#include "bounds.h"
#include "restore_store.h"
#include "testutil.h"

static char dir[64], out[128];

static void put(const char *rel, const char *content, size_t len)
{
    char path[512], *slash;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    for (slash = path + strlen(dir) + 1; (slash = strchr(slash, '/')); slash++) {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
}

static void sha_hex(const char *s, size_t len, char *hex)
{
    unsigned char md[32];
    SHA256((const unsigned char *)s, len, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void put_manifest(const char *obj, const char *content, long size_override,
                         const char *sha_override)
{
    char rel[512], json[512], hex[65];
    sha_hex(content, strlen(content), hex);
    snprintf(rel, sizeof(rel), "%s.manifest.json", obj);
    snprintf(json, sizeof(json),
             "{\"object_sha256\":\"%s\",\"object_size\":%ld,\"revision\":1,\"compression\":"
             "\"none\",\"encryption\":\"none\"}",
             sha_override ? sha_override : hex,
             size_override >= 0 ? size_override : (long)strlen(content));
    put(rel, json, strlen(json));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_restore_store.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(out, sizeof(out), "%s.download", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(out);
    return test_rm_tree(dir);
}

static void test_parse_name(void **state)
{
    char when[17];
    uint64_t rev;
    bool z, a;

    (void)state;
    assert_int_equal(restore_store_parse_name("p/0123456789abcdef/20261203T215500Z-rev42.db", when,
                                              &rev, &z, &a),
                     0);
    assert_string_equal(when, "20261203T215500Z");
    assert_int_equal(rev, 42);
    assert_false(z || a);
    assert_int_equal(restore_store_parse_name("0123456789abcdef/20261203T215500Z-rev7.db.zst.age",
                                              when, &rev, &z, &a),
                     0);
    assert_true(z && a);
    assert_int_equal(restore_store_parse_name("0123456789abcdef/20261203T215500Z-rev7.db.age", when,
                                              &rev, &z, &a),
                     0);
    assert_true(!z && a);
    static const char *bad[] = {
        "0123456789abcdef/20261203T215500Z-rev7.db.manifest.json",
        "0123456789ABCDEF/20261203T215500Z-rev7.db",
        "x0123456789abcdef/20261203T215500Z-rev7.db",
        "0123456789abcdef/20261203T215500-rev7.db",
        "0123456789abcdef/20261203T215500Z-rev.db",
        "0123456789abcdef/20261203T215500Z-rev7.tar",
        "20261203T215500Z-rev7.db",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(restore_store_parse_name(bad[i], when, &rev, &z, &a), -EINVAL);
}

static void test_resolve_newest_complete(void **state)
{
    struct restore_object o;
    char url[128], err[512] = "", hex[65];
    const char *good = "good snapshot bytes";

    (void)state;
    put("b/00000000000000aa/20261201T000000Z-rev10.db", "old", 3);
    put_manifest("b/00000000000000aa/20261201T000000Z-rev10.db", "old", -1, NULL);
    put("b/00000000000000bb/20261202T000000Z-rev20.db", good, strlen(good));
    put_manifest("b/00000000000000bb/20261202T000000Z-rev20.db", good, -1, NULL);
    put("b/00000000000000bb/20261203T000000Z-rev30.db", "no manifest", 11);
    put("b/00000000000000bb/20261203T010000Z-rev31.db", "size differs", 12);
    put_manifest("b/00000000000000bb/20261203T010000Z-rev31.db", "size differs", 99, NULL);
    snprintf(url, sizeof(url), "file://%s/b/", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), 0);
    assert_string_equal(o.name, "00000000000000bb/20261202T000000Z-rev20.db");
    assert_true(o.has_manifest);
    sha_hex(good, strlen(good), hex);
    assert_string_equal(o.object_sha256, hex);
    assert_int_equal(o.size, strlen(good));
    /* the same object by its full URL */
    snprintf(url, sizeof(url), "file://%s/b/00000000000000aa/20261201T000000Z-rev10.db", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), 0);
    assert_int_equal(o.size, 3);
    /* a full URL without manifest restores too */
    snprintf(url, sizeof(url), "file://%s/b/00000000000000bb/20261203T000000Z-rev30.db", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), 0);
    assert_false(o.has_manifest);
    /* larger than allowed */
    assert_int_equal(restore_store_fetch(url, NULL, out, 5, &o, err, sizeof(err)), -EFBIG);
    assert_int_equal(access(out, F_OK), -1);
}

/* The download's data_sha256 is the sha256 of all its bytes but the last 32 (what a snapshot's
 * trailing digest must equal), whatever pieces they arrive in: the file store hands 1 MiB
 * (STORE_IO_CHUNK) pieces, so 1 MiB + 17 bytes ends with a piece shorter than the 32 held back. */
static void test_data_sha256(void **state)
{
    static const size_t sizes[] = {STORE_IO_CHUNK + 17, STORE_IO_CHUNK + 40, 31, 32, 33};
    struct restore_object o;
    char url[256], err[512] = "", rel[80];
    unsigned char want[32];

    (void)state;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        char *content = malloc(n);
        assert_non_null(content);
        for (size_t i = 0; i < n; i++)
            content[i] = (char)(i * 131 + k);
        snprintf(rel, sizeof(rel), "h%zu/00000000000000cc/20261204T000000Z-rev40.db", k);
        put(rel, content, n);
        snprintf(url, sizeof(url), "file://%s/%s", dir, rel);
        assert_int_equal(restore_store_fetch(url, NULL, out, 4 << 20, &o, err, sizeof(err)), 0);
        SHA256((const unsigned char *)content, n > 32 ? n - 32 : 0, want);
        if (memcmp(o.data_sha256, want, 32) != 0)
            fail_msg("%zu bytes: data_sha256 is not the sha256 of the first %zu", n,
                     n > 32 ? n - 32 : 0);
        free(content);
    }
}

/* The lag hash in pieces of every size pattern: 1-byte, 31/32/33-byte and random pieces give
 * the sha256 of all but the last 32 bytes. */
static void test_lag_hash_pieces(void **state)
{
    enum { N = 5000 };
    static uint8_t data[N];
    unsigned char want[32], got[32];
    unsigned seed = 7;

    (void)state;
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 37 + (i >> 7));
    SHA256(data, N - 32, want);
    for (int pattern = 0; pattern < 6; pattern++) {
        struct restore_lag_hash h = {.md = EVP_MD_CTX_new()};
        assert_non_null(h.md);
        assert_int_equal(EVP_DigestInit_ex(h.md, EVP_sha256(), NULL), 1);
        for (size_t off = 0; off < N;) {
            static const size_t fixed[] = {1, 31, 32, 33, 100};
            size_t n = pattern < 5 ? fixed[pattern] : 1 + (size_t)(rand_r(&seed) % 70);
            if (n > N - off)
                n = N - off;
            assert_int_equal(restore_lag_hash_update(&h, data + off, n), 0);
            off += n;
        }
        assert_int_equal(EVP_DigestFinal_ex(h.md, got, NULL), 1);
        EVP_MD_CTX_free(h.md);
        assert_int_equal(h.window_len, 32);
        assert_memory_equal(h.window, data + N - 32, 32);
        if (memcmp(got, want, 32) != 0)
            fail_msg("pattern %d: not the sha256 of the first %d bytes", pattern, N - 32);
    }
}

static void test_refusals(void **state)
{
    struct restore_object o;
    char url[160], err[512] = "";

    (void)state;
    put("t/00000000000000cc/20261204T000000Z-rev40.db", "tampered", 8);
    put_manifest("t/00000000000000cc/20261204T000000Z-rev40.db", "tampered", -1,
                 "0000000000000000000000000000000000000000000000000000000000000000");
    snprintf(url, sizeof(url), "file://%s/t/00000000000000cc/20261204T000000Z-rev40.db", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "tampered"));
    assert_int_equal(access(out, F_OK), -1);
    put("s/00000000000000cc/20261204T000000Z-rev40.db", "short", 5);
    put_manifest("s/00000000000000cc/20261204T000000Z-rev40.db", "short", 9, NULL);
    snprintf(url, sizeof(url), "file://%s/s/00000000000000cc/20261204T000000Z-rev40.db", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), -EBADMSG);
    /* nothing complete under a prefix */
    put("n/00000000000000cc/20261204T000000Z-rev40.db", "x", 1);
    snprintf(url, sizeof(url), "file://%s/n/", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "no complete backup"));
    snprintf(url, sizeof(url), "file://%s/n/missing.db", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), -ENOENT);
    /* a .zst object that is not zstd: refused by the decoder, nothing left behind */
    put("z/00000000000000cc/20261204T000000Z-rev40.db.zst", "z", 1);
    snprintf(url, sizeof(url), "file://%s/z/00000000000000cc/20261204T000000Z-rev40.db.zst", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "cannot decode"));
    assert_int_equal(access(out, F_OK), -1);
    /* an .age object without an identity file */
    put("z/00000000000000cc/20261204T000000Z-rev41.db.age", "a", 1);
    snprintf(url, sizeof(url), "file://%s/z/00000000000000cc/20261204T000000Z-rev41.db.age", dir);
    assert_int_equal(restore_store_fetch(url, NULL, out, 1 << 20, &o, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--restore-identity"));
    assert_true(restore_store_is_url("s3://b/p/") && restore_is_url("file:///x/"));
}

static void test_marker_object_fields(void **state)
{
    struct restore_marker m = {.restorer = true, .cluster_id = 0x1234}, back;
    char buf[RESTORE_MAX_MARKER + 1];

    (void)state;
    snprintf(m.source, sizeof(m.source), "s3://b/p/");
    snprintf(m.object, sizeof(m.object), "00000000000000bb/20261202T000000Z-rev20.db");
    memset(m.object_sha256, 'a', 64);
    assert_int_equal(restore_marker_render(&m, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "\nobject=00000000000000bb/20261202T000000Z-rev20.db\n"));
    assert_int_equal(restore_marker_parse(buf, strlen(buf), &back), 0);
    assert_string_equal(back.object, m.object);
    assert_string_equal(back.object_sha256, m.object_sha256);
    /* without a store, no object lines (older readers see the same marker as before) */
    m.object[0] = m.object_sha256[0] = '\0';
    assert_int_equal(restore_marker_render(&m, buf, sizeof(buf)), 0);
    assert_null(strstr(buf, "object"));
    assert_int_equal(
        restore_marker_parse("role=peer\ncluster_id=1\nobject=a\nobject=b\n", 40, &back), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_name),
        cmocka_unit_test_setup_teardown(test_resolve_newest_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_sha256, setup, teardown),
        cmocka_unit_test(test_lag_hash_pieces),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test(test_marker_object_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
