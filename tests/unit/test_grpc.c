/* test_grpc.c - unit tests for the gRPC framing, status mapping and header helpers.
 *
 * No network: the client's calls are tested against real etcd in tests/integration/test_grpc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"

#define MAX_SEEN 16

struct seen {
    size_t n;
    size_t len[MAX_SEEN];
    uint8_t first[MAX_SEEN]; /* first byte of each message (0 for empty) */
    uint32_t sum[MAX_SEEN];
    size_t cancel_at; /* return non-zero on this message (1-based); 0 = never */
};

static int collect(void *arg, const uint8_t *msg, size_t len)
{
    struct seen *s = arg;
    uint32_t sum = 0;

    assert_non_null(msg);
    assert_true(s->n < MAX_SEEN);
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + msg[i];
    s->len[s->n] = len;
    s->first[s->n] = len ? msg[0] : 0;
    s->sum[s->n] = sum;
    s->n++;
    return s->cancel_at && s->n == s->cancel_at;
}

/* Appends a framed message of len bytes (byte i = seed + i) to out. */
static size_t frame(uint8_t *out, size_t len, uint8_t seed)
{
    grpc_frame_header(out, len);
    for (size_t i = 0; i < len; i++)
        out[5 + i] = (uint8_t)(seed + i);
    return len + 5;
}

static uint32_t sum_of(size_t len, uint8_t seed)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (uint8_t)(seed + i);
    return sum;
}

static void test_frame_header(void **state)
{
    uint8_t h[5];

    (void)state;
    grpc_frame_header(h, 0x01020304);
    assert_memory_equal(h, "\x00\x01\x02\x03\x04", 5);
    grpc_frame_header(h, 0);
    assert_memory_equal(h, "\x00\x00\x00\x00\x00", 5);
}

static void test_framer_byte_by_byte(void **state)
{
    uint8_t buf[3000];
    size_t len = frame(buf, 1000, 7);
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    len += frame(buf + len, 0, 0);
    len += frame(buf + len, 1500, 99);
    grpc_framer_init(&f, 0);
    assert_int_equal(f.max_message, GRPC_MAX_MESSAGE);
    assert_true(grpc_framer_idle(&f));
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(grpc_framer_feed(&f, buf + i, 1, collect, &s), 0);
        if (i == 2)
            assert_false(grpc_framer_idle(&f)); /* inside a prefix */
        if (i == 500)
            assert_false(grpc_framer_idle(&f)); /* inside a message */
    }
    assert_true(grpc_framer_idle(&f));
    assert_int_equal(s.n, 3);
    assert_int_equal(s.len[0], 1000);
    assert_int_equal(s.sum[0], sum_of(1000, 7));
    assert_int_equal(s.len[1], 0);
    assert_int_equal(s.len[2], 1500);
    assert_int_equal(s.sum[2], sum_of(1500, 99));
    grpc_framer_free(&f);
}

static void test_framer_many_in_one_feed(void **state)
{
    uint8_t buf[1024];
    size_t len = 0;
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    for (int i = 0; i < 10; i++)
        len += frame(buf + len, (size_t)i * 9, (uint8_t)i);
    grpc_framer_init(&f, 100);
    assert_int_equal(grpc_framer_feed(&f, buf, len, collect, &s), 0);
    assert_int_equal(s.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(s.len[i], (size_t)i * 9);
        assert_int_equal(s.sum[i], sum_of((size_t)i * 9, (uint8_t)i));
    }
    assert_true(grpc_framer_idle(&f));
    grpc_framer_free(&f);
}

/* Every split point of two messages into two feeds, and into three. */
static void test_framer_all_splits(void **state)
{
    uint8_t buf[256];
    size_t len = frame(buf, 40, 1);

    (void)state;
    len += frame(buf + len, 60, 2);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b += 7) {
            struct grpc_framer f;
            struct seen s = {0};

            grpc_framer_init(&f, 64);
            assert_int_equal(grpc_framer_feed(&f, buf, a, collect, &s), 0);
            assert_int_equal(grpc_framer_feed(&f, buf + a, b - a, collect, &s), 0);
            assert_int_equal(grpc_framer_feed(&f, buf + b, len - b, collect, &s), 0);
            assert_int_equal(s.n, 2);
            assert_int_equal(s.sum[0], sum_of(40, 1));
            assert_int_equal(s.sum[1], sum_of(60, 2));
            assert_true(grpc_framer_idle(&f));
            grpc_framer_free(&f);
        }
    }
}

static void test_framer_oversize(void **state)
{
    uint8_t buf[64];
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    frame(buf, 10, 0);
    grpc_framer_init(&f, 9);
    assert_int_equal(grpc_framer_feed(&f, buf, 15, collect, &s), -EMSGSIZE);
    assert_int_equal(s.n, 0);
    grpc_framer_free(&f);

    /* the limit itself is fine; detected from a prefix split across feeds */
    grpc_framer_init(&f, 10);
    assert_int_equal(grpc_framer_feed(&f, buf, 15, collect, &s), 0);
    assert_int_equal(s.n, 1);
    grpc_frame_header(buf, 0xffffffffu);
    assert_int_equal(grpc_framer_feed(&f, buf, 2, collect, &s), 0);
    assert_int_equal(grpc_framer_feed(&f, buf + 2, 3, collect, &s), -EMSGSIZE);
    grpc_framer_free(&f);

    /* the default limit */
    grpc_framer_init(&f, 0);
    grpc_frame_header(buf, GRPC_MAX_MESSAGE + 1);
    assert_int_equal(grpc_framer_feed(&f, buf, 5, collect, &s), -EMSGSIZE);
    grpc_framer_free(&f);
}

static void test_framer_compressed(void **state)
{
    uint8_t buf[16];
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    frame(buf, 3, 0);
    buf[0] = 1;
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 8, collect, &s), -EPROTO);
    assert_int_equal(s.n, 0);
    grpc_framer_free(&f);
    /* split prefix too, and a reserved flag bit */
    buf[0] = 0x80;
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 1, collect, &s), 0);
    assert_int_equal(grpc_framer_feed(&f, buf + 1, 7, collect, &s), -EPROTO);
    grpc_framer_free(&f);
}

static void test_framer_cancel(void **state)
{
    uint8_t buf[128];
    size_t len = 0;
    struct grpc_framer f;
    struct seen s = {.cancel_at = 2};

    (void)state;
    for (int i = 0; i < 3; i++)
        len += frame(buf + len, 20, (uint8_t)i);
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, len, collect, &s), -ECANCELED);
    assert_int_equal(s.n, 2); /* the third is never delivered */
    grpc_framer_free(&f);

    /* cancel on a message that was reassembled from pieces */
    memset(&s, 0, sizeof s);
    s.cancel_at = 1;
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 10, collect, &s), 0);
    assert_int_equal(grpc_framer_feed(&f, buf + 10, 20, collect, &s), -ECANCELED);
    assert_int_equal(s.n, 1);
    grpc_framer_free(&f);
}

static void test_framer_truncated(void **state)
{
    uint8_t buf[64];
    struct grpc_framer f;
    struct seen s = {0};

    (void)state;
    frame(buf, 30, 0);
    grpc_framer_init(&f, 0);
    assert_int_equal(grpc_framer_feed(&f, buf, 20, collect, &s), 0);
    assert_false(grpc_framer_idle(&f)); /* a stream ending here is truncated */
    assert_int_equal(s.n, 0);
    grpc_framer_free(&f);
    grpc_framer_free(&f); /* idempotent */
}

static void test_status_mapping(void **state)
{
    struct grpc_status st;

    (void)state;
    memset(&st, 0x55, sizeof st);
    grpc_status_from_trailers(&st, "0", NULL);
    assert_int_equal(st.code, GRPC_OK);
    assert_false(st.transport);
    assert_string_equal(st.message, "");

    grpc_status_from_trailers(&st, "5", "etcdserver: member not found");
    assert_int_equal(st.code, GRPC_NOT_FOUND);
    assert_false(st.transport);
    assert_string_equal(st.message, "etcdserver: member not found");

    grpc_status_from_trailers(&st, "14", "peer%20URL%20%2Fexists%3a%E2%9C%93");
    assert_int_equal(st.code, GRPC_UNAVAILABLE);
    assert_string_equal(st.message, "peer URL /exists:\xe2\x9c\x93");

    /* a code without a message still says something */
    grpc_status_from_trailers(&st, "9", NULL);
    assert_int_equal(st.code, GRPC_FAILED_PRECONDITION);
    assert_string_equal(st.message, "FAILED_PRECONDITION");

    grpc_status_from_trailers(&st, NULL, "ignored");
    assert_int_equal(st.code, GRPC_INTERNAL);
    assert_true(st.transport);
    assert_string_equal(st.message, "missing grpc-status");

    grpc_status_from_trailers(&st, "", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);
    assert_true(st.transport);
    grpc_status_from_trailers(&st, "4x", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);
    grpc_status_from_trailers(&st, "-1", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);
    grpc_status_from_trailers(&st, "99999999999999999999", NULL);
    assert_int_equal(st.code, GRPC_INTERNAL);

    /* unknown codes are kept */
    grpc_status_from_trailers(&st, "42", NULL);
    assert_int_equal(st.code, 42);
    assert_string_equal(st.message, "CODE_42");

    /* long messages are truncated, still terminated */
    {
        char big[1000];
        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        grpc_status_from_trailers(&st, "2", big);
        assert_int_equal(strlen(st.message), GRPC_MAX_STATUS_MESSAGE - 1);
    }
}

static void test_percent_decode(void **state)
{
    char a[] = "a%20b%zz%4%41%";
    char b[] = "%e4%B8%ad";
    char c[] = "";
    char d[] = "100%";

    (void)state;
    grpc_percent_decode(a);
    assert_string_equal(a, "a b%zz%4A%");
    grpc_percent_decode(b);
    assert_string_equal(b, "\xe4\xb8\xad");
    grpc_percent_decode(c);
    assert_string_equal(c, "");
    grpc_percent_decode(d);
    assert_string_equal(d, "100%");
}

static void test_code_names(void **state)
{
    (void)state;
    assert_string_equal(grpc_code_name(GRPC_OK), "OK");
    assert_string_equal(grpc_code_name(GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    assert_string_equal(grpc_code_name(GRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
    assert_string_equal(grpc_code_name(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(grpc_code_name(17), "CODE_17");
    assert_string_equal(grpc_code_name(-3), "CODE_-3");
}

static void test_timeout_header(void **state)
{
    char t[16];

    (void)state;
    grpc_timeout_header(t, 250);
    assert_string_equal(t, "250m");
    grpc_timeout_header(t, 30000);
    assert_string_equal(t, "30S");
    grpc_timeout_header(t, 1500);
    assert_string_equal(t, "1500m");
    grpc_timeout_header(t, 1);
    assert_string_equal(t, "1m");
    grpc_timeout_header(t, 0);
    assert_string_equal(t, "0m");
    grpc_timeout_header(t, 99999999);
    assert_string_equal(t, "99999999m");
    /* beyond 8 digits of milliseconds: seconds, rounded up */
    grpc_timeout_header(t, 100000001);
    assert_string_equal(t, "100001S");
    grpc_timeout_header(t, 2147483647);
    assert_string_equal(t, "2147484S");
    assert_true(strlen(t) <= 9);
}

static void test_channel_config(void **state)
{
    const char *good[] = {"https://127.0.0.1:2379", "localhost:2380", "[::1]:2379",
                          "https://[fe80::1]:1/", "etcd-0.etcd"};
    const char *bad[] = {"http://127.0.0.1:2379", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                         "::1:2379", "[::1", "[::1]x", "https://:2379", "h:12a"};
    struct tls_files files = {"/nonexistent-ca", NULL, NULL};
    struct grpc_channel_config cfg = {0};
    struct grpc_channel *ch;
    char err[256];

    (void)state;
    /* a channel needs a TLS context, but never touches it before connecting */
    cfg.tls = (struct tls_ctx *)(uintptr_t)1;
    cfg.endpoints = good;
    cfg.n_endpoints = sizeof good / sizeof good[0];
    ch = grpc_channel_new(&cfg, err, sizeof err);
    assert_non_null(ch);
    assert_null(grpc_channel_endpoint(ch));
    grpc_channel_close(ch);
    grpc_channel_free(ch);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.endpoints = &bad[i];
        cfg.n_endpoints = 1;
        err[0] = '\0';
        assert_null(grpc_channel_new(&cfg, err, sizeof err));
        assert_true(err[0] != '\0');
    }
    cfg.endpoints = good;
    cfg.n_endpoints = 0;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    cfg.n_endpoints = GRPC_MAX_ENDPOINTS + 1;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    cfg.n_endpoints = 1;
    cfg.window_size = 0x80000000u;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    cfg.window_size = 0;
    cfg.tls = NULL;
    assert_null(grpc_channel_new(&cfg, err, sizeof err));
    assert_null(tls_client_new(&files, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_framer_byte_by_byte),
        cmocka_unit_test(test_framer_many_in_one_feed),
        cmocka_unit_test(test_framer_all_splits),
        cmocka_unit_test(test_framer_oversize),
        cmocka_unit_test(test_framer_compressed),
        cmocka_unit_test(test_framer_cancel),
        cmocka_unit_test(test_framer_truncated),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_timeout_header),
        cmocka_unit_test(test_channel_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
