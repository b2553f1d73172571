/* age.c - age v1 (age-encryption.org/v1) with X25519 recipients on OpenSSL 3: key strings and
 * files, header writer/parser, header MAC, and the ChaCha20-Poly1305 STREAM payload in 64 KiB
 * chunks, encrypted and decrypted through a write callback. The bech32 codec is bech32.c's;
 * compression and digests of whole streams are codec.c's. */
#include "age.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "base64.h"
#include "bech32.h"
#include "errbuf.h"
#include "readall.h"

#define AGE_INTRO "age-encryption.org/v1\n"
#define AGE_ARMOR "-----BEGIN AGE ENCRYPTED FILE-----"
#define AGE_FILE_KEY_LEN 16
#define AGE_TAG_LEN 16
#define AGE_NONCE_LEN 16 /* payload nonce (HKDF salt) */
#define AGE_B64_KEY 43   /* unpadded base64 of 32 bytes */
#define AGE_B64_LINE 64  /* stanza body line */
#define AGE_CT_CHUNK (AGE_CHUNK + AGE_TAG_LEN)
#define AGE_X25519_INFO "age-encryption.org/v1/X25519"
#define AGE_HRP_RECIPIENT "age"
#define AGE_HRP_IDENTITY "age-secret-key-"

/* ---- primitives --------------------------------------------------------------------------- */

static int x25519_public(uint8_t pk[AGE_KEY_LEN], const uint8_t sk[AGE_KEY_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, AGE_KEY_LEN);
    size_t n = AGE_KEY_LEN;
    int rc = (k && EVP_PKEY_get_raw_public_key(k, pk, &n) == 1 && n == AGE_KEY_LEN) ? 0 : -EIO;
    EVP_PKEY_free(k);
    return rc;
}

/* out = X25519(sk, pk); -EBADMSG if the result is all zeros (a low-order point). */
static int x25519(uint8_t out[AGE_KEY_LEN], const uint8_t sk[AGE_KEY_LEN],
                  const uint8_t pk[AGE_KEY_LEN])
{
    EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, AGE_KEY_LEN);
    EVP_PKEY *pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk, AGE_KEY_LEN);
    EVP_PKEY_CTX *cx = priv ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
    size_t n = AGE_KEY_LEN;
    int rc = -EIO;
    if (cx && pub && EVP_PKEY_derive_init(cx) == 1 && EVP_PKEY_derive_set_peer(cx, pub) == 1 &&
        EVP_PKEY_derive(cx, out, &n) == 1 && n == AGE_KEY_LEN) {
        uint8_t z = 0;
        for (size_t i = 0; i < AGE_KEY_LEN; i++)
            z |= out[i];
        rc = z ? 0 : -EBADMSG;
    } else {
        rc = -EBADMSG; /* OpenSSL refuses low-order peers itself */
    }
    EVP_PKEY_CTX_free(cx);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    return rc;
}

static int hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen,
                       const uint8_t *salt, size_t saltlen, const char *info)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *cx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[5], *q = p;
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)ikm, ikmlen);
    if (saltlen) /* no salt: HKDF uses HashLen zero bytes, the same as an empty salt */
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt,
                                                 saltlen);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info,
                                             strlen(info));
    *q = OSSL_PARAM_construct_end();
    int rc = (cx && EVP_KDF_derive(cx, out, outlen, p) == 1) ? 0 : -EIO;
    EVP_KDF_CTX_free(cx);
    EVP_KDF_free(kdf);
    return rc;
}

static int header_mac(uint8_t mac[32], const uint8_t file_key[AGE_FILE_KEY_LEN], const uint8_t *hdr,
                      size_t len)
{
    uint8_t key[32];
    size_t n = 0;
    int rc = hkdf_sha256(key, sizeof key, file_key, AGE_FILE_KEY_LEN, NULL, 0, "header");
    if (rc == 0 &&
        (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof key, hdr, len, mac, 32, &n) ||
         n != 32))
        rc = -EIO;
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* One-shot ChaCha20-Poly1305 with key, 12-byte nonce, no AAD. Seal: out = ct || tag (n + 16
 * bytes). Open: in = ct || tag (n + 16 bytes), out = n bytes; -EBADMSG on a bad tag. */
static int aead(EVP_CIPHER_CTX *cx, bool seal, const uint8_t *nonce, const uint8_t *in, size_t n,
                uint8_t *out)
{
    int l = 0, f = 0;
    if (n > INT32_MAX)
        return -EINVAL;
    if (seal) {
        if (EVP_EncryptInit_ex(cx, NULL, NULL, NULL, nonce) != 1 ||
            EVP_EncryptUpdate(cx, out, &l, in, (int)n) != 1 ||
            EVP_EncryptFinal_ex(cx, out + l, &f) != 1 ||
            EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_GET_TAG, AGE_TAG_LEN, out + n) != 1)
            return -EIO;
        return 0;
    }
    uint8_t tag[AGE_TAG_LEN];
    memcpy(tag, in + n, AGE_TAG_LEN);
    if (EVP_DecryptInit_ex(cx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_SET_TAG, AGE_TAG_LEN, tag) != 1 ||
        EVP_DecryptUpdate(cx, out, &l, in, (int)n) != 1)
        return -EIO;
    if (EVP_DecryptFinal_ex(cx, out + l, &f) != 1) {
        OPENSSL_cleanse(out, n);
        return -EBADMSG;
    }
    return 0;
}

static EVP_CIPHER_CTX *aead_new(const uint8_t key[32], bool seal)
{
    EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
    int ok = cx && (seal ? EVP_EncryptInit_ex(cx, EVP_chacha20_poly1305(), NULL, key, NULL)
                         : EVP_DecryptInit_ex(cx, EVP_chacha20_poly1305(), NULL, key, NULL));
    if (!ok) {
        EVP_CIPHER_CTX_free(cx);
        return NULL;
    }
    return cx;
}

static int aead_once(bool seal, const uint8_t key[32], const uint8_t *in, size_t n, uint8_t *out)
{
    static const uint8_t zero[12];
    EVP_CIPHER_CTX *cx = aead_new(key, seal);
    if (!cx)
        return -EIO;
    int rc = aead(cx, seal, zero, in, n, out);
    EVP_CIPHER_CTX_free(cx);
    return rc;
}

/* X25519 wrap key: HKDF(shared, share || recipient, "age-encryption.org/v1/X25519"). */
static int wrap_key(uint8_t key[32], const uint8_t shared[AGE_KEY_LEN],
                    const uint8_t share[AGE_KEY_LEN], const uint8_t recipient[AGE_KEY_LEN])
{
    uint8_t salt[2 * AGE_KEY_LEN];
    memcpy(salt, share, AGE_KEY_LEN);
    memcpy(salt + AGE_KEY_LEN, recipient, AGE_KEY_LEN);
    return hkdf_sha256(key, 32, shared, AGE_KEY_LEN, salt, sizeof salt, AGE_X25519_INFO);
}

/* STREAM nonce: 11-byte big-endian counter, then 1 on the final chunk. */
static void stream_nonce(uint8_t nonce[12], uint64_t counter, bool last)
{
    memset(nonce, 0, 12);
    for (int i = 0; i < 8; i++)
        nonce[10 - i] = (uint8_t)(counter >> (8 * i));
    nonce[11] = last ? 1 : 0;
}

/* ---- keys --------------------------------------------------------------------------------- */

int age_recipient_parse(const char *s, size_t len, struct age_recipient *out)
{
    char hrp[BECH32_MAX_HRP + 1];
    uint8_t data[AGE_KEY_LEN];
    size_t n = 0;
    if (bech32_decode(s, len, hrp, sizeof hrp, data, sizeof data, &n) != 0 || n != AGE_KEY_LEN ||
        strcmp(hrp, AGE_HRP_RECIPIENT) != 0)
        return -EINVAL;
    memcpy(out->pk, data, AGE_KEY_LEN);
    return 0;
}

int age_identity_parse(const char *s, size_t len, struct age_identity *out)
{
    char hrp[BECH32_MAX_HRP + 1];
    uint8_t data[AGE_KEY_LEN];
    size_t n = 0;
    int rc = -EINVAL;
    if (bech32_decode(s, len, hrp, sizeof hrp, data, sizeof data, &n) == 0 && n == AGE_KEY_LEN &&
        strcmp(hrp, AGE_HRP_IDENTITY) == 0) {
        memcpy(out->sk, data, AGE_KEY_LEN);
        rc = x25519_public(out->pk, out->sk) == 0 ? 0 : -EINVAL;
        if (rc != 0)
            OPENSSL_cleanse(out, sizeof *out);
    }
    OPENSSL_cleanse(data, sizeof data);
    return rc;
}

int age_recipient_format(const struct age_recipient *r, char *out, size_t cap)
{
    return bech32_encode(out, cap, AGE_HRP_RECIPIENT, r->pk, AGE_KEY_LEN, false);
}

int age_identity_format(const struct age_identity *id, char *out, size_t cap)
{
    return bech32_encode(out, cap, AGE_HRP_IDENTITY, id->sk, AGE_KEY_LEN, true);
}

int age_keygen(struct age_identity *out)
{
    if (RAND_priv_bytes(out->sk, AGE_KEY_LEN) != 1 || x25519_public(out->pk, out->sk) != 0) {
        OPENSSL_cleanse(out, sizeof *out);
        return -EIO;
    }
    return 0;
}

void age_identity_recipient(const struct age_identity *id, struct age_recipient *out)
{
    memcpy(out->pk, id->pk, AGE_KEY_LEN);
}

void age_identity_wipe(struct age_identity *ids, size_t n)
{
    if (ids && n)
        OPENSSL_cleanse(ids, n * sizeof *ids);
}

/* ---- key files ---------------------------------------------------------------------------- */

/* Calls one(arg, key, keylen) for each key line of text (comments, blanks skipped, space
 * trimmed); one returns 0 or a negative errno and fills err with the reason (without the line
 * number, added here). */
typedef int (*key_line_fn)(void *arg, const char *s, size_t len, char *err, size_t errlen);

static int each_key_line(const char *text, size_t len, key_line_fn one, void *arg, char *err,
                         size_t errlen)
{
    size_t pos = 0, lineno = 0;
    if (len > AGE_MAX_KEY_FILE) {
        errbuf_set(err, errlen, "file longer than %u bytes", AGE_MAX_KEY_FILE);
        return -E2BIG;
    }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        lineno++;
        if (end - pos >= AGE_MAX_KEY_LINE) {
            errbuf_set(err, errlen, "line %zu: longer than %u bytes", lineno, AGE_MAX_KEY_LINE);
            return -E2BIG;
        }
        size_t a = pos, b = end;
        while (a < b && (text[a] == ' ' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
            b--;
        pos = end + 1;
        if (a == b || text[a] == '#')
            continue;
        char why[AGE_ERR_LEN] = "";
        int rc = one(arg, text + a, b - a, why, sizeof why);
        if (rc != 0) {
            errbuf_set(err, errlen, "line %zu: %s", lineno, why);
            return rc;
        }
    }
    return 0;
}

struct key_acc {
    void *out;
    size_t cap, n;
};

static int one_recipient(void *arg, const char *s, size_t len, char *err, size_t errlen)
{
    struct key_acc *k = arg;
    struct age_recipient r;
    if (age_recipient_parse(s, len, &r) != 0) {
        if (len > 4 && strncmp(s, "ssh-", 4) == 0)
            errbuf_set(err, errlen, "ssh keys are not supported (X25519 age1... recipients only)");
        else if (len > 4 && strncmp(s, "age1", 4) == 0 && len != AGE_RECIPIENT_STRLEN)
            errbuf_set(err, errlen,
                       "not an X25519 recipient (plugin recipients are not supported)");
        else
            errbuf_set(err, errlen, "not a valid age1... X25519 recipient");
        return -EINVAL;
    }
    if (k->n >= k->cap) {
        errbuf_set(err, errlen, "more than %zu recipients", k->cap);
        return -E2BIG;
    }
    ((struct age_recipient *)k->out)[k->n++] = r;
    return 0;
}

static int one_identity(void *arg, const char *s, size_t len, char *err, size_t errlen)
{
    struct key_acc *k = arg;
    struct age_identity id;
    if (age_identity_parse(s, len, &id) != 0) {
        if (len > 4 && (strncmp(s, "ssh-", 4) == 0 || strncmp(s, "-----", 5) == 0))
            errbuf_set(err, errlen, "ssh keys are not supported (AGE-SECRET-KEY-1... only)");
        else
            errbuf_set(err, errlen, "not a valid AGE-SECRET-KEY-1... X25519 identity");
        return -EINVAL;
    }
    if (k->n >= k->cap) {
        OPENSSL_cleanse(&id, sizeof id);
        errbuf_set(err, errlen, "more than %zu identities", k->cap);
        return -E2BIG;
    }
    ((struct age_identity *)k->out)[k->n++] = id;
    OPENSSL_cleanse(&id, sizeof id);
    return 0;
}

static int parse_keys(const char *text, size_t len, void *out, size_t cap, size_t *n,
                      key_line_fn one, const char *what, char *err, size_t errlen)
{
    struct key_acc k = {out, cap, 0};
    int rc = each_key_line(text, len, one, &k, err, errlen);
    if (rc == 0 && k.n == 0) {
        errbuf_set(err, errlen, "no %s found", what);
        rc = -EINVAL;
    }
    *n = rc == 0 ? k.n : 0;
    return rc;
}

int age_recipients_parse_text(const char *text, size_t len, struct age_recipient *out, size_t cap,
                              size_t *n, char *err, size_t errlen)
{
    if (cap > AGE_MAX_RECIPIENTS)
        cap = AGE_MAX_RECIPIENTS;
    return parse_keys(text, len, out, cap, n, one_recipient, "age1... recipient", err, errlen);
}

int age_identities_parse_text(const char *text, size_t len, struct age_identity *out, size_t cap,
                              size_t *n, char *err, size_t errlen)
{
    if (cap > AGE_MAX_IDENTITIES)
        cap = AGE_MAX_IDENTITIES;
    int rc = parse_keys(text, len, out, cap, n, one_identity, "AGE-SECRET-KEY-1... identity", err,
                        errlen);
    if (rc != 0)
        age_identity_wipe(out, cap);
    return rc;
}

/* Reads a whole key file (<= AGE_MAX_KEY_FILE) into a new buffer of *len bytes. */
static int read_key_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *b = NULL;
    size_t n = 0;
    int rc = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    b = malloc(AGE_MAX_KEY_FILE + 1);
    if (!b) {
        rc = -ENOMEM;
        goto out;
    }
    rc = readall(fd, b, AGE_MAX_KEY_FILE + 1, &n);
    if (rc == -EFBIG) {
        rc = -E2BIG;
        errbuf_set(err, errlen, "%s: longer than %u bytes", path, AGE_MAX_KEY_FILE);
    } else if (rc != 0) {
        errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && b) {
        OPENSSL_cleanse(b, n);
        free(b);
        b = NULL;
    }
    *buf = b;
    *len = n;
    return rc;
}

static int load_keys(const char *path, bool identities, void *out, size_t cap, size_t *n, char *err,
                     size_t errlen)
{
    char *buf = NULL, why[AGE_ERR_LEN] = "";
    size_t len = 0;
    *n = 0;
    int rc = read_key_file(path, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = identities ? age_identities_parse_text(buf, len, out, cap, n, why, sizeof why)
                    : age_recipients_parse_text(buf, len, out, cap, n, why, sizeof why);
    if (rc != 0)
        errbuf_set(err, errlen, "%s: %s", path, why);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

int age_recipients_load(const char *path, struct age_recipient *out, size_t cap, size_t *n,
                        char *err, size_t errlen)
{
    return load_keys(path, false, out, cap, n, err, errlen);
}

int age_identities_load(const char *path, struct age_identity *out, size_t cap, size_t *n,
                        char *err, size_t errlen)
{
    return load_keys(path, true, out, cap, n, err, errlen);
}

/* ---- header parser ------------------------------------------------------------------------ */

static bool is_vchar(uint8_t c)
{
    return c >= 33 && c <= 126;
}

int age_header_parse(const uint8_t *buf, size_t len, struct age_header *h, char *err, size_t errlen)
{
    size_t intro = sizeof AGE_INTRO - 1, skip = 0;
    memset(h, 0, sizeof *h);
    /* The armor may follow leading white space (age accepts some); refuse it by name. */
    while (skip < len && skip < 64 && strchr(" \t\r\n", buf[skip]) && buf[skip])
        skip++;
    size_t m = len - skip < sizeof AGE_ARMOR - 1 ? len - skip : sizeof AGE_ARMOR - 1;
    if (skip < len && memcmp(buf + skip, AGE_ARMOR, m) == 0) {
        if (m < sizeof AGE_ARMOR - 1)
            return len < AGE_MAX_HEADER ? -EAGAIN : -E2BIG;
        errbuf_set(err, errlen, "armored (PEM) age file: not supported, decode it with age first");
        return -EPROTONOSUPPORT;
    }
    m = len < intro ? len : intro;
    if (memcmp(buf, AGE_INTRO, m) != 0) {
        if (len >= 19 && memcmp(buf, "age-encryption.org/", 19) == 0)
            errbuf_set(err, errlen, "unsupported age format version (only v1)");
        else
            errbuf_set(err, errlen, "not an age file (no age-encryption.org/v1 line)");
        return len >= 19 && memcmp(buf, "age-encryption.org/", 19) == 0 ? -EPROTONOSUPPORT
                                                                        : -EBADMSG;
    }
    if (len < intro)
        return -EAGAIN;
    size_t pos = intro;
    uint8_t body[33]; /* an X25519 body is 32 bytes: only that many are kept */
    for (;;) {
        if (pos >= AGE_MAX_HEADER) {
            errbuf_set(err, errlen, "header longer than %u bytes", AGE_MAX_HEADER);
            return -E2BIG;
        }
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) {
            if (len >= AGE_MAX_HEADER) {
                errbuf_set(err, errlen, "header longer than %u bytes", AGE_MAX_HEADER);
                return -E2BIG;
            }
            /* Refuse early what can never become a valid line. */
            for (size_t i = pos; i < len; i++)
                if (buf[i] != ' ' && !is_vchar(buf[i])) {
                    errbuf_set(err, errlen, "header: invalid byte 0x%02x", buf[i]);
                    return -EBADMSG;
                }
            return -EAGAIN;
        }
        size_t end = (size_t)(nl - buf), ll = end - pos;
        const uint8_t *line = buf + pos;
        if (ll >= 3 && memcmp(line, "---", 3) == 0) {
            if (ll != 4 + AGE_B64_KEY || line[3] != ' ' ||
                base64_decode((const char *)line + 4, AGE_B64_KEY, h->mac, sizeof h->mac, false) !=
                    32) {
                errbuf_set(err, errlen, "header: malformed MAC line");
                return -EBADMSG;
            }
            if (h->n_stanzas == 0) {
                errbuf_set(err, errlen, "header: no recipient stanza");
                return -EBADMSG;
            }
            h->mac_input_len = pos + 3;
            h->len = end + 1;
            return 0;
        }
        if (ll < 3 || memcmp(line, "-> ", 3) != 0) {
            errbuf_set(err, errlen, "header: expected a stanza or the MAC line");
            return -EBADMSG;
        }
        /* Arguments: non-empty runs of VCHAR separated by single spaces. */
        const uint8_t *args[AGE_MAX_STANZA_ARGS];
        size_t alen[AGE_MAX_STANZA_ARGS], nargs = 0, i = 3;
        while (i < ll) {
            size_t s = i;
            while (i < ll && is_vchar(line[i]))
                i++;
            if (i == s || (i < ll && line[i] != ' ') || (i < ll && i + 1 == ll)) {
                errbuf_set(err, errlen, "header: malformed stanza line");
                return -EBADMSG;
            }
            if (nargs == AGE_MAX_STANZA_ARGS) {
                errbuf_set(err, errlen, "header: more than %d stanza arguments",
                           AGE_MAX_STANZA_ARGS);
                return -EBADMSG;
            }
            args[nargs] = line + s;
            alen[nargs++] = i - s;
            if (i < ll)
                i++;
        }
        if (nargs == 0) {
            errbuf_set(err, errlen, "header: stanza without a type");
            return -EBADMSG;
        }
        /* Body: lines of 64 base64 characters, ended by a shorter (maybe empty) line. */
        size_t bpos = end + 1, blen = 0;
        for (;;) {
            if (bpos >= len)
                return len < AGE_MAX_HEADER ? -EAGAIN : -E2BIG;
            const uint8_t *bnl = memchr(buf + bpos, '\n', len - bpos);
            size_t avail = bnl ? (size_t)(bnl - (buf + bpos)) : len - bpos;
            if (avail > AGE_B64_LINE || (!bnl && avail == AGE_B64_LINE)) {
                errbuf_set(err, errlen, "header: stanza body line longer than 64 columns");
                return -EBADMSG;
            }
            for (size_t j = 0; j < avail; j++)
                if (base64_value(buf[bpos + j]) < 0) {
                    errbuf_set(err, errlen, "header: invalid stanza body");
                    return -EBADMSG;
                }
            if (!bnl)
                return len < AGE_MAX_HEADER ? -EAGAIN : -E2BIG;
            bpos += avail + 1;
            blen += avail;
            if (avail < AGE_B64_LINE)
                break;
        }
        /* Decode the body's characters (they sit on lines; gather them first). */
        uint8_t chars[AGE_B64_LINE];
        size_t got = 0, cpos = end + 1, nbytes = 0;
        uint32_t acc = 0;
        int bits = 0;
        if (blen % 4 == 1) {
            errbuf_set(err, errlen, "header: invalid stanza body");
            return -EBADMSG;
        }
        while (got < blen) {
            size_t take = blen - got < AGE_B64_LINE ? blen - got : AGE_B64_LINE;
            memcpy(chars, buf + cpos, take);
            for (size_t j = 0; j < take; j++) {
                acc = (acc << 6 | (uint32_t)base64_value(chars[j])) & 0xffffu;
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    if (nbytes < sizeof body)
                        body[nbytes] = (uint8_t)(acc >> bits);
                    nbytes++;
                }
            }
            got += take;
            cpos += take + 1;
        }
        if ((acc & ((1u << bits) - 1)) != 0) {
            errbuf_set(err, errlen, "header: non-canonical stanza body");
            return -EBADMSG;
        }
        if (h->n_stanzas == AGE_MAX_STANZAS) {
            errbuf_set(err, errlen, "header: more than %d stanzas", AGE_MAX_STANZAS);
            return -E2BIG;
        }
        h->n_stanzas++;
        if (alen[0] == 6 && memcmp(args[0], "X25519", 6) == 0) {
            struct age_x25519_stanza *x = &h->x25519[h->n_x25519];
            if (nargs != 2 || alen[1] != AGE_B64_KEY ||
                base64_decode((const char *)args[1], AGE_B64_KEY, x->share, sizeof x->share,
                              false) != AGE_KEY_LEN ||
                nbytes != 32) {
                errbuf_set(err, errlen, "header: malformed X25519 stanza");
                return -EBADMSG;
            }
            memcpy(x->body, body, 32);
            h->n_x25519++;
        } else if (!h->other_type[0]) {
            size_t tl = alen[0] < sizeof h->other_type - 1 ? alen[0] : sizeof h->other_type - 1;
            memcpy(h->other_type, args[0], tl);
            h->other_type[tl] = '\0';
        }
        pos = bpos;
    }
}

/* ---- encryptor ---------------------------------------------------------------------------- */

struct age_enc {
    age_sink_fn sink;
    void *sink_arg;
    EVP_CIPHER_CTX *cx;
    uint8_t *header; /* header + payload nonce, sent before the first chunk */
    size_t header_len;
    bool header_sent, finished;
    int err;
    uint64_t counter;
    size_t fill;
    uint8_t pt[AGE_CHUNK];
    uint8_t ct[AGE_CT_CHUNK];
};

static int enc_stanza(char *out, const uint8_t file_key[AGE_FILE_KEY_LEN],
                      const struct age_recipient *r)
{
    uint8_t eph[AGE_KEY_LEN], share[AGE_KEY_LEN], shared[AGE_KEY_LEN], key[32], body[32];
    int rc = -EIO;
    if (RAND_priv_bytes(eph, sizeof eph) != 1 || x25519_public(share, eph) != 0)
        goto out;
    rc = x25519(shared, eph, r->pk);
    if (rc != 0) /* a low-order recipient key */
        goto out;
    if ((rc = wrap_key(key, shared, share, r->pk)) != 0 ||
        (rc = aead_once(true, key, file_key, AGE_FILE_KEY_LEN, body)) != 0)
        goto out;
    static const char type[10] = {'-', '>', ' ', 'X', '2', '5', '5', '1', '9', ' '}; /* no NUL */
    size_t o = sizeof type;
    memcpy(out, type, sizeof type);
    o += base64_encode(share, sizeof share, out + o, false);
    out[o++] = '\n';
    o += base64_encode(body, sizeof body, out + o, false);
    out[o++] = '\n';
    rc = (int)o;
out:
    OPENSSL_cleanse(eph, sizeof eph);
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

#define AGE_STANZA_LEN (10 + AGE_B64_KEY + 1 + AGE_B64_KEY + 1)

int age_enc_new(struct age_enc **out, const struct age_recipient *recipients, size_t n,
                age_sink_fn sink, void *sink_arg)
{
    uint8_t file_key[AGE_FILE_KEY_LEN], pkey[32];
    *out = NULL;
    if (n < 1 || n > AGE_MAX_RECIPIENTS || !sink)
        return -EINVAL;
    struct age_enc *e = calloc(1, sizeof *e);
    size_t cap = sizeof AGE_INTRO + n * AGE_STANZA_LEN + 4 + AGE_B64_KEY + 1 + AGE_NONCE_LEN;
    int rc = -ENOMEM;
    if (!e || !(e->header = malloc(cap)))
        goto fail;
    e->sink = sink;
    e->sink_arg = sink_arg;
    rc = -EIO;
    if (RAND_priv_bytes(file_key, sizeof file_key) != 1)
        goto fail;
    size_t o = sizeof AGE_INTRO - 1;
    memcpy(e->header, AGE_INTRO, o);
    for (size_t i = 0; i < n; i++) {
        int l = enc_stanza((char *)e->header + o, file_key, &recipients[i]);
        if (l < 0) {
            rc = l == -EBADMSG ? -EINVAL : l;
            goto fail;
        }
        o += (size_t)l;
    }
    memcpy(e->header + o, "---", 3);
    o += 3;
    uint8_t mac[32];
    if ((rc = header_mac(mac, file_key, e->header, o)) != 0)
        goto fail;
    e->header[o++] = ' ';
    o += base64_encode(mac, sizeof mac, (char *)e->header + o, false);
    e->header[o++] = '\n';
    uint8_t *nonce = e->header + o;
    rc = -EIO;
    if (RAND_bytes(nonce, AGE_NONCE_LEN) != 1)
        goto fail;
    o += AGE_NONCE_LEN;
    e->header_len = o;
    if ((rc = hkdf_sha256(pkey, sizeof pkey, file_key, sizeof file_key, nonce, AGE_NONCE_LEN,
                          "payload")) != 0)
        goto fail;
    rc = -EIO;
    if (!(e->cx = aead_new(pkey, true)))
        goto fail;
    OPENSSL_cleanse(file_key, sizeof file_key);
    OPENSSL_cleanse(pkey, sizeof pkey);
    *out = e;
    return 0;
fail:
    OPENSSL_cleanse(file_key, sizeof file_key);
    OPENSSL_cleanse(pkey, sizeof pkey);
    age_enc_free(e);
    return rc;
}

static int enc_chunk(struct age_enc *e, const uint8_t *pt, size_t n, bool last)
{
    uint8_t nonce[12];
    int rc;
    if (!e->header_sent) {
        if ((rc = e->sink(e->sink_arg, e->header, e->header_len)) != 0)
            return rc;
        e->header_sent = true;
    }
    stream_nonce(nonce, e->counter, last);
    if ((rc = aead(e->cx, true, nonce, pt, n, e->ct)) != 0)
        return rc;
    e->counter++;
    return e->sink(e->sink_arg, e->ct, n + AGE_TAG_LEN);
}

int age_enc_write(struct age_enc *e, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (e->err || e->finished)
        return e->err ? e->err : -EINVAL;
    while (len > 0) {
        int rc = 0;
        if (e->fill == AGE_CHUNK) { /* a byte follows: the held chunk is not the last */
            rc = enc_chunk(e, e->pt, AGE_CHUNK, false);
            e->fill = 0;
        } else if (e->fill == 0 && len > AGE_CHUNK) { /* straight from the caller's buffer */
            rc = enc_chunk(e, p, AGE_CHUNK, false);
            p += AGE_CHUNK;
            len -= AGE_CHUNK;
        } else {
            size_t take = AGE_CHUNK - e->fill < len ? AGE_CHUNK - e->fill : len;
            memcpy(e->pt + e->fill, p, take);
            e->fill += take;
            p += take;
            len -= take;
        }
        if (rc != 0)
            return e->err = rc;
    }
    return 0;
}

int age_enc_finish(struct age_enc *e)
{
    if (e->err || e->finished)
        return e->err ? e->err : -EINVAL;
    int rc = enc_chunk(e, e->pt, e->fill, true);
    e->fill = 0;
    if (rc != 0)
        return e->err = rc;
    e->finished = true;
    return 0;
}

void age_enc_free(struct age_enc *e)
{
    if (!e)
        return;
    EVP_CIPHER_CTX_free(e->cx);
    free(e->header);
    OPENSSL_cleanse(e, sizeof *e);
    free(e);
}

/* ---- decryptor ---------------------------------------------------------------------------- */

enum { DEC_HEADER, DEC_NONCE, DEC_PAYLOAD, DEC_DONE };

struct age_dec {
    age_sink_fn sink;
    void *sink_arg;
    struct age_identity *ids;
    size_t n_ids;
    int state, err;
    char why[AGE_ERR_LEN];
    uint8_t file_key[AGE_FILE_KEY_LEN];
    struct age_header *hdr;
    uint8_t *hbuf; /* AGE_MAX_HEADER bytes, freed once the header is parsed */
    size_t hlen;
    uint8_t nonce[AGE_NONCE_LEN];
    size_t nonce_fill;
    EVP_CIPHER_CTX *cx;
    uint64_t counter;
    size_t fill;
    uint8_t ct[AGE_CT_CHUNK];
    uint8_t pt[AGE_CHUNK];
};

int age_dec_new(struct age_dec **out, const struct age_identity *ids, size_t n, age_sink_fn sink,
                void *sink_arg)
{
    *out = NULL;
    if (n < 1 || n > AGE_MAX_IDENTITIES || !sink)
        return -EINVAL;
    struct age_dec *d = calloc(1, sizeof *d);
    if (!d || !(d->ids = malloc(n * sizeof *ids)) || !(d->hdr = malloc(sizeof *d->hdr)) ||
        !(d->hbuf = malloc(AGE_MAX_HEADER))) {
        age_dec_free(d);
        return -ENOMEM;
    }
    memcpy(d->ids, ids, n * sizeof *ids);
    d->n_ids = n;
    d->sink = sink;
    d->sink_arg = sink_arg;
    *out = d;
    return 0;
}

static int dec_fail(struct age_dec *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int dec_fail(struct age_dec *d, int rc, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->why, sizeof d->why, fmt, ap);
        va_end(ap);
    }
    return d->err = rc;
}

/* Unwraps the file key with any identity and checks the header MAC. */
static int dec_open_header(struct age_dec *d)
{
    struct age_header *h = d->hdr;
    uint8_t shared[AGE_KEY_LEN], key[32], mac[32];
    int rc = -ENOKEY;
    if (h->n_x25519 == 0) {
        if (strcmp(h->other_type, "scrypt") == 0)
            return dec_fail(d, -EPROTONOSUPPORT,
                            "passphrase-encrypted (scrypt) age file: not supported, encrypt to "
                            "an X25519 recipient");
        return dec_fail(d, -EPROTONOSUPPORT,
                        "age file for '%.31s' recipients only: not supported (X25519 only)",
                        h->other_type);
    }
    for (size_t i = 0; i < d->n_ids && rc == -ENOKEY; i++)
        for (size_t j = 0; j < h->n_x25519 && rc == -ENOKEY; j++) {
            const struct age_x25519_stanza *x = &h->x25519[j];
            int r = x25519(shared, d->ids[i].sk, x->share);
            if (r == -EBADMSG)
                continue;
            if (r != 0 || wrap_key(key, shared, x->share, d->ids[i].pk) != 0) {
                rc = -EIO;
                break;
            }
            r = aead_once(false, key, x->body, AGE_FILE_KEY_LEN, d->file_key);
            if (r == 0)
                rc = 0;
            else if (r != -EBADMSG)
                rc = r;
        }
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(key, sizeof key);
    if (rc == -ENOKEY)
        return dec_fail(d, rc, "no identity matches any of the file's %zu X25519 recipients",
                        h->n_x25519);
    if (rc != 0)
        return dec_fail(d, rc, "crypto failure opening the header");
    if (header_mac(mac, d->file_key, d->hbuf, h->mac_input_len) != 0)
        return dec_fail(d, -EIO, "crypto failure computing the header MAC");
    if (CRYPTO_memcmp(mac, h->mac, sizeof mac) != 0)
        return dec_fail(d, -EBADMSG, "header MAC mismatch (header tampered or corrupt)");
    return 0;
}

/* Opens the held or given chunk of n bytes (tag included). */
static int dec_chunk(struct age_dec *d, const uint8_t *ct, size_t n, bool last)
{
    uint8_t nonce[12];
    stream_nonce(nonce, d->counter, last);
    int rc = aead(d->cx, false, nonce, ct, n - AGE_TAG_LEN, d->pt);
    if (rc == -EBADMSG && !last) {
        /* Tell "a chunk after the final one" from tampering, for the message. */
        stream_nonce(nonce, d->counter, true);
        if (aead(d->cx, false, nonce, ct, n - AGE_TAG_LEN, d->pt) == 0) {
            OPENSSL_cleanse(d->pt, n - AGE_TAG_LEN);
            return dec_fail(d, -EBADMSG, "data after the final chunk (chunk %llu)",
                            (unsigned long long)d->counter);
        }
    }
    if (rc == -EBADMSG && last) {
        stream_nonce(nonce, d->counter, false);
        if (n == AGE_CT_CHUNK && aead(d->cx, false, nonce, ct, n - AGE_TAG_LEN, d->pt) == 0) {
            OPENSSL_cleanse(d->pt, n - AGE_TAG_LEN);
            return dec_fail(d, -EBADMSG, "truncated: the final chunk is missing after chunk %llu",
                            (unsigned long long)d->counter);
        }
    }
    if (rc == -EBADMSG)
        return dec_fail(d, rc, "chunk %llu fails authentication (tampered, corrupt or truncated)",
                        (unsigned long long)d->counter);
    if (rc != 0)
        return dec_fail(d, rc, "crypto failure in chunk %llu", (unsigned long long)d->counter);
    if (last && n == AGE_TAG_LEN && d->counter > 0)
        return dec_fail(d, -EBADMSG, "empty final chunk after a full one (not a valid age file)");
    d->counter++;
    rc = d->sink(d->sink_arg, d->pt, n - AGE_TAG_LEN);
    return rc ? dec_fail(d, rc, "output failed") : 0;
}

static int dec_payload(struct age_dec *d, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int rc = 0;
        if (d->state == DEC_NONCE) {
            size_t take = AGE_NONCE_LEN - d->nonce_fill < len ? AGE_NONCE_LEN - d->nonce_fill : len;
            memcpy(d->nonce + d->nonce_fill, p, take);
            d->nonce_fill += take;
            p += take;
            len -= take;
            if (d->nonce_fill == AGE_NONCE_LEN) {
                uint8_t pkey[32];
                rc = hkdf_sha256(pkey, sizeof pkey, d->file_key, sizeof d->file_key, d->nonce,
                                 AGE_NONCE_LEN, "payload");
                if (rc == 0 && !(d->cx = aead_new(pkey, false)))
                    rc = -EIO;
                OPENSSL_cleanse(pkey, sizeof pkey);
                OPENSSL_cleanse(d->file_key, sizeof d->file_key);
                if (rc != 0)
                    return dec_fail(d, rc, "crypto failure deriving the payload key");
                d->state = DEC_PAYLOAD;
            }
            continue;
        }
        if (d->fill == AGE_CT_CHUNK) { /* a byte follows: the held chunk is not the last */
            rc = dec_chunk(d, d->ct, AGE_CT_CHUNK, false);
            d->fill = 0;
        } else if (d->fill == 0 && len > AGE_CT_CHUNK) {
            rc = dec_chunk(d, p, AGE_CT_CHUNK, false);
            p += AGE_CT_CHUNK;
            len -= AGE_CT_CHUNK;
        } else {
            size_t take = AGE_CT_CHUNK - d->fill < len ? AGE_CT_CHUNK - d->fill : len;
            memcpy(d->ct + d->fill, p, take);
            d->fill += take;
            p += take;
            len -= take;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int age_dec_write(struct age_dec *d, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (d->err)
        return d->err;
    if (d->state == DEC_DONE)
        return dec_fail(d, -EINVAL, "write after finish");
    if (d->state != DEC_HEADER)
        return dec_payload(d, p, len);
    size_t take = AGE_MAX_HEADER - d->hlen < len ? AGE_MAX_HEADER - d->hlen : len;
    memcpy(d->hbuf + d->hlen, p, take);
    d->hlen += take;
    int rc = age_header_parse(d->hbuf, d->hlen, d->hdr, d->why, sizeof d->why);
    if (rc == -EAGAIN && d->hlen == AGE_MAX_HEADER) /* the parser says so itself; belt and braces */
        return dec_fail(d, -E2BIG, "header longer than %u bytes", AGE_MAX_HEADER);
    if (rc == -EAGAIN)
        return 0;
    if (rc != 0)
        return d->err = rc;
    if ((rc = dec_open_header(d)) != 0)
        return rc;
    d->state = DEC_NONCE;
    /* The bytes after the header: first those already buffered, then the rest of buf. */
    size_t hl = d->hdr->len;
    rc = dec_payload(d, d->hbuf + hl, d->hlen - hl);
    OPENSSL_cleanse(d->hbuf, d->hlen);
    free(d->hbuf);
    d->hbuf = NULL;
    free(d->hdr);
    d->hdr = NULL;
    if (rc == 0)
        rc = dec_payload(d, p + take, len - take);
    return rc;
}

int age_dec_finish(struct age_dec *d)
{
    if (d->err)
        return d->err;
    switch (d->state) {
    case DEC_HEADER:
        return dec_fail(d, -EBADMSG, d->hlen ? "truncated in the header" : "empty input");
    case DEC_NONCE:
        return dec_fail(d, -EBADMSG, "truncated after the header (no payload)");
    case DEC_DONE:
        return dec_fail(d, -EINVAL, "finish called twice");
    default:
        break;
    }
    /* (fill is never 0 after a chunk: a chunk is released only when a byte follows it, and
     * that byte is held here.) */
    if (d->fill < AGE_TAG_LEN)
        return dec_fail(d, -EBADMSG, "truncated in chunk %llu", (unsigned long long)d->counter);
    int rc = dec_chunk(d, d->ct, d->fill, true);
    if (rc != 0)
        return rc;
    d->state = DEC_DONE;
    return 0;
}

const char *age_dec_error(const struct age_dec *d)
{
    return d->why;
}

void age_dec_free(struct age_dec *d)
{
    if (!d)
        return;
    if (d->ids)
        age_identity_wipe(d->ids, d->n_ids);
    free(d->ids);
    free(d->hdr);
    if (d->hbuf)
        OPENSSL_cleanse(d->hbuf, AGE_MAX_HEADER);
    free(d->hbuf);
    EVP_CIPHER_CTX_free(d->cx);
    OPENSSL_cleanse(d, sizeof *d);
    free(d);
}
