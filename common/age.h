/* age.h - the age v1 file format (age-encryption.org/v1) for X25519 keys: key codec, key
 * files, a streaming encryptor and decryptor writing through a callback. Built on OpenSSL 3.
 * Passphrase (scrypt), ssh and plugin recipients and the ASCII armor are refused, not
 * implemented; compression and hashing of the stream are codec.c's. */
#ifndef ER_AGE_H
#define ER_AGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#define AGE_KEY_LEN 32
#define AGE_RECIPIENT_STRLEN 62 /* "age1" + 52 data + 6 checksum characters */
#define AGE_IDENTITY_STRLEN 74  /* "AGE-SECRET-KEY-1" + 52 + 6 */
#define AGE_ERR_LEN 160         /* size of the reason buffers below */

struct age_recipient {
    uint8_t pk[AGE_KEY_LEN]; /* X25519 public key */
};

struct age_identity {
    uint8_t sk[AGE_KEY_LEN]; /* X25519 secret key: wipe with age_identity_wipe */
    uint8_t pk[AGE_KEY_LEN]; /* its public key */
};

/* Output callback of the encryptor and decryptor (and of codec.c's stages): consumes len
 * bytes; returns 0 or a negative errno, which aborts the stream and is returned by the call
 * that was writing. */
typedef int (*age_sink_fn)(void *arg, const uint8_t *buf, size_t len);

/* ---- keys --------------------------------------------------------------------------------- */

/* Parses one "age1..." string (len bytes, no surrounding space). 0 or -EINVAL. */
int age_recipient_parse(const char *s, size_t len, struct age_recipient *out);
/* Parses one "AGE-SECRET-KEY-1..." string and derives its public key. 0 or -EINVAL. */
int age_identity_parse(const char *s, size_t len, struct age_identity *out);
/* Format as age does (recipient lower case, identity upper case), NUL-terminated; cap must be
 * at least AGE_RECIPIENT_STRLEN + 1 / AGE_IDENTITY_STRLEN + 1. 0 or -ENOSPC. */
int age_recipient_format(const struct age_recipient *r, char *out, size_t cap);
int age_identity_format(const struct age_identity *id, char *out, size_t cap);
/* A new random identity (what age-keygen does). 0 or -EIO. */
int age_keygen(struct age_identity *out);
/* The recipient of an identity. */
void age_identity_recipient(const struct age_identity *id, struct age_recipient *out);
/* Wipes n identities (OPENSSL_cleanse). */
void age_identity_wipe(struct age_identity *ids, size_t n);

/* Key files. A recipients file holds one "age1..." per line; an identity file one
 * "AGE-SECRET-KEY-1..." per line (age-keygen's output). In both, lines starting with '#' and
 * blank lines are skipped, and space around a key is ignored. At most cap keys
 * (<= AGE_MAX_RECIPIENTS / AGE_MAX_IDENTITIES), each line < AGE_MAX_KEY_LINE, the file
 * <= AGE_MAX_KEY_FILE. Returns 0 with *n >= 1, or -EINVAL (a bad line, or no key at all),
 * -E2BIG (too many keys, a line or the file too long), or the -errno of open/read; err (errlen
 * bytes) says why and names the line ("line 3: ..."), never quoting a secret key. Identity text
 * read from a file is wiped before return. */
int age_recipients_parse_text(const char *text, size_t len, struct age_recipient *out, size_t cap,
                              size_t *n, char *err, size_t errlen);
int age_recipients_load(const char *path, struct age_recipient *out, size_t cap, size_t *n,
                        char *err, size_t errlen);
int age_identities_parse_text(const char *text, size_t len, struct age_identity *out, size_t cap,
                              size_t *n, char *err, size_t errlen);
int age_identities_load(const char *path, struct age_identity *out, size_t cap, size_t *n,
                        char *err, size_t errlen);

/* ---- encryption --------------------------------------------------------------------------- */

struct age_enc;

/* An encryptor to n (1..AGE_MAX_RECIPIENTS) X25519 recipients writing the age file through
 * sink(sink_arg, ...). Nothing is written before the first age_enc_write/age_enc_finish.
 * Memory: one 64 KiB chunk in and out (~130 KiB). Returns 0, -EINVAL (n out of range),
 * -ENOMEM or -EIO (OpenSSL failure). */
int age_enc_new(struct age_enc **out, const struct age_recipient *recipients, size_t n,
                age_sink_fn sink, void *sink_arg);
/* Encrypts len bytes; full chunks go to the sink as soon as the next byte is known to follow.
 * Returns 0, a sink error, -EIO, or -EINVAL after finish or a previous error (errors stick). */
int age_enc_write(struct age_enc *e, const void *buf, size_t len);
/* Writes the final chunk (the header too if nothing was written). 0 or as above. */
int age_enc_finish(struct age_enc *e);
/* Frees (and wipes the keys of) an encryptor, finished or not; NULL is a no-op. */
void age_enc_free(struct age_enc *e);

/* ---- decryption --------------------------------------------------------------------------- */

struct age_dec;

/* A decryptor with n (1..AGE_MAX_IDENTITIES) identities (copied: the caller may wipe its own)
 * writing plaintext through sink. Only authenticated plaintext reaches the sink, chunk by
 * chunk; the stream is complete and intact only when age_dec_finish returns 0: a consumer
 * must treat anything written before a failing finish as untrusted. Memory: the header
 * (<= AGE_MAX_HEADER) and one chunk in and out. 0, -EINVAL, -ENOMEM. */
int age_dec_new(struct age_dec **out, const struct age_identity *ids, size_t n, age_sink_fn sink,
                void *sink_arg);
/* Feeds len bytes of the age file. Returns 0 or (errors stick, age_dec_error says why):
 *   -EPROTONOSUPPORT  armored input, another format version, or no X25519 stanza (passphrase
 *                     / scrypt, ssh, plugin recipients)
 *   -E2BIG            header larger than AGE_MAX_HEADER or more than AGE_MAX_STANZAS stanzas
 *   -EBADMSG          malformed header, header MAC mismatch, a chunk that fails
 *                     authentication, data after the final chunk
 *   -ENOKEY           none of the identities opens any X25519 stanza
 *   -EIO              OpenSSL failure; or the sink's error. */
int age_dec_write(struct age_dec *d, const void *buf, size_t len);
/* Ends the input: authenticates the final chunk. -EBADMSG when the file is truncated
 * anywhere (header, nonce, mid-chunk, or at a chunk boundary with the final chunk missing),
 * or any error above. */
int age_dec_finish(struct age_dec *d);
/* Why the last call failed ("" when none). */
const char *age_dec_error(const struct age_dec *d);
void age_dec_free(struct age_dec *d);

/* ---- header parser (exposed for the decryptor's tests and fuzz target) --------------------- */

struct age_x25519_stanza {
    uint8_t share[AGE_KEY_LEN]; /* the ephemeral share (argument) */
    uint8_t body[32];           /* the wrapped 16-byte file key + 16-byte tag */
};

struct age_header {
    size_t len;           /* header bytes including the MAC line's '\n' */
    size_t mac_input_len; /* bytes the MAC covers: up to and including "---" */
    uint8_t mac[32];
    size_t n_stanzas;                                 /* all stanzas */
    size_t n_x25519;                                  /* of which X25519 */
    struct age_x25519_stanza x25519[AGE_MAX_STANZAS]; /* in header order */
    char other_type[32]; /* the first stanza type that is not X25519 ("" if none) */
};

/* Parses the header at the start of buf (len bytes). Returns 0 (h filled), -EAGAIN (need more
 * bytes: no error so far and len < AGE_MAX_HEADER), or -EPROTONOSUPPORT, -E2BIG, -EBADMSG as
 * for age_dec_write, with err (errlen bytes) saying why. Checks syntax only (canonical base64,
 * stanza and body rules), not the MAC. */
int age_header_parse(const uint8_t *buf, size_t len, struct age_header *h, char *err,
                     size_t errlen);

#endif
