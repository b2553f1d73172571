/* test_base64.c - common/base64.c: the RFC 4648 test vectors padded and unpadded, the character
 * values, round trips of every length up to 64, and the strict decoder's refusals (bad
 * characters, misplaced or missing '=', impossible lengths, non-zero trailing bits, no room). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "array.h"
#include "base64.h"

/* RFC 4648 section 10 */
static const struct {
    const char *raw, *padded, *unpadded;
} vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        const char *raw = vectors[i].raw;
        size_t n = strlen(raw);
        char enc[16];
        uint8_t dec[16];

        memset(enc, 0, sizeof enc);
        assert_int_equal(base64_encode((const uint8_t *)raw, n, enc, true), BASE64_PADDED_LEN(n));
        assert_string_equal(enc, vectors[i].padded);
        memset(enc, 0, sizeof enc);
        assert_int_equal(base64_encode((const uint8_t *)raw, n, enc, false),
                         BASE64_UNPADDED_LEN(n));
        assert_string_equal(enc, vectors[i].unpadded);

        assert_int_equal(
            base64_decode(vectors[i].padded, strlen(vectors[i].padded), dec, sizeof dec, true),
            (long)n);
        assert_memory_equal(dec, raw, n);
        assert_int_equal(
            base64_decode(vectors[i].unpadded, strlen(vectors[i].unpadded), dec, sizeof dec, false),
            (long)n);
        assert_memory_equal(dec, raw, n);
        /* NULL output only validates */
        assert_int_equal(
            base64_decode(vectors[i].unpadded, strlen(vectors[i].unpadded), NULL, 0, false),
            (long)n);
    }
}

static void test_value(void **state)
{
    (void)state;
    assert_int_equal(base64_value('A'), 0);
    assert_int_equal(base64_value('Z'), 25);
    assert_int_equal(base64_value('a'), 26);
    assert_int_equal(base64_value('z'), 51);
    assert_int_equal(base64_value('0'), 52);
    assert_int_equal(base64_value('9'), 61);
    assert_int_equal(base64_value('+'), 62);
    assert_int_equal(base64_value('/'), 63);
    assert_int_equal(base64_value('='), -1);
    assert_int_equal(base64_value('-'), -1); /* the URL alphabet is not this one */
    assert_int_equal(base64_value('_'), -1);
    assert_int_equal(base64_value(' '), -1);
    assert_int_equal(base64_value(0x80), -1);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t in[64], out[64];
    char enc[BASE64_PADDED_LEN(64)];

    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        for (int pad = 0; pad <= 1; pad++) {
            size_t len = base64_encode(in, n, enc, pad);

            memset(out, 0, sizeof out);
            assert_int_equal(base64_decode(enc, len, out, n, pad), (long)n);
            assert_memory_equal(out, in, n);
            if (n > 0) /* one byte short of room */
                assert_int_equal(base64_decode(enc, len, out, n - 1, pad), -1);
            /* the other convention is refused unless no padding was needed */
            if (n % 3 != 0)
                assert_int_equal(base64_decode(enc, len, out, sizeof out, !pad), -1);
        }
    }
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad_padded[] = {
        "Zg",     /* unpadded where padding is required */
        "Zg=",    /* length not a multiple of 4 */
        "Z===",   /* three '=' */
        "====",   /* only padding */
        "Zg=g",   /* '=' inside */
        "Z=g=",   /* '=' inside */
        "Zh==",   /* non-zero trailing bits */
        "Zm9=",   /* non-zero trailing bits */
        "Zm9v\n", /* stray character */
        "Zm 9v",  /* stray character */
        "Zm-v",   /* URL alphabet */
    };
    static const char *const bad_unpadded[] = {
        "Z",     /* impossible length */
        "Zm9vY", /* impossible length */
        "Zg==",  /* padding where none is allowed */
        "Zh",    /* non-zero trailing bits */
        "Zm9",   /* non-zero trailing bits */
        "Zm_v",  /* URL alphabet */
    };
    uint8_t out[16];

    for (size_t i = 0; i < ARRAY_SIZE(bad_padded); i++)
        assert_int_equal(base64_decode(bad_padded[i], strlen(bad_padded[i]), out, sizeof out, true),
                         -1);
    for (size_t i = 0; i < ARRAY_SIZE(bad_unpadded); i++)
        assert_int_equal(
            base64_decode(bad_unpadded[i], strlen(bad_unpadded[i]), out, sizeof out, false), -1);
    assert_int_equal(base64_decode(NULL, 4, out, sizeof out, true), -1);
    assert_int_equal(base64_decode(NULL, 0, out, sizeof out, true), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
