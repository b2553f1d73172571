/* bech32.c - BIP-173 bech32 encode/decode with 8-bit payload conversion, for age keys.
 * No length beyond BECH32_MAX_LEN and no segwit rules (witness versions are bitcoin's); the
 * key types built on it live in age.c. */
#include "bech32.h"

#include <errno.h>
#include <string.h>

#include "bounds.h"

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t chk, uint8_t v)
{
    static const uint32_t gen[5] = {0x3b6a57b2u, 0x26508e6du, 0x1ea119fau, 0x3d4233ddu,
                                    0x2a1462b3u};
    uint8_t top = (uint8_t)(chk >> 25);
    chk = ((chk & 0x1ffffffu) << 5) ^ v;
    for (int i = 0; i < 5; i++)
        if ((top >> i) & 1)
            chk ^= gen[i];
    return chk;
}

/* Checksum state after the expanded hrp (high bits, 0, low bits); hrp is lower case. */
static uint32_t polymod_hrp(const char *hrp, size_t n)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (uint8_t)((unsigned char)hrp[i] >> 5));
    chk = polymod_step(chk, 0);
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (uint8_t)((unsigned char)hrp[i] & 31));
    return chk;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int charset_rev(int c)
{
    const char *p = strchr(charset, lower(c));
    return (c != 0 && p) ? (int)(p - charset) : -1;
}

int bech32_encode(char *out, size_t cap, const char *hrp, const uint8_t *data, size_t len,
                  bool upper)
{
    size_t hn = strlen(hrp);
    if (hn < 1 || hn > BECH32_MAX_HRP)
        return -EINVAL;
    char h[BECH32_MAX_HRP + 1];
    for (size_t i = 0; i < hn; i++) {
        int c = (unsigned char)hrp[i];
        if (c < 33 || c > 126)
            return -EINVAL;
        h[i] = (char)lower(c);
    }
    size_t groups = (len * 8 + 4) / 5;
    size_t total = hn + 1 + groups + 6;
    if (total > BECH32_MAX_LEN || total + 1 > cap)
        return -ENOSPC;
    uint32_t chk = polymod_hrp(h, hn);
    size_t o = 0;
    memcpy(out, h, hn);
    o = hn;
    out[o++] = '1';
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            uint8_t v = (uint8_t)((acc >> bits) & 31);
            chk = polymod_step(chk, v);
            out[o++] = charset[v];
        }
    }
    if (bits > 0) {
        uint8_t v = (uint8_t)((acc << (5 - bits)) & 31);
        chk = polymod_step(chk, v);
        out[o++] = charset[v];
    }
    for (int i = 0; i < 6; i++)
        chk = polymod_step(chk, 0);
    chk ^= 1;
    for (int i = 0; i < 6; i++)
        out[o++] = charset[(chk >> (5 * (5 - i))) & 31];
    out[o] = '\0';
    if (upper)
        for (size_t i = 0; i < o; i++)
            if (out[i] >= 'a' && out[i] <= 'z')
                out[i] = (char)(out[i] - 32);
    return 0;
}

int bech32_decode(const char *s, size_t slen, char *hrp, size_t hrp_cap, uint8_t *data,
                  size_t data_cap, size_t *data_len)
{
    if (slen < 8 || slen > BECH32_MAX_LEN)
        return -EINVAL;
    bool has_lower = false, has_upper = false;
    size_t sep = 0;
    for (size_t i = 0; i < slen; i++) {
        int c = (unsigned char)s[i];
        if (c < 33 || c > 126)
            return -EINVAL;
        has_lower |= (c >= 'a' && c <= 'z');
        has_upper |= (c >= 'A' && c <= 'Z');
        if (c == '1')
            sep = i;
    }
    if (has_lower && has_upper)
        return -EINVAL;
    if (sep < 1 || sep > BECH32_MAX_HRP || slen - sep - 1 < 6)
        return -EINVAL;
    if (sep + 1 > hrp_cap)
        return -ENOSPC;
    for (size_t i = 0; i < sep; i++)
        hrp[i] = (char)lower((unsigned char)s[i]);
    hrp[sep] = '\0';
    uint32_t chk = polymod_hrp(hrp, sep);
    size_t ndata = slen - sep - 1 - 6, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = sep + 1; i < slen; i++) {
        int v = charset_rev((unsigned char)s[i]);
        if (v < 0)
            return -EINVAL;
        chk = polymod_step(chk, (uint8_t)v);
        if (i - sep - 1 >= ndata)
            continue; /* checksum characters */
        acc = ((acc << 5) | (uint32_t)v) & 0xfffu;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (o >= data_cap)
                return -ENOSPC;
            data[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (chk != 1)
        return -EINVAL;
    /* Leftover bits are padding: fewer than 5 and all zero (BIP-173's convertbits). */
    if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
        return -EINVAL;
    *data_len = o;
    return 0;
}
