/* aws_creds.c - AWS credentials, region and endpoint from the environment and the shared
 * credentials/config files, as botocore resolves them (aws_creds.h has the order), with a
 * bounded parser of their INI dialect and a cache re-read when a mounted file changes. The
 * S3 store signs with what this returns; STS is not spoken here. */
#include "aws_creds.h"
#include "errbuf.h"
#include "readall.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define AWS_INI_MAX_SECTIONS 256 /* sections in one file */
#define AWS_INI_MAX_KEYS 256     /* keys in one section */

static uint64_t fnv1a(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325u ^ seed;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return h;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* trims blanks (and a trailing '\r') from [*s, *s + *n) in place */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_blank(**s))
        (*s)++, (*n)--;
    while (*n > 0 && (is_blank((*s)[*n - 1]) || (*s)[*n - 1] == '\r'))
        (*n)--;
}

struct ini_state {
    aws_ini_cb cb;
    void *ctx;
    char section[AWS_CREDS_MAX_KEY];
    bool have_section;
    uint64_t sections[AWS_INI_MAX_SECTIONS];
    size_t n_sections;
    uint64_t keys[AWS_INI_MAX_KEYS];
    size_t n_keys;
    /* the option being read (it may continue on indented lines) */
    bool have_opt;
    size_t opt_indent, opt_line;
    char key[AWS_CREDS_MAX_KEY];
    char value[AWS_CREDS_MAX_VALUE];
    size_t value_len;
};

static int emit_nested(struct ini_state *st, char *err, size_t errlen)
{
    char *line = st->value + 1, *next;

    for (; line != NULL && *line != '\0'; line = next) {
        char sub[AWS_CREDS_MAX_KEY], *eq;
        const char *k, *v;
        size_t kn, vn;
        int rc;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        k = line;
        kn = strlen(line);
        trim(&k, &kn);
        if (kn == 0)
            continue;
        eq = memchr(k, '=', kn);
        if (eq == NULL) {
            errbuf_set(err, errlen, "line %zu: nested value of \"%s\" lacks '='", st->opt_line,
                       st->key);
            return -EINVAL;
        }
        v = eq + 1;
        vn = kn - (size_t)(v - k);
        kn = (size_t)(eq - k);
        trim(&k, &kn);
        trim(&v, &vn);
        if (kn == 0 || kn >= sizeof sub) {
            errbuf_set(err, errlen, "line %zu: nested key of \"%s\" empty or too long",
                       st->opt_line, st->key);
            return -EINVAL;
        }
        memcpy(sub, k, kn);
        sub[kn] = '\0';
        line[(size_t)(v - line) + vn] = '\0';
        rc = st->cb(st->ctx, st->section, st->key, sub, v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int flush_opt(struct ini_state *st, char *err, size_t errlen)
{
    if (!st->have_opt)
        return 0;
    st->have_opt = false;
    st->value[st->value_len] = '\0';
    if (st->value[0] == '\n')
        return emit_nested(st, err, errlen);
    return st->cb(st->ctx, st->section, st->key, NULL, st->value);
}

static int ini_line(struct ini_state *st, const char *line, size_t n, size_t lineno, char *err,
                    size_t errlen)
{
    size_t indent = 0;
    const char *s = line, *delim;
    size_t sn = n;
    uint64_t h;
    int rc;

    while (indent < n && is_blank(line[indent]))
        indent++;
    trim(&s, &sn);
    if (sn == 0 || s[0] == '#' || s[0] == ';')
        return 0;
    if (st->have_opt && indent > st->opt_indent) { /* continuation */
        if (st->value_len + 1 + sn >= sizeof st->value) {
            errbuf_set(err, errlen, "line %zu: value of \"%s\" too long", lineno, st->key);
            return -EINVAL;
        }
        st->value[st->value_len++] = '\n';
        memcpy(st->value + st->value_len, s, sn);
        st->value_len += sn;
        return 0;
    }
    rc = flush_opt(st, err, errlen);
    if (rc != 0)
        return rc;
    if (s[0] == '[') {
        if (sn < 3 || s[sn - 1] != ']') {
            errbuf_set(err, errlen, "line %zu: malformed section header", lineno);
            return -EINVAL;
        }
        if (sn - 2 >= sizeof st->section) {
            errbuf_set(err, errlen, "line %zu: section name too long", lineno);
            return -EINVAL;
        }
        memcpy(st->section, s + 1, sn - 2);
        st->section[sn - 2] = '\0';
        h = fnv1a(st->section, 0);
        for (size_t i = 0; i < st->n_sections; i++) {
            if (st->sections[i] == h) {
                errbuf_set(err, errlen, "line %zu: section [%.*s] given twice", lineno,
                           AWS_CREDS_MAX_KEY, st->section);
                return -EINVAL;
            }
        }
        if (st->n_sections == AWS_INI_MAX_SECTIONS) {
            errbuf_set(err, errlen, "line %zu: more than %d sections", lineno,
                       AWS_INI_MAX_SECTIONS);
            return -EINVAL;
        }
        st->sections[st->n_sections++] = h;
        st->have_section = true;
        st->n_keys = 0;
        return 0;
    }
    if (!st->have_section) {
        errbuf_set(err, errlen, "line %zu: key outside any [section]", lineno);
        return -EINVAL;
    }
    delim = s;
    while (delim < s + sn && *delim != '=' && *delim != ':')
        delim++;
    if (delim == s + sn) {
        errbuf_set(err, errlen, "line %zu: not \"key = value\"", lineno);
        return -EINVAL;
    }
    {
        const char *k = s, *v = delim + 1;
        size_t kn = (size_t)(delim - s), vn = sn - (size_t)(v - s);
        trim(&k, &kn);
        trim(&v, &vn);
        if (kn == 0 || kn >= sizeof st->key) {
            errbuf_set(err, errlen, "line %zu: %s key", lineno, kn == 0 ? "empty" : "too long a");
            return -EINVAL;
        }
        if (vn >= sizeof st->value) {
            errbuf_set(err, errlen, "line %zu: value too long", lineno);
            return -EINVAL;
        }
        for (size_t i = 0; i < kn; i++)
            st->key[i] = (char)tolower((unsigned char)k[i]);
        st->key[kn] = '\0';
        memcpy(st->value, v, vn);
        st->value_len = vn;
    }
    h = fnv1a(st->key, 1);
    for (size_t i = 0; i < st->n_keys; i++) {
        if (st->keys[i] == h) {
            errbuf_set(err, errlen, "line %zu: key \"%s\" given twice in [%.*s]", lineno, st->key,
                       AWS_CREDS_MAX_KEY, st->section);
            return -EINVAL;
        }
    }
    if (st->n_keys == AWS_INI_MAX_KEYS) {
        errbuf_set(err, errlen, "line %zu: more than %d keys in a section", lineno,
                   AWS_INI_MAX_KEYS);
        return -EINVAL;
    }
    st->keys[st->n_keys++] = h;
    st->have_opt = true;
    st->opt_indent = indent;
    st->opt_line = lineno;
    return 0;
}

int aws_ini_parse(const char *buf, size_t len, aws_ini_cb cb, void *ctx, char *err, size_t errlen)
{
    struct ini_state *st;
    size_t pos = 0, lineno = 0;
    int rc = 0;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if ((buf == NULL && len > 0) || cb == NULL)
        return -EINVAL;
    if (len > AWS_CREDS_MAX_FILE) {
        errbuf_set(err, errlen, "file over %u bytes", (unsigned)AWS_CREDS_MAX_FILE);
        return -EFBIG;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    st->cb = cb;
    st->ctx = ctx;
    while (pos < len && rc == 0) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;

        lineno++;
        if (n > AWS_CREDS_MAX_LINE) {
            errbuf_set(err, errlen, "line %zu: longer than %d bytes", lineno, AWS_CREDS_MAX_LINE);
            rc = -EINVAL;
            break;
        }
        if (memchr(buf + pos, '\0', n) != NULL) {
            errbuf_set(err, errlen, "line %zu: NUL byte", lineno);
            rc = -EINVAL;
            break;
        }
        rc = ini_line(st, buf + pos, n, lineno, err, errlen);
        pos += n + (nl != NULL);
    }
    if (rc == 0)
        rc = flush_opt(st, err, errlen);
    OPENSSL_cleanse(st, sizeof *st);
    free(st);
    return rc;
}

/* ---- time ------------------------------------------------------------------------------------ */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int aws_creds_parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    struct tm tm = {0};
    int64_t t;
    size_t n;

    if (s == NULL || out == NULL)
        return -EINVAL;
    n = strlen(s);
    if (n < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    s += 19;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
        oh = om = 0;
    } else if ((*s == '+' || *s == '-') && digits(s + 1, 2, &oh) &&
               ((s[3] == ':' && digits(s + 4, 2, &om) && s[6] == '\0') ||
                (digits(s + 3, 2, &om) && s[5] == '\0')) &&
               oh <= 23 && om <= 59) {
        if (*s == '-')
            oh = -oh, om = -om;
    } else {
        return -EINVAL;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = (int64_t)timegm(&tm);
    *out = t - (int64_t)oh * 3600 - (int64_t)om * 60;
    return 0;
}

/* ---- files ----------------------------------------------------------------------------------- */

static void file_id_of(const struct stat *st, struct aws_creds_file_id *id)
{
    id->present = true;
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* path of a file: the env value (with a leading "~/" expanded) or ~/.aws/<name> */
static int file_path(const char *env, const char *name, char *out, size_t n)
{
    const char *v = getenv(env), *home = getenv("HOME");
    int w;

    if (v != NULL && v[0] != '\0') {
        if (v[0] == '~' && v[1] == '/' && home != NULL)
            w = snprintf(out, n, "%s%s", home, v + 1);
        else
            w = snprintf(out, n, "%s", v);
    } else if (home != NULL && home[0] != '\0') {
        w = snprintf(out, n, "%s/.aws/%s", home, name);
    } else {
        out[0] = '\0';
        return 0;
    }
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

/* reads a whole file (bounded); *buf is NULL with rc 0 when it does not exist */
static int read_file(const char *path, char **buf, size_t *len, struct aws_creds_file_id *id,
                     char *err, size_t errlen)
{
    struct stat st;
    char *b = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *buf = NULL;
    *len = 0;
    memset(id, 0, sizeof *id);
    if (path[0] == '\0')
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        rc = -errno;
        errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        errbuf_set(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > (off_t)AWS_CREDS_MAX_FILE) {
        rc = -EFBIG;
        errbuf_set(err, errlen, "%s: over %u bytes", path, (unsigned)AWS_CREDS_MAX_FILE);
        goto out;
    }
    file_id_of(&st, id);
    b = malloc(AWS_CREDS_MAX_FILE + 1);
    if (b == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = readall(fd, b, AWS_CREDS_MAX_FILE + 1, &got);
    if (rc == -EFBIG) {
        errbuf_set(err, errlen, "%s: over %u bytes", path, (unsigned)AWS_CREDS_MAX_FILE);
        goto out;
    }
    if (rc != 0) {
        errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
        goto out;
    }
    *buf = b;
    *len = got;
    b = NULL;
out:
    if (b != NULL) {
        OPENSSL_cleanse(b, AWS_CREDS_MAX_FILE + 1);
        free(b);
    }
    close(fd);
    return rc;
}

static void free_file(char *buf)
{
    if (buf != NULL) {
        OPENSSL_cleanse(buf, AWS_CREDS_MAX_FILE + 1);
        free(buf);
    }
}

/* ---- one profile's values -------------------------------------------------------------------- */

enum {
    P_KEY_ID,
    P_SECRET,
    P_TOKEN,
    P_SECURITY_TOKEN,
    P_EXPIRES,
    P_EXPIRATION,
    P_REGION,
    P_ENDPOINT,
    P_SERVICES,
    P_UNSUPPORTED, /* role_arn, web_identity_token_file, credential_process, sso_* */
    P_N,
};

static const char *const profile_keys[P_N] = {
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "x_security_token_expires",
    "expiration",
    "region",
    "endpoint_url",
    "services",
    NULL,
};

struct profile_ctx {
    const char *want; /* profile name */
    bool config_file; /* [profile NAME] / [default] naming */
    bool found;
    const char *service;          /* with services_section: the nested key wanted */
    const char *services_section; /* "NAME" of [services NAME], or NULL */
    char vals[P_N][AWS_CREDS_MAX_VALUE];
    bool set[P_N];
    char unsupported[AWS_CREDS_MAX_KEY];
    char service_endpoint[AWS_CREDS_MAX_VALUE];
};

/* "profile NAME" (any blanks, NAME optionally quoted) -> NAME; NULL if not that form */
static bool section_is(const char *section, const char *prefix, const char *want)
{
    size_t pl = strlen(prefix), n;
    const char *s;

    if (strncmp(section, prefix, pl) != 0 || !is_blank(section[pl]))
        return false;
    s = section + pl;
    n = strlen(s);
    trim(&s, &n);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0])
        s++, n -= 2;
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

static int profile_cb(void *ctx, const char *section, const char *key, const char *subkey,
                      const char *value)
{
    struct profile_ctx *p = ctx;

    if (p->services_section != NULL) {
        if (section_is(section, "services", p->services_section) && subkey != NULL &&
            strcasecmp(key, p->service) == 0 && strcmp(subkey, "endpoint_url") == 0)
            snprintf(p->service_endpoint, sizeof p->service_endpoint, "%s", value);
        return 0;
    }
    if (p->config_file ? !(strcmp(section, p->want) == 0 && strcmp(p->want, "default") == 0) &&
                             !section_is(section, "profile", p->want)
                       : strcmp(section, p->want) != 0)
        return 0;
    p->found = true;
    if (subkey != NULL)
        return 0;
    for (int i = 0; i < P_UNSUPPORTED; i++) {
        if (strcmp(key, profile_keys[i]) == 0) {
            snprintf(p->vals[i], sizeof p->vals[i], "%s", value);
            p->set[i] = true;
            return 0;
        }
    }
    if (strcmp(key, "role_arn") == 0 || strcmp(key, "web_identity_token_file") == 0 ||
        strcmp(key, "credential_process") == 0 || strncmp(key, "sso_", 4) == 0) {
        snprintf(p->unsupported, sizeof p->unsupported, "%s", key);
        p->set[P_UNSUPPORTED] = true;
    }
    return 0;
}

static int parse_profile(const char *path, const char *buf, size_t len, struct profile_ctx *p,
                         char *err, size_t errlen)
{
    char e[192];
    int rc = aws_ini_parse(buf, len, profile_cb, p, e, sizeof e);

    if (rc != 0)
        errbuf_set(err, errlen, "%s: %s", path, e);
    return rc;
}

static int copy_field(char *dst, size_t n, const char *src, const char *what, char *err,
                      size_t errlen)
{
    size_t l = strlen(src);

    if (l >= n) {
        errbuf_set(err, errlen, "%s longer than %zu bytes", what, n - 1);
        return -EINVAL;
    }
    memcpy(dst, src, l + 1);
    return 0;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcasecmp(v, "true") == 0;
}

struct resolve_io {
    char cred_path[4096], conf_path[4096];
    struct aws_creds_file_id cred_id, conf_id;
};

static int resolve(const char *service, struct aws_creds *out, struct resolve_io *io, char *err,
                   size_t errlen)
{
    struct profile_ctx *cp = NULL, *fp = NULL;
    char *cred_buf = NULL, *conf_buf = NULL;
    size_t cred_len = 0, conf_len = 0;
    const char *profile = env_nonempty("AWS_DEFAULT_PROFILE");
    const char *ak = env_nonempty("AWS_ACCESS_KEY_ID"), *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
    const char *v;
    bool named = profile != NULL || env_nonempty("AWS_PROFILE") != NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (profile == NULL)
        profile = env_nonempty("AWS_PROFILE");
    if (profile == NULL)
        profile = "default";
    if ((rc = copy_field(out->profile, sizeof out->profile, profile, "profile name", err,
                         errlen)) != 0)
        return rc;
    if ((rc = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", io->cred_path,
                        sizeof io->cred_path)) != 0 ||
        (rc = file_path("AWS_CONFIG_FILE", "config", io->conf_path, sizeof io->conf_path)) != 0) {
        errbuf_set(err, errlen, "credentials or config file path too long");
        return rc;
    }
    cp = calloc(1, sizeof *cp);
    fp = calloc(1, sizeof *fp);
    if (cp == NULL || fp == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    cp->want = fp->want = profile;
    fp->config_file = true;
    if ((rc = read_file(io->cred_path, &cred_buf, &cred_len, &io->cred_id, err, errlen)) != 0 ||
        (rc = read_file(io->conf_path, &conf_buf, &conf_len, &io->conf_id, err, errlen)) != 0)
        goto out;
    if ((cred_buf != NULL &&
         (rc = parse_profile(io->cred_path, cred_buf, cred_len, cp, err, errlen)) != 0) ||
        (conf_buf != NULL &&
         (rc = parse_profile(io->conf_path, conf_buf, conf_len, fp, err, errlen)) != 0))
        goto out;

    /* credentials: env, then the credentials file, then the config file */
    if (ak != NULL || sk != NULL) {
        if (ak == NULL || sk == NULL) {
            errbuf_set(err, errlen, "%s is set but %s is not",
                       ak != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                       ak != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
            rc = -EINVAL;
            goto out;
        }
        v = env_nonempty("AWS_SESSION_TOKEN");
        if (v == NULL)
            v = env_nonempty("AWS_SECURITY_TOKEN");
        if ((rc = copy_field(out->access_key_id, sizeof out->access_key_id, ak, "AWS_ACCESS_KEY_ID",
                             err, errlen)) != 0 ||
            (rc = copy_field(out->secret_access_key, sizeof out->secret_access_key, sk,
                             "AWS_SECRET_ACCESS_KEY", err, errlen)) != 0 ||
            (v != NULL && (rc = copy_field(out->session_token, sizeof out->session_token, v,
                                           "AWS_SESSION_TOKEN", err, errlen)) != 0))
            goto out;
        v = env_nonempty("AWS_CREDENTIAL_EXPIRATION");
        if (v != NULL && aws_creds_parse_time(v, &out->expires) != 0) {
            errbuf_set(err, errlen, "AWS_CREDENTIAL_EXPIRATION: not an ISO 8601 time");
            rc = -EINVAL;
            goto out;
        }
        out->source = "environment";
    } else if (env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE") != NULL &&
               env_nonempty("AWS_ROLE_ARN") != NULL) {
        errbuf_set(
            err, errlen,
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) is not supported yet: "
            "give keys by env or a credentials file");
        rc = -ENOTSUP;
        goto out;
    } else {
        struct profile_ctx *src = NULL;
        const char *path = NULL;

        if (fp->set[P_UNSUPPORTED] || cp->set[P_UNSUPPORTED]) {
            errbuf_set(err, errlen,
                       "profile \"%s\" uses %s (STS, SSO or a credential process): not supported "
                       "yet",
                       profile, fp->set[P_UNSUPPORTED] ? fp->unsupported : cp->unsupported);
            rc = -ENOTSUP;
            goto out;
        }
        if (cp->set[P_KEY_ID] && cp->set[P_SECRET])
            src = cp, path = io->cred_path, out->source = "shared credentials file";
        else if (fp->set[P_KEY_ID] && fp->set[P_SECRET])
            src = fp, path = io->conf_path, out->source = "config file";
        if (src == NULL) {
            if (named && !cp->found && !fp->found)
                errbuf_set(err, errlen, "profile \"%s\" not found in %s or %s", profile,
                           io->cred_path[0] ? io->cred_path : "(no credentials file)",
                           io->conf_path[0] ? io->conf_path : "(no config file)");
            else
                errbuf_set(
                    err, errlen,
                    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                    "aws_access_key_id and aws_secret_access_key for profile \"%s\" in %s",
                    profile, io->cred_path[0] ? io->cred_path : "a credentials file");
            rc = -ENOENT;
            goto out;
        }
        if ((rc = copy_field(out->access_key_id, sizeof out->access_key_id, src->vals[P_KEY_ID],
                             "aws_access_key_id", err, errlen)) != 0 ||
            (rc = copy_field(out->secret_access_key, sizeof out->secret_access_key,
                             src->vals[P_SECRET], "aws_secret_access_key", err, errlen)) != 0)
            goto out;
        v = src->set[P_TOKEN]            ? src->vals[P_TOKEN]
            : src->set[P_SECURITY_TOKEN] ? src->vals[P_SECURITY_TOKEN]
                                         : NULL;
        if (v != NULL && (rc = copy_field(out->session_token, sizeof out->session_token, v,
                                          "aws_session_token", err, errlen)) != 0)
            goto out;
        v = src->set[P_EXPIRES]      ? src->vals[P_EXPIRES]
            : src->set[P_EXPIRATION] ? src->vals[P_EXPIRATION]
                                     : NULL;
        if (v != NULL && aws_creds_parse_time(v, &out->expires) != 0) {
            errbuf_set(err, errlen, "%s: profile \"%s\": expiry is not an ISO 8601 time", path,
                       profile);
            rc = -EINVAL;
            goto out;
        }
    }

    /* region */
    v = env_nonempty("AWS_REGION");
    if (v == NULL)
        v = env_nonempty("AWS_DEFAULT_REGION");
    if (v == NULL && fp->set[P_REGION])
        v = fp->vals[P_REGION];
    if (v != NULL &&
        (rc = copy_field(out->region, sizeof out->region, v, "region", err, errlen)) != 0)
        goto out;

    /* endpoint */
    if (!env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
        char name[64];
        size_t i;
        int w = snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", service);

        for (i = (size_t)strlen("AWS_ENDPOINT_URL_");
             w > 0 && (size_t)w < sizeof name && name[i] != '\0'; i++)
            name[i] =
                name[i] == '-' || name[i] == ' ' ? '_' : (char)toupper((unsigned char)name[i]);
        v = w > 0 && (size_t)w < sizeof name ? env_nonempty(name) : NULL;
        if (v == NULL)
            v = env_nonempty("AWS_ENDPOINT_URL");
        if (v == NULL && fp->set[P_SERVICES] && conf_buf != NULL) {
            fp->services_section = fp->vals[P_SERVICES];
            fp->service = service;
            if ((rc = parse_profile(io->conf_path, conf_buf, conf_len, fp, err, errlen)) != 0)
                goto out;
            if (fp->service_endpoint[0] != '\0')
                v = fp->service_endpoint;
        }
        if (v == NULL && fp->set[P_ENDPOINT])
            v = fp->vals[P_ENDPOINT];
        if (v != NULL && (rc = copy_field(out->endpoint_url, sizeof out->endpoint_url, v,
                                          "endpoint_url", err, errlen)) != 0)
            goto out;
    }
    rc = 0;
out:
    if (cp != NULL)
        OPENSSL_cleanse(cp, sizeof *cp);
    if (fp != NULL)
        OPENSSL_cleanse(fp, sizeof *fp);
    free(cp);
    free(fp);
    free_file(cred_buf);
    free_file(conf_buf);
    if (rc != 0)
        aws_creds_clear(out);
    return rc;
}

int aws_creds_resolve(const char *service, struct aws_creds *out, char *err, size_t errlen)
{
    struct resolve_io *io;
    int rc;

    if (service == NULL || out == NULL)
        return -EINVAL;
    io = calloc(1, sizeof *io);
    if (io == NULL)
        return -ENOMEM;
    rc = resolve(service, out, io, err, errlen);
    free(io);
    return rc;
}

static bool same_file(const struct aws_creds_file_id *a, const struct aws_creds_file_id *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static void stat_id(const char *path, struct aws_creds_file_id *id)
{
    struct stat st;

    memset(id, 0, sizeof *id);
    if (path[0] != '\0' && stat(path, &st) == 0)
        file_id_of(&st, id);
}

int aws_creds_get(struct aws_creds_cache *c, const char *service, int64_t now,
                  struct aws_creds *out, char *err, size_t errlen)
{
    struct resolve_io *io;
    struct aws_creds_file_id cred_now, conf_now;
    struct aws_creds *fresh;
    int rc = 0;

    if (c == NULL || service == NULL || out == NULL)
        return -EINVAL;
    io = calloc(1, sizeof *io);
    fresh = calloc(1, sizeof *fresh);
    if (io == NULL || fresh == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (c->loaded) {
        if (file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", io->cred_path,
                      sizeof io->cred_path) == 0 &&
            file_path("AWS_CONFIG_FILE", "config", io->conf_path, sizeof io->conf_path) == 0) {
            stat_id(io->cred_path, &cred_now);
            stat_id(io->conf_path, &conf_now);
            if (same_file(&cred_now, &c->cred_file) && same_file(&conf_now, &c->config_file) &&
                (c->creds.expires == 0 || now < c->creds.expires - AWS_CREDS_EXPIRY_SKEW_S)) {
                *out = c->creds;
                goto out;
            }
        }
    }
    rc = resolve(service, fresh, io, err, errlen);
    if (rc != 0)
        goto out;
    if (fresh->expires != 0 && now >= fresh->expires - AWS_CREDS_EXPIRY_SKEW_S) {
        char when[32];
        time_t t = (time_t)fresh->expires;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            snprintf(when, sizeof when, "%lld", (long long)fresh->expires);
        errbuf_set(err, errlen, "AWS credentials from the %s (profile \"%s\") expired at %s",
                   fresh->source, fresh->profile, when);
        rc = -EKEYEXPIRED;
        goto out;
    }
    aws_creds_clear(&c->creds);
    c->creds = *fresh;
    c->cred_file = io->cred_id;
    c->config_file = io->conf_id;
    c->loaded = true;
    *out = c->creds;
out:
    if (fresh != NULL) {
        aws_creds_clear(fresh);
        free(fresh);
    }
    free(io);
    return rc;
}

void aws_creds_clear(struct aws_creds *c)
{
    if (c != NULL)
        OPENSSL_cleanse(c, sizeof *c);
}

void aws_creds_cache_clear(struct aws_creds_cache *c)
{
    if (c != NULL)
        OPENSSL_cleanse(c, sizeof *c);
}
