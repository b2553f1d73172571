/* test_restore.c - restore.c without etcd: snapshot validation on synthetic bbolt files (good,
 * HTML/XML page, JSON, truncated, bad digest, bad metas, raw db without digest, wrong size),
 * the marker format and the marker logic behind decide()'s restore facts.
 * The restore itself (etcdctl, swap, crash points) is tests/e2e/restore.sh's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "array.h"
#include "restore.h"
#include "testutil.h"

#define PAGE 4096u
#define PAGES 6u
#define DB_SIZE (PAGE * PAGES)

static char dir[64];

/* A bbolt-shaped db of PAGES pages plus its sha256, as etcdctl saves a snapshot. */
static uint8_t *make_snapshot(size_t *len)
{
    uint8_t *b = calloc(1, DB_SIZE + 32);

    assert_non_null(b);
    test_bbolt_meta(b, 0, PAGE, 10, PAGES);
    test_bbolt_meta(b + PAGE, 1, PAGE, 11, PAGES);
    for (size_t i = 2 * PAGE; i < DB_SIZE; i++)
        b[i] = (uint8_t)(i * 7);
    SHA256(b, DB_SIZE, b + DB_SIZE);
    *len = DB_SIZE + 32;
    return b;
}

static void write_file(const char *path, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, n), (ssize_t)n);
    close(fd);
}

static int validate_bytes(const void *b, size_t n, struct restore_snapshot *s, char *err,
                          size_t err_len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/snap.db", dir);
    write_file(path, b, n);
    return restore_validate(path, s, err, err_len);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_restore.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_tree(dir);
}

static void test_valid(void **state)
{
    struct restore_snapshot s;
    char err[512] = "";
    size_t n;
    uint8_t *b = make_snapshot(&n);

    (void)state;
    assert_int_equal(validate_bytes(b, n, &s, err, sizeof(err)), 0);
    assert_int_equal(s.size, n);
    assert_int_equal(s.db_size, DB_SIZE);
    assert_int_equal(s.page_size, PAGE);
    assert_int_equal(s.valid_metas, 2);
    assert_int_equal(s.txid, 11);
    assert_int_equal(strlen(s.sha256), 64);
    /* one broken meta is what bbolt tolerates: still valid, page size found via meta 1 */
    b[20] ^= 1;
    SHA256(b, DB_SIZE, b + DB_SIZE);
    assert_int_equal(validate_bytes(b, n, &s, err, sizeof(err)), 0);
    assert_int_equal(s.valid_metas, 1);
    assert_int_equal(s.page_size, PAGE);
    free(b);
}

static void expect_bad(const void *b, size_t n, const char *needle)
{
    struct restore_snapshot s;
    char err[512] = "";

    assert_int_equal(validate_bytes(b, n, &s, err, sizeof(err)), -EINVAL);
    print_message("  %s\n", err);
    assert_non_null(strstr(err, needle));
}

static void test_html_xml_json_text(void **state)
{
    static const char html[] = "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n";
    static const char xml[] = "\xef\xbb\xbf  <?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>";
    static const char json[] = "{\"error\":\"not found\"}";
    static const char text[] = "Forbidden\n";

    (void)state;
    expect_bad(html, strlen(html), "HTML/XML");
    expect_bad(xml, strlen(xml), "HTML/XML");
    expect_bad(json, strlen(json), "JSON");
    expect_bad(text, strlen(text), "text");
    expect_bad("", 0, "empty");
}

static void test_truncated_and_sizes(void **state)
{
    size_t n;
    uint8_t *b = make_snapshot(&n), *c;

    (void)state;
    /* cut inside the data: not whole pages + 32 */
    expect_bad(b, n - 100, "not whole");
    /* cut at a page boundary with a digest appended: high-water page beyond the end */
    c = malloc(n);
    assert_non_null(c);
    memcpy(c, b, DB_SIZE - PAGE);
    SHA256(c, DB_SIZE - PAGE, c + DB_SIZE - PAGE);
    expect_bad(c, DB_SIZE - PAGE + 32, "high-water");
    /* a raw db copy without the digest */
    expect_bad(b, DB_SIZE, "not whole");
    /* too small for two pages */
    expect_bad(b, 600, "too small");
    free(c);
    free(b);
}

static void test_bad_digest(void **state)
{
    size_t n;
    uint8_t *b = make_snapshot(&n);

    (void)state;
    b[3 * PAGE + 5] ^= 0x5a;
    expect_bad(b, n, "sha256 mismatch");
    b[3 * PAGE + 5] ^= 0x5a;
    b[n - 1] ^= 1;
    expect_bad(b, n, "sha256 mismatch");
    free(b);
}

static void test_bad_meta(void **state)
{
    size_t n;
    uint8_t *b = make_snapshot(&n);

    (void)state;
    memcpy(b + 16, "garbage", 7);
    memcpy(b + PAGE + 16, "garbage", 7);
    SHA256(b, DB_SIZE, b + DB_SIZE);
    expect_bad(b, n, "no valid bbolt meta");
    /* checksum off by one bit in both */
    free(b);
    b = make_snapshot(&n);
    b[72] ^= 1;
    b[PAGE + 72] ^= 1;
    SHA256(b, DB_SIZE, b + DB_SIZE);
    expect_bad(b, n, "no valid bbolt meta");
    /* not starting with page id 0 */
    free(b);
    b = make_snapshot(&n);
    b[0] = 0x80;
    expect_bad(b, n, "not a bbolt file");
    free(b);
}

static void test_missing_file(void **state)
{
    struct restore_snapshot s;
    char err[256];
    (void)state;
    assert_int_equal(restore_validate("/nonexistent/snap.db", &s, err, sizeof(err)), -ENOENT);
}

static void test_sniff(void **state)
{
    static const uint8_t zeros[16] = {0};
    (void)state;
    assert_null(restore_sniff(zeros, sizeof(zeros)));
    assert_non_null(restore_sniff((const uint8_t *)"\n\t <html>", 9));
    assert_non_null(restore_sniff((const uint8_t *)"\x01\x02\x03", 3));
}

static void test_marker_roundtrip(void **state)
{
    struct restore_marker m = {.restorer = true, .cluster_id = 0xd5d60a77da4c03deull}, r;
    char buf[RESTORE_MAX_MARKER + 1];

    (void)state;
    snprintf(m.source, sizeof(m.source), "https://etcd-1:9980/snapshot?x=1&y=2");
    snprintf(m.sha256, sizeof(m.sha256), "%064d", 7);
    snprintf(m.token, sizeof(m.token), "etcd-cluster-restored-00000000");
    assert_int_equal(restore_marker_render(&m, buf, sizeof(buf)), 0);
    assert_int_equal(restore_marker_parse(buf, strlen(buf), &r), 0);
    assert_memory_equal(&m, &r, sizeof(m));
    /* a newline in a value cannot be rendered */
    snprintf(m.source, sizeof(m.source), "a\nrole=peer");
    assert_int_equal(restore_marker_render(&m, buf, sizeof(buf)), -EINVAL);
}

static void test_marker_parse_bad(void **state)
{
    struct restore_marker m;
    static const char *bad[] = {
        "",
        "role=restorer\n",                           /* no cluster ID */
        "cluster_id=1f\n",                           /* no role */
        "role=boss\ncluster_id=1f\n",                /* unknown role */
        "role=peer\ncluster_id=0\n",                 /* zero ID */
        "role=peer\ncluster_id=1F\n",                /* upper case: not ours */
        "role=peer\ncluster_id=12345678901234567\n", /* 17 digits */
        "role=peer\ncluster_id=1f",                  /* torn: no final newline */
        "role=peer\nno equals sign\ncluster_id=1f\n",
        "role=peer\ntoken=a\ntoken=b\ncluster_id=1f\n", /* duplicate key */
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(restore_marker_parse(bad[i], strlen(bad[i]), &m), -EINVAL);
    /* unknown keys and blank lines are fine */
    assert_int_equal(restore_marker_parse("role=peer\n\nfuture=x\ncluster_id=1f\n", 34, &m), 0);
    assert_int_equal(m.cluster_id, 0x1f);
    assert_false(m.restorer);
}

static void test_new_token(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(restore_new_token("etcd-cluster", "9f9187548deecd6f", out, sizeof(out)), 0);
    assert_string_equal(out, "etcd-cluster-restored-9f918754");
    assert_int_equal(restore_new_token("t", "9f91", out, sizeof(out)), -ENOSPC);
    assert_int_equal(restore_new_token("a-very-long-token-indeed", "9f9187548d", out, 20), -ENOSPC);
}

/* restore_facts: which marker counts as "this very request". */
static void test_facts(void **state)
{
    char data[128], snap[128], other[128];
    struct restore_marker m = {.restorer = true, .cluster_id = 0x42};
    struct decide_facts f;
    char err[256];
    size_t n;
    uint8_t *b = make_snapshot(&n);

    (void)state;
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(snap, sizeof(snap), "%s/good.db", dir);
    snprintf(other, sizeof(other), "%s/other.db", dir);
    write_file(snap, b, n);
    b[3 * PAGE] ^= 1;
    SHA256(b, DB_SIZE, b + DB_SIZE);
    write_file(other, b, n);

    memset(&f, 0, sizeof(f));
    restore_facts(data, "", true, &f);
    assert_false(f.restore_requested);
    restore_facts(data, snap, true, &f);
    assert_true(f.restore_requested && f.restore_restorer && !f.restore_done);

    /* marker for this file and digest */
    snprintf(m.source, sizeof(m.source), "%s", snap);
    {
        struct restore_snapshot s;
        assert_int_equal(restore_validate(snap, &s, err, sizeof(err)), 0);
        memcpy(m.sha256, s.sha256, sizeof(m.sha256));
    }
    assert_int_equal(restore_marker_write(data, &m, err, sizeof(err)), 0);
    restore_facts(data, snap, true, &f);
    assert_true(f.restore_done);
    assert_int_equal(f.restore_cluster_id, 0x42);
    /* the same path now holding another snapshot is another request */
    assert_int_equal(rename(other, snap), 0);
    restore_facts(data, snap, true, &f);
    assert_false(f.restore_done);
    /* another source, or the peer role, does not match a restorer's marker */
    restore_facts(data, "http://x/snap.db", true, &f);
    assert_false(f.restore_done);
    restore_facts(data, snap, false, &f);
    assert_false(f.restore_done);
    /* a URL matches by source alone (no download to compare digests) */
    snprintf(m.source, sizeof(m.source), "http://x/snap.db");
    assert_int_equal(restore_marker_write(data, &m, err, sizeof(err)), 0);
    restore_facts(data, "http://x/snap.db", true, &f);
    assert_true(f.restore_done);
    /* a file source that is gone: the source matches, the marker stands */
    snprintf(m.source, sizeof(m.source), "%s/gone.db", dir);
    assert_int_equal(restore_marker_write(data, &m, err, sizeof(err)), 0);
    restore_facts(data, m.source, true, &f);
    assert_true(f.restore_done);
    /* a peer's marker */
    assert_int_equal(restore_peer_done(data, "http://x/snap.db", 0x77, err, sizeof(err)), 0);
    restore_facts(data, "http://x/snap.db", false, &f);
    assert_true(f.restore_done);
    assert_int_equal(f.restore_cluster_id, 0x77);
    restore_facts(data, "http://x/snap.db", true, &f);
    assert_false(f.restore_done);
    free(b);
}

static void test_is_url(void **state)
{
    (void)state;
    assert_true(restore_is_url("https://a/b"));
    assert_true(restore_is_url("http://a/b"));
    assert_false(restore_is_url("/var/lib/snap.db"));
    assert_false(restore_is_url("ftp://a/b"));
}

/* ---- revision bump: the restore tool's --help ---------------------------------------------- */

#define HELP_DIR "tests/unit/data/restore_help/" /* captured help texts (cwd: the checkout) */

static size_t read_help(const char *name, char *buf, size_t cap)
{
    char path[256];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), HELP_DIR "%s", name);
    f = fopen(path, "r");
    if (!f)
        fail_msg("%s: cannot open (run from the checkout)", path);
    n = fread(buf, 1, cap, f);
    fclose(f);
    assert_true(n > 100 && n < cap);
    return n;
}

static bool has_bump(const char *s)
{
    return restore_help_has_bump(s, strlen(s));
}

static void test_help_captured(void **state)
{
    static char buf[RESTORE_MAX_HELP];
    size_t n;

    (void)state;
    /* etcd 3.4.23's etcdctl: neither flag */
    n = read_help("etcdctl-3.4.23.txt", buf, sizeof(buf));
    assert_false(restore_help_has_bump(buf, n));
    /* etcd 3.5.16's etcdutl (cobra, "--bump-revision uint") and etcdctl ("--bump-revision=0") */
    n = read_help("etcdutl-3.5.16.txt", buf, sizeof(buf));
    assert_true(restore_help_has_bump(buf, n));
    n = read_help("etcdctl-3.5.16.txt", buf, sizeof(buf));
    assert_true(restore_help_has_bump(buf, n));
    /* the same text cut before its --mark-compacted line (the last flag of the two) */
    char *cut = strstr(buf, "--mark-compacted[");
    assert_non_null(cut);
    assert_false(restore_help_has_bump(buf, (size_t)(cut - buf)));
}

static void test_help_edges(void **state)
{
    (void)state;
    assert_true(has_bump("      --bump-revision uint   x\n      --mark-compacted   y\n"));
    assert_true(has_bump("\t--mark-compacted[=false]\n\t--bump-revision=0")); /* no last newline */
    assert_true(has_bump("  -b, --bump-revision uint\n  -m, --mark-compacted\n")); /* shorthands */
    assert_false(has_bump(""));
    assert_false(has_bump("      --bump-revision uint\n")); /* one of the two */
    assert_false(has_bump("      --mark-compacted\n"));
    /* mentioned in a description, not defined */
    assert_false(has_bump("      --mark-compacted   (required if --bump-revision > 0)\n"));
    assert_false(has_bump("Use --bump-revision and --mark-compacted with etcdutl\n"));
    /* other flags that share a prefix */
    assert_false(has_bump("  --bump-revisions uint\n  --mark-compacted\n"));
    assert_false(has_bump("  --bump-revision uint\n  --mark-compacted-x\n"));
    assert_false(has_bump("  ---bump-revision\n  --mark-compacted\n"));
    assert_false(has_bump("etcdutl wrapper: --help is not a flag\n"));
    /* a NUL-free buffer read without a terminator: only len bytes are looked at */
    const char two[] = "  --bump-revision 1\n  --mark-compacted\n";
    assert_false(restore_help_has_bump(two, sizeof(two) - 1 - 6));
    assert_string_equal(restore_bump_name(RESTORE_BUMP_APPLIED), "applied");
    assert_string_equal(restore_bump_name(RESTORE_BUMP_UNSUPPORTED), "unsupported");
    assert_string_equal(restore_bump_name(RESTORE_BUMP_OFF), "off");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_html_xml_json_text),
        cmocka_unit_test(test_truncated_and_sizes),
        cmocka_unit_test(test_bad_digest),
        cmocka_unit_test(test_bad_meta),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_marker_roundtrip),
        cmocka_unit_test(test_marker_parse_bad),
        cmocka_unit_test(test_new_token),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_is_url),
        cmocka_unit_test(test_help_captured),
        cmocka_unit_test(test_help_edges),
    };
    return cmocka_run_group_tests_name("restore", tests, setup, teardown);
}
