/* aws_creds.h - AWS credentials, region and endpoint the way the AWS CLI and botocore find them
 * in a pod: environment first, then the shared credentials file and the config file of
 * AWS_PROFILE, re-read when a mounted Secret changes, with session-token expiry. Signing and
 * HTTP are the S3 store's; STS (web identity, assume-role) is not done here (see
 * docs/backups-azure-retention.md). */
#ifndef ER_AWS_CREDS_H
#define ER_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bounds.h"

struct aws_creds {
    char access_key_id[AWS_CREDS_MAX_KEY];
    char secret_access_key[AWS_CREDS_MAX_KEY];
    char session_token[AWS_CREDS_MAX_VALUE]; /* "" when none */
    int64_t expires;                         /* UTC seconds; 0 when no expiry is known */
    char region[AWS_CREDS_MAX_KEY];          /* "" when none is configured */
    char endpoint_url[AWS_CREDS_MAX_VALUE];  /* "" when none is configured */
    char profile[AWS_CREDS_MAX_KEY];         /* the profile resolved ("default" unless set) */
    const char *source; /* "environment", "shared credentials file", "config file" */
};

/* A file's identity as stat(2) sees it through symlinks (a Secret volume swaps a symlink). */
struct aws_creds_file_id {
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
};

struct aws_creds_cache {
    bool loaded;
    struct aws_creds creds;
    struct aws_creds_file_id cred_file, config_file;
};

/* Resolves credentials, region and endpoint for `service` (e.g. "s3"; it names
 * AWS_ENDPOINT_URL_S3 and the config file's services section), as botocore does:
 *  - profile: AWS_DEFAULT_PROFILE, else AWS_PROFILE, else "default";
 *  - keys: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN or AWS_SECURITY_TOKEN,
 *    AWS_CREDENTIAL_EXPIRATION), else the profile's section of AWS_SHARED_CREDENTIALS_FILE
 *    (default ~/.aws/credentials), else its [profile NAME] (or [default]) section of
 *    AWS_CONFIG_FILE (default ~/.aws/config); aws_session_token / aws_security_token, and the
 *    expiry from x_security_token_expires or expiration (ISO 8601) when present;
 *  - region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region`;
 *  - endpoint: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's services section
 *    (`<service> =` with an indented `endpoint_url = ...`), then the profile's `endpoint_url`;
 *    none of these when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
 * Returns 0; -ENOENT when no credentials are found (or a named profile does not exist);
 * -EINVAL for half the env pair, a malformed file or value; -EFBIG for a file over
 * AWS_CREDS_MAX_FILE; -ENOTSUP when the profile or env asks for web identity, assume-role,
 * SSO or credential_process; other negative errno for I/O. err gets one line naming the file
 * and line, never a secret. */
int aws_creds_resolve(const char *service, struct aws_creds *out, char *err, size_t errlen);

/* Cached resolve: re-resolves when either file's identity (device, inode, size, mtime, ctime)
 * changed, when nothing is cached, or when the cached credentials expire within
 * AWS_CREDS_EXPIRY_SKEW_S of `now` (UTC seconds). Returns as aws_creds_resolve, or -EKEYEXPIRED
 * when the freshly read credentials are expired too. On error the cache is left as it was. */
int aws_creds_get(struct aws_creds_cache *c, const char *service, int64_t now,
                  struct aws_creds *out, char *err, size_t errlen);

/* Wipes secrets (OPENSSL_cleanse). */
void aws_creds_clear(struct aws_creds *c);
void aws_creds_cache_clear(struct aws_creds_cache *c);

/* ISO 8601 as AWS writes expiries: "2026-12-03T22:00:00Z", optional fraction, "Z" or +HH:MM /
 * +HHMM offset, 'T' or ' ' between date and time. Returns 0 or -EINVAL. */
int aws_creds_parse_time(const char *s, int64_t *out);

/* The INI dialect of Python's configparser as botocore uses it, bounded: sections "[name]",
 * "key = value" or "key: value" (keys lower-cased, both sides trimmed), comment lines starting
 * with '#' or ';', indented continuation lines; a value that starts empty and continues on
 * indented "sub = value" lines is nested (cb gets each sub-key). Duplicate sections or keys, an
 * option before any section, a line over AWS_CREDS_MAX_LINE or a name over AWS_CREDS_MAX_KEY are
 * errors (-EINVAL, err says which line). cb returns 0 to go on, or a negative errno that stops
 * the parse and is returned. */
typedef int (*aws_ini_cb)(void *ctx, const char *section, const char *key, const char *subkey,
                          const char *value);
int aws_ini_parse(const char *buf, size_t len, aws_ini_cb cb, void *ctx, char *err, size_t errlen);

#endif
