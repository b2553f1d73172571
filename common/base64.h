/* base64.h - the project's one base64 codec: the standard alphabet (RFC 4648 section 4), padded
 * or unpadded, with a strict decoder (canonical only: no stray characters, no non-zero trailing
 * bits). What the bytes mean (an age key, an Azure account key) is the caller's. */
#ifndef ER_BASE64_H
#define ER_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters of the encoding of n bytes, padded to a multiple of 4 or not. */
#define BASE64_PADDED_LEN(n) (4 * (((n) + 2) / 3))
#define BASE64_UNPADDED_LEN(n) ((4 * (n) + 2) / 3)

/* The value (0..63) of one base64 character, or -1 when c is not one ('=' is not). */
int base64_value(uint8_t c);

/* Write the encoding of in[0..n) to out (room for BASE64_PADDED_LEN(n) or
 * BASE64_UNPADDED_LEN(n) characters); no NUL. Returns the characters written. */
size_t base64_encode(const uint8_t *in, size_t n, char *out, bool pad);

/* Decode in[0..n) into out (cap bytes; out NULL only validates). padded: n is a multiple of 4
 * and ends in at most two '='; unpadded: no '=' at all. Returns the byte count, or -1 for a
 * bad character, an impossible length, non-zero trailing bits, or too little room. */
long base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, bool padded);

#endif
