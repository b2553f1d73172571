/* test_divergent.c - the "<data-dir>.divergent" marker (common/divergent.c): strict parse,
 * render/parse round trip, atomic write, read and remove in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "divergent.h"

static const struct divergent_marker sample = {.member_id = 0x8e9e05c52164694dULL,
                                               .cluster_id = 0xcdf818194e3a8c32ULL,
                                               .revision = 4711,
                                               .hash = 4294967295u,
                                               .majority_hash = 12345,
                                               .time = 1764800000};

static void test_round_trip(void **state)
{
    char buf[DIVERGENT_MAX_BYTES + 1];
    struct divergent_marker m;

    (void)state;
    assert_int_equal(divergent_render(&sample, buf, sizeof(buf)), 0);
    assert_int_equal(divergent_parse(buf, strlen(buf), &m), 0);
    assert_memory_equal(&m, &sample, sizeof(m));
    assert_int_equal(divergent_render(&sample, buf, 20), -ENOSPC);
    struct divergent_marker bad = sample;
    bad.member_id = 0;
    assert_int_equal(divergent_render(&bad, buf, sizeof(buf)), -EINVAL);
}

static void test_strict(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2}", /* time missing */
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3,\"x\":1}", /* unknown key */
        "{\"member_id\":\"a1\",\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,"
        "\"hash\":1,\"majority_hash\":2,\"time\":3}", /* duplicate */
        "{\"member_id\":\"0\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3}", /* zero ID */
        "{\"member_id\":\"A1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3}", /* upper case */
        "{\"member_id\":\"11111111111111111\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3}", /* 17 digits */
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":0,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3}", /* revision 0 */
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":4294967296,"
        "\"majority_hash\":2,\"time\":3}", /* hash above 32 bits */
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5.5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3}", /* fraction */
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3} x", /* trailing bytes */
        "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
        "\"majority_hash\":2,\"time\":3", /* torn */
    };
    struct divergent_marker m;
    const char *good = "{\"member_id\":\"a1\",\"cluster_id\":\"100\",\"revision\":5,\"hash\":1,"
                       "\"majority_hash\":2,\"time\":3}\n";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("  bad[%zu]\n", i);
        assert_int_equal(divergent_parse(bad[i], strlen(bad[i]), &m), -EINVAL);
    }
    assert_int_equal(divergent_parse(good, strlen(good), &m), 0);
    assert_int_equal(m.member_id, 0xa1);
    assert_int_equal(m.cluster_id, 0x100);
    assert_int_equal(m.revision, 5);
    assert_int_equal(divergent_parse(good, DIVERGENT_MAX_BYTES + 1, &m), -EINVAL);
}

static void test_files(void **state)
{
    char tmpl[] = "/tmp/test-divergent.XXXXXX", data[64], path[96];
    struct divergent_marker m;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(tmpl));
    snprintf(data, sizeof(data), "%s/data", tmpl);
    assert_int_equal(divergent_path(data, path, sizeof(path)), 0);
    assert_string_equal(path + strlen(tmpl), "/data.divergent");
    assert_int_equal(divergent_read(path, &m), -ENOENT);
    assert_int_equal(divergent_remove(path), 0);
    assert_int_equal(divergent_write(path, &sample), 0);
    assert_int_equal(divergent_read(path, &m), 0);
    assert_memory_equal(&m, &sample, sizeof(m));
    /* too large: bounded read, refused */
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < DIVERGENT_MAX_BYTES + 10; i++)
        fputc(' ', f);
    fclose(f);
    assert_int_equal(divergent_read(path, &m), -EINVAL);
    assert_int_equal(divergent_remove(path), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rmdir(tmpl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
