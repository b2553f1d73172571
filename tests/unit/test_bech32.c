/* test_bech32.c - common/bech32.c: BIP-173's valid and invalid vectors, padding rules, case
 * rules, buffer limits, round trips, and age's two key forms (a pair from age-keygen). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "age.h"
#include "bech32.h"
#include "bounds.h"

static int dec(const char *s, char *hrp, uint8_t *data, size_t *n)
{
    return bech32_decode(s, strlen(s), hrp, BECH32_MAX_HRP + 1, data, BECH32_MAX_LEN, n);
}

static void test_bip173_valid(void **state)
{
    (void)state;
    static const char *valid[] = {
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tg"
        "s",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247"
        "j",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    };
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        char hrp[BECH32_MAX_HRP + 1], again[BECH32_MAX_LEN + 1], lower[BECH32_MAX_LEN + 1];
        uint8_t data[BECH32_MAX_LEN];
        size_t n = 99;
        assert_int_equal(dec(valid[i], hrp, data, &n), 0);
        /* Re-encoding gives the same string (in its case). */
        bool upper = isupper((unsigned char)valid[i][0]);
        assert_int_equal(bech32_encode(again, sizeof again, hrp, data, n, upper), 0);
        assert_string_equal(again, valid[i]);
        size_t l = strlen(valid[i]);
        for (size_t j = 0; j <= l; j++)
            lower[j] = (char)tolower((unsigned char)valid[i][j]);
        assert_int_equal(strncmp(hrp, lower, strlen(hrp)), 0);
    }
}

static void test_bip173_invalid(void **state)
{
    (void)state;
    static const char *invalid[] = {
        "\x20"
        "1nwldj5", /* hrp character out of range */
        "\x7f"
        "1axkwrx", /* hrp character out of range */
        "\x80"
        "1eym55h", /* hrp character out of range */
        "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pv"
        "x",
        "pzry9x0s0muk",  /* no separator */
        "1pzry9x0s0muk", /* empty hrp */
        "x1b4n0q5v",     /* invalid data character */
        "li1dgmt3",      /* too short checksum */
        "de1lg7wt\xff",  /* invalid character in checksum */
        "A1G7SGD8",      /* checksum calculated with upper-case hrp */
        "10a06t8",       /* empty hrp */
        "1qzzfhee",      /* empty hrp */
        "A12uEL5L",      /* mixed case */
        "a12uel5m",      /* wrong checksum */
        "a1qpamnt9j",    /* valid checksum, non-zero padding bits */
        "a1qqqd87cpp",   /* valid checksum, 7 padding bits */
        "",
        "a1",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        char hrp[BECH32_MAX_HRP + 1];
        uint8_t data[BECH32_MAX_LEN];
        size_t n = 0;
        if (dec(invalid[i], hrp, data, &n) != -EINVAL)
            fail_msg("accepted invalid vector %zu: %s", i, invalid[i]);
    }
    /* The control: a string with a zero padding byte decodes. */
    char hrp[8];
    uint8_t d[4];
    size_t n = 0;
    assert_int_equal(bech32_decode("a1qqqd87cq", 10, hrp, sizeof hrp, d, sizeof d, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(d[0], 0);
}

static void test_limits(void **state)
{
    (void)state;
    char out[BECH32_MAX_LEN + 1], hrp[4];
    uint8_t data[64] = {1, 2, 3}, back[64];
    size_t n = 0;
    /* 51 bytes -> 82 characters + "abc1" + 6 > 90. */
    assert_int_equal(bech32_encode(out, sizeof out, "abc", data, 51, false), -ENOSPC);
    assert_int_equal(bech32_encode(out, 10, "abc", data, 3, false), -ENOSPC);
    assert_int_equal(bech32_encode(out, sizeof out, "", data, 3, false), -EINVAL);
    assert_int_equal(bech32_encode(out, sizeof out, "a b", data, 3, false), -EINVAL);
    assert_int_equal(bech32_encode(out, sizeof out, "abc", data, 3, false), 0);
    /* Buffers too small on decode. */
    assert_int_equal(bech32_decode(out, strlen(out), hrp, 3, back, sizeof back, &n), -ENOSPC);
    assert_int_equal(bech32_decode(out, strlen(out), hrp, 4, back, 2, &n), -ENOSPC);
    assert_int_equal(bech32_decode(out, strlen(out), hrp, 4, back, 3, &n), 0);
    assert_int_equal(n, 3);
    /* Not NUL-terminated input: only slen bytes are read. */
    char copy[BECH32_MAX_LEN];
    memcpy(copy, out, strlen(out));
    assert_int_equal(bech32_decode(copy, strlen(out), hrp, 4, back, 3, &n), 0);
}

static void test_round_trips(void **state)
{
    (void)state;
    uint8_t data[50], back[50];
    for (size_t len = 0; len <= 50; len++) {
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)(i * 37 + len);
        char s[BECH32_MAX_LEN + 1], hrp[8];
        size_t n = 0;
        int rc = bech32_encode(s, sizeof s, "tst", data, len, len % 2);
        if (4 + (len * 8 + 4) / 5 + 6 > BECH32_MAX_LEN) {
            assert_int_equal(rc, -ENOSPC);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(bech32_decode(s, strlen(s), hrp, sizeof hrp, back, sizeof back, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(back, data, len);
        assert_string_equal(hrp, "tst");
        /* Any one flipped character breaks the checksum. */
        for (size_t i = 4; i < strlen(s); i++) {
            char t[BECH32_MAX_LEN + 1];
            memcpy(t, s, sizeof t);
            t[i] =
                (char)(t[i] == 'q' || t[i] == 'Q' ? (len % 2 ? 'P' : 'p') : (len % 2 ? 'Q' : 'q'));
            assert_int_equal(bech32_decode(t, strlen(t), hrp, sizeof hrp, back, sizeof back, &n),
                             -EINVAL);
        }
    }
}

/* A pair written by age-keygen 1.1.1 (a test key, nothing is encrypted to it). */
#define KEYGEN_ID "AGE-SECRET-KEY-1KMRWK7MXZR8ZXMJCZ8M8DXXAE2LQA4Q0X5TA5P3AMA43XTNTZWHQJ9LG2V"
#define KEYGEN_PK "age1xvcn8sjakr3lharam8yk5jcxtj04aleadsqv5ncyl9xuw6smncas3lznca"

static void test_age_keys(void **state)
{
    (void)state;
    struct age_identity id;
    struct age_recipient r, r2;
    char s[AGE_IDENTITY_STRLEN + 1];
    assert_int_equal(age_identity_parse(KEYGEN_ID, strlen(KEYGEN_ID), &id), 0);
    age_identity_recipient(&id, &r);
    assert_int_equal(age_recipient_format(&r, s, sizeof s), 0);
    assert_string_equal(s, KEYGEN_PK);
    assert_int_equal(strlen(s), AGE_RECIPIENT_STRLEN);
    assert_int_equal(age_identity_format(&id, s, sizeof s), 0);
    assert_string_equal(s, KEYGEN_ID);
    assert_int_equal(strlen(s), AGE_IDENTITY_STRLEN);
    assert_int_equal(age_recipient_parse(KEYGEN_PK, strlen(KEYGEN_PK), &r2), 0);
    assert_memory_equal(r.pk, r2.pk, sizeof r.pk);
    /* age's case rule: all lower or all upper, never mixed. */
    char t[AGE_IDENTITY_STRLEN + 1];
    for (size_t i = 0; i <= AGE_IDENTITY_STRLEN; i++)
        t[i] = (char)tolower((unsigned char)KEYGEN_ID[i]);
    assert_int_equal(age_identity_parse(t, strlen(t), &id), 0);
    t[3] = 'X';
    assert_int_equal(age_identity_parse(t, strlen(t), &id), -EINVAL);
    /* A recipient is not an identity and back; a short buffer is refused. */
    assert_int_equal(age_identity_parse(KEYGEN_PK, strlen(KEYGEN_PK), &id), -EINVAL);
    assert_int_equal(age_recipient_parse(KEYGEN_ID, strlen(KEYGEN_ID), &r), -EINVAL);
    assert_int_equal(age_recipient_format(&r, s, AGE_RECIPIENT_STRLEN), -ENOSPC);
    /* A wrong key length under the right hrp. */
    uint8_t d31[31] = {0};
    assert_int_equal(bech32_encode(s, sizeof s, "age", d31, sizeof d31, false), 0);
    assert_int_equal(age_recipient_parse(s, strlen(s), &r), -EINVAL);
    /* keygen: parse(format(k)) == k */
    struct age_identity k, k2;
    assert_int_equal(age_keygen(&k), 0);
    assert_int_equal(age_identity_format(&k, s, sizeof s), 0);
    assert_int_equal(age_identity_parse(s, strlen(s), &k2), 0);
    assert_memory_equal(&k, &k2, sizeof k);
    age_identity_wipe(&k, 1);
    age_identity_wipe(&k2, 1);
    age_identity_wipe(&id, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bip173_valid), cmocka_unit_test(test_bip173_invalid),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_age_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
