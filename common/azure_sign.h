/* azure_sign.h - Azure Storage Shared Key authorization (the canonical string-to-sign of the
 * Blob service, HMAC-SHA256 on OpenSSL) and the account settings from the environment (key or
 * SAS token, endpoint). HTTP, retries and the blob protocol are store_azure.c's. */
#ifndef ER_AZURE_SIGN_H
#define ER_AZURE_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bounds.h"

/* The storage service version we speak (Put Block List with Content-MD5 per block, Content-Length
 * empty when 0 in the string-to-sign). */
#define AZURE_API_VERSION "2021-08-06"

struct azure_header {
    const char *name; /* any case; x-ms-* names only [A-Za-z0-9-] */
    const char *value;
};

/* Builds the Shared Key string-to-sign of one Blob request into out (NUL-terminated):
 *   VERB \n Content-Encoding \n Content-Language \n Content-Length (empty for 0) \n Content-MD5 \n
 *   Content-Type \n Date \n If-Modified-Since \n If-Match \n If-None-Match \n If-Unmodified-Since
 * \n Range \n  x-ms-* headers ("name:value\n", names lower-cased, sorted)
 *   "/" account path  then per query parameter, sorted by lower-cased name, "\nname:value"
 *   (value percent-decoded; repeated names' values sorted and joined with ',').
 * path is the request's path as sent (percent-encoded, starting with '/'; for an emulator's
 * path-style URL it starts with "/ACCOUNT"); query is the raw query without '?', or NULL.
 * Returns 0, -EINVAL (bad header name, duplicate standard header, malformed escape), or
 * -ENOSPC when out or a bound (AZURE_MAX_SIGN_HEADERS) is too small. */
int azure_string_to_sign(const char *verb, const char *account, const char *path, const char *query,
                         const struct azure_header *headers, size_t n_headers, char *out,
                         size_t outlen);

/* Writes "SharedKey ACCOUNT:base64(HMAC-SHA256(key, string_to_sign))" into auth. key/key_len:
 * the decoded account key. Returns 0, -ENOSPC, or -EIO when OpenSSL fails. */
int azure_sign(const char *account, const uint8_t *key, size_t key_len, const char *string_to_sign,
               char *auth, size_t authlen);

/* Decodes a base64 account key (AZURE_STORAGE_KEY). Returns the length (> 0) or -EINVAL. */
int azure_key_decode(const char *b64, uint8_t *out, size_t outlen);

/* RFC 1123 date for x-ms-date ("Thu, 03 Dec 2026 22:10:00 GMT"). Returns 0 or -EINVAL. */
int azure_date(time_t t, char *out, size_t outlen);

/* Block ID of block `index` (0-based): base64 of "block-%09u", so every ID of a blob has the
 * same length (28 characters). out needs 29 bytes. */
void azure_block_id(uint32_t index, char out[29]);

struct azure_account {
    char account[AZURE_MAX_ACCOUNT];
    uint8_t key[64]; /* decoded AZURE_STORAGE_KEY; key_len 0 when a SAS token is used */
    size_t key_len;
    char sas[AZURE_MAX_SAS]; /* AZURE_STORAGE_SAS_TOKEN without a leading '?'; "" with a key */
    char endpoint[512];      /* no trailing '/': https://ACCOUNT.blob.core.windows.net or
                              * AZURE_STORAGE_BLOB_ENDPOINT (e.g. http://127.0.0.1:10000/ACCOUNT) */
};

/* Fills *a for `account` (from the azure:// URL; AZURE_STORAGE_ACCOUNT, when set, must match it)
 * from AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (the key wins when both are set) and
 * AZURE_STORAGE_BLOB_ENDPOINT. Returns 0, -ENOENT (neither key nor SAS), -EINVAL (bad key,
 * account mismatch, bad endpoint); err gets one line without any secret. */
int azure_account_from_env(const char *account, struct azure_account *a, char *err, size_t errlen);

/* Wipes the key and SAS token. */
void azure_account_clear(struct azure_account *a);

/* Copies url without its query string (SAS tokens live there) for logs and errors. */
const char *azure_redact_url(const char *url, char *out, size_t outlen);

#endif
