/* bech32.h - the bech32 string codec (BIP-173 checksum, not bech32m) that age uses for its
 * keys: "age1..." recipients and "AGE-SECRET-KEY-1..." identities. What the payload means is
 * left to age.c. */
#ifndef ER_BECH32_H
#define ER_BECH32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encodes hrp (1..BECH32_MAX_HRP characters 33..126, stored as given after case folding) and
 * len bytes of data as a NUL-terminated bech32 string in out, all lower case, or all upper
 * case when upper is true. Returns 0, -EINVAL for a bad hrp, -ENOSPC when out (cap bytes with
 * the NUL) is too small or the result would exceed BECH32_MAX_LEN. */
int bech32_encode(char *out, size_t cap, const char *hrp, const uint8_t *data, size_t len,
                  bool upper);

/* Decodes the slen bytes of s (no NUL needed). Rules: length 8..BECH32_MAX_LEN, characters
 * 33..126, not mixed case, the last '1' separates a non-empty hrp from at least 6 data
 * characters of the bech32 alphabet, valid checksum, and the 5-bit groups convert to whole
 * bytes (at most 4 padding bits, all zero). On success writes the hrp in lower case,
 * NUL-terminated, to hrp (hrp_cap bytes), the bytes to data (data_cap) and their count to
 * *data_len; returns 0, -EINVAL for any malformed string, -ENOSPC when a buffer is too small. */
int bech32_decode(const char *s, size_t slen, char *hrp, size_t hrp_cap, uint8_t *data,
                  size_t data_cap, size_t *data_len);

#endif
