/* fuzz_age_header.c - libFuzzer target for common/age.c's header parser and decryptor. The
 * input is parsed as a header (invariants on lengths and counts; a parsed header parses the
 * same when cut to its own length), then fed to a decryptor holding the seeds' identity in
 * two pieces (split at a point taken from the input's last byte): it must end in success or
 * one of the documented errors. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "age.h"
#include "bounds.h"

/* The key tests/fuzz/seeds/fuzz_age_header/ files are encrypted to (test key only). */
#define FUZZ_ID "AGE-SECRET-KEY-1KMRWK7MXZR8ZXMJCZ8M8DXXAE2LQA4Q0X5TA5P3AMA43XTNTZWHQJ9LG2V"
#define FUZZ_MAX_INPUT (AGE_MAX_HEADER + 3 * (AGE_CHUNK + 16))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int null_sink(void *arg, const uint8_t *buf, size_t len)
{
    (void)buf;
    *(size_t *)arg += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct age_header h, h2;
    static struct age_identity id;
    static bool have_id;
    char err[AGE_ERR_LEN];
    if (size > FUZZ_MAX_INPUT)
        return 0;
    if (!have_id) {
        if (age_identity_parse(FUZZ_ID, strlen(FUZZ_ID), &id) != 0)
            abort();
        have_id = true;
    }
    int rc = age_header_parse(data, size, &h, err, sizeof err);
    switch (rc) {
    case 0:
        if (h.len > size || h.len > AGE_MAX_HEADER || h.mac_input_len >= h.len || h.n_stanzas < 1 ||
            h.n_stanzas > AGE_MAX_STANZAS || h.n_x25519 > h.n_stanzas)
            abort();
        if (age_header_parse(data, h.len, &h2, err, sizeof err) != 0 || h2.len != h.len ||
            h2.n_x25519 != h.n_x25519 || memcmp(h2.mac, h.mac, sizeof h.mac) != 0)
            abort();
        break;
    case -EAGAIN:
        if (size >= AGE_MAX_HEADER)
            abort();
        break;
    case -EBADMSG:
    case -E2BIG:
    case -EPROTONOSUPPORT:
        if (!err[0])
            abort();
        break;
    default:
        abort();
    }
    struct age_dec *d = NULL;
    size_t out = 0;
    if (age_dec_new(&d, &id, 1, null_sink, &out) != 0)
        abort();
    size_t cut = size ? (size_t)data[size - 1] * 1031 % (size + 1) : 0;
    int r = age_dec_write(d, data, cut);
    if (r == 0)
        r = age_dec_write(d, data + cut, size - cut);
    if (r == 0)
        r = age_dec_finish(d);
    if (r != 0 && r != -EBADMSG && r != -E2BIG && r != -EPROTONOSUPPORT && r != -ENOKEY)
        abort();
    if (r != 0 && !age_dec_error(d)[0])
        abort();
    /* Success: the header parsed from the whole input, and no more came out than went in. */
    if (r == 0 && (rc != 0 || out > size))
        abort();
    age_dec_free(d);
    return 0;
}
