/* fuzz_bech32.c - libFuzzer target for common/bech32.c and the age key parsers built on it.
 * Invariants: a decoded string re-encodes to itself (case folded), data never exceeds its
 * buffer, and the key parsers accept only what bech32 accepts with their hrp and length; the
 * same bytes as recipients and identity file text. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "age.h"
#include "bech32.h"
#include "bounds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hrp[BECH32_MAX_HRP + 1], again[BECH32_MAX_LEN + 1];
    uint8_t out[BECH32_MAX_LEN];
    size_t n = 0;
    if (size > 2 * BECH32_MAX_LEN)
        return 0;
    const char *s = (const char *)data;
    int rc = bech32_decode(s, size, hrp, sizeof hrp, out, sizeof out, &n);
    if (rc != 0 && rc != -EINVAL && rc != -ENOSPC)
        abort();
    if (rc == 0) {
        if (n > size || strlen(hrp) >= size)
            abort();
        bool upper = false;
        for (size_t i = 0; i < size; i++)
            upper |= isupper(data[i]) != 0;
        if (bech32_encode(again, sizeof again, hrp, out, n, upper) != 0)
            abort();
        if (strlen(again) != size || memcmp(again, s, size) != 0)
            abort();
    }
    struct age_recipient r;
    struct age_identity id;
    if (age_recipient_parse(s, size, &r) == 0 &&
        (rc != 0 || n != AGE_KEY_LEN || strcmp(hrp, "age") != 0))
        abort();
    if (age_identity_parse(s, size, &id) == 0) {
        if (rc != 0 || n != AGE_KEY_LEN || strcmp(hrp, "age-secret-key-") != 0)
            abort();
        age_identity_wipe(&id, 1);
    }
    /* Key files: the same bytes as file text must not crash either. */
    struct age_recipient rs[4];
    size_t cnt = 0;
    char err[AGE_ERR_LEN];
    rc = age_recipients_parse_text(s, size, rs, 4, &cnt, err, sizeof err);
    if ((rc == 0) != (cnt > 0) || cnt > 4)
        abort();
    struct age_identity is[4];
    rc = age_identities_parse_text(s, size, is, 4, &cnt, err, sizeof err);
    if ((rc == 0) != (cnt > 0) || cnt > 4)
        abort();
    age_identity_wipe(is, 4);
    return 0;
}
