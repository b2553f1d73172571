/* test_promote.c - where MemberPromote is sent: --cluster-endpoints without the local member's own
 * client URLs (a learner answers "rpc not supported for learner"), rotated after such answers,
 * and the backoff between tries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "grpc.h"
#include "promote.h"

static const char *const CLUSTER[] = {"https://etcd-0:2379", "https://etcd-1:2379",
                                      "https://etcd-2:2379"};

static void test_self_is_skipped(void **state)
{
    (void)state;
    const char *self[] = {"https://etcd-0:2379"};
    const char *out[GRPC_MAX_ENDPOINTS];
    assert_int_equal(promote_order_endpoints(CLUSTER, 3, self, 1, 0, out), 2);
    assert_string_equal(out[0], "https://etcd-1:2379");
    assert_string_equal(out[1], "https://etcd-2:2379");
}

static void test_self_in_the_middle(void **state)
{
    (void)state;
    const char *self[] = {"https://other:2379", "https://etcd-1:2379"};
    const char *out[GRPC_MAX_ENDPOINTS];
    assert_int_equal(promote_order_endpoints(CLUSTER, 3, self, 2, 0, out), 2);
    assert_string_equal(out[0], "https://etcd-0:2379");
    assert_string_equal(out[1], "https://etcd-2:2379");
}

static void test_unknown_self_keeps_all(void **state)
{
    (void)state;
    const char *out[GRPC_MAX_ENDPOINTS];
    assert_int_equal(promote_order_endpoints(CLUSTER, 3, NULL, 0, 0, out), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(out[i], CLUSTER[i]);
}

static void test_only_self_is_still_tried(void **state)
{
    (void)state;
    const char *self[] = {"https://etcd-0:2379"};
    const char *out[GRPC_MAX_ENDPOINTS];
    assert_int_equal(promote_order_endpoints(CLUSTER, 1, self, 1, 0, out), 1);
    assert_string_equal(out[0], "https://etcd-0:2379");
}

static void test_rotation(void **state)
{
    (void)state;
    const char *out[GRPC_MAX_ENDPOINTS];
    /* the table is stale or lacks our URL: each learner answer moves the start by one */
    for (size_t r = 0; r < 7; r++) {
        assert_int_equal(promote_order_endpoints(CLUSTER, 3, NULL, 0, r, out), 3);
        for (size_t i = 0; i < 3; i++)
            assert_string_equal(out[i], CLUSTER[(i + r) % 3]);
    }
    const char *self[] = {"https://etcd-2:2379"};
    assert_int_equal(promote_order_endpoints(CLUSTER, 3, self, 1, 1, out), 2);
    assert_string_equal(out[0], "https://etcd-1:2379");
    assert_string_equal(out[1], "https://etcd-0:2379");
}

static void test_backoff(void **state)
{
    (void)state;
    uint64_t b = promote_next_backoff(0);
    assert_int_equal(b, PROMOTE_BACKOFF_MIN_MS);
    for (int i = 0; i < 20; i++) {
        uint64_t next = promote_next_backoff(b);
        assert_true(next >= b);
        assert_true(next <= PROMOTE_BACKOFF_MAX_MS);
        b = next;
    }
    assert_int_equal(b, PROMOTE_BACKOFF_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_is_skipped),
        cmocka_unit_test(test_self_in_the_middle),
        cmocka_unit_test(test_unknown_self_keeps_all),
        cmocka_unit_test(test_only_self_is_still_tried),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
