/* test_hex.c - common/hex.c: encoding bytes and fixed-width numbers, decoding either case,
 * and the refusals (odd count, non-hex digit, short output). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hex.h"

static void test_encode(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof in + 1];
    memset(out, 'x', sizeof out);
    hex_encode(in, sizeof in, out);
    assert_string_equal(out, "00017f80abff");
    hex_encode(in, 0, out);
    assert_string_equal(out, "");
}

static void test_put_u64(void **state)
{
    (void)state;
    char out[17] = {0};
    hex_put_u64(out, 0x1a2b, 8);
    assert_string_equal(out, "00001a2b");
    memset(out, 0, sizeof out);
    hex_put_u64(out, UINT64_MAX, 16);
    assert_string_equal(out, "ffffffffffffffff");
    memset(out, 0, sizeof out);
    hex_put_u64(out, 0x12345, 2); /* the low digits only */
    assert_string_equal(out, "45");
    memset(out, 0, sizeof out);
    hex_put_u64(out, 0xdeadbeefcafe0001ull, 99); /* width capped at 16 */
    assert_string_equal(out, "deadbeefcafe0001");
}

static void test_value(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdef";
    for (int i = 0; i < 16; i++)
        assert_int_equal(hex_value(digits[i]), i);
    for (int i = 10; i < 16; i++)
        assert_int_equal(hex_value((char)('A' + i - 10)), i);
    for (int c = 1; c < 256; c++) {
        bool is_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!is_hex)
            assert_int_equal(hex_value((char)c), -1);
    }
    assert_int_equal(hex_value('\0'), -1);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t in[256], back[256];
    char text[2 * sizeof in + 1];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)i;
    hex_encode(in, sizeof in, text);
    assert_int_equal(hex_decode(text, strlen(text), back, sizeof back), 0);
    assert_memory_equal(in, back, sizeof in);
    uint8_t b[2];
    assert_int_equal(hex_decode("AbCd", 4, b, sizeof b), 0);
    assert_int_equal(b[0], 0xab);
    assert_int_equal(b[1], 0xcd);
}

static void test_decode_refuses(void **state)
{
    (void)state;
    uint8_t b[4];
    assert_int_equal(hex_decode("abc", 3, b, sizeof b), -EINVAL);         /* odd */
    assert_int_equal(hex_decode("0g", 2, b, sizeof b), -EINVAL);          /* not hex */
    assert_int_equal(hex_decode("g0", 2, b, sizeof b), -EINVAL);          /* not hex */
    assert_int_equal(hex_decode("0 ", 2, b, sizeof b), -EINVAL);          /* space */
    assert_int_equal(hex_decode("0011223344", 10, b, sizeof b), -EINVAL); /* out too short */
    assert_int_equal(hex_decode("", 0, b, sizeof b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),         cmocka_unit_test(test_put_u64),
        cmocka_unit_test(test_value),          cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
