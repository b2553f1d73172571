/* hex.h - the project's one hexadecimal codec: lower-case encoding of bytes and of a fixed-width
 * number, decoding of either case. Percent-decoding and JSON escaping use it; what a hex string
 * means (a digest, a chunk size) is the caller's. */
#ifndef ER_HEX_H
#define ER_HEX_H

#include <stddef.h>
#include <stdint.h>

/* "0123456789abcdef". */
extern const char hex_digits[16];

/* Write 2*n lower-case digits of in[0..n) and a NUL to out (room for 2*n+1). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* Write v as exactly `width` lower-case digits (1..16, leading zeros), no NUL. */
void hex_put_u64(char *out, uint64_t v, unsigned width);

/* The value of one hex digit (either case), or -1 when c is not one. */
int hex_value(char c);

/* Decode the n_digits digits of in into out[0..n_digits/2). Returns 0, or -EINVAL on an odd
 * count, a non-hex digit or out_len < n_digits/2 (out is then partly written). */
int hex_decode(const char *in, size_t n_digits, uint8_t *out, size_t out_len);

#endif
