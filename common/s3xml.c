/* s3xml.c - bounded scanner for S3's XML answers (see s3xml.h). Elements are found by their
 * literal tags, as S3 writes them (no attributes on the elements we read, no CDATA); text is
 * decoded for the five XML entities and numeric references. */
#include "s3xml.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define S3XML_MAX_TAG 64

static const char *find(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle));
}

int s3xml_block(const char *xml, size_t len, size_t *pos, const char *tag, size_t *start,
                size_t *end)
{
    char open[S3XML_MAX_TAG + 3], close[S3XML_MAX_TAG + 4];
    size_t from = pos ? *pos : 0;
    const char *o, *c;
    int n;

    if (!xml || from > len)
        return -EINVAL;
    n = snprintf(open, sizeof(open), "<%s>", tag);
    if (n < 0 || (size_t)n >= sizeof(open))
        return -EINVAL;
    n = snprintf(close, sizeof(close), "</%s>", tag);
    if (n < 0 || (size_t)n >= sizeof(close))
        return -EINVAL;
    o = find(xml + from, len - from, open);
    if (!o)
        return -ENOENT;
    *start = (size_t)(o - xml) + strlen(open);
    c = find(xml + *start, len - *start, close);
    if (!c)
        return -EINVAL;
    *end = (size_t)(c - xml);
    if (pos)
        *pos = *end + strlen(close);
    return 0;
}

/* One entity at s[0] == '&' (at most len bytes): the code point and its length, or -EINVAL. */
static int entity(const char *s, size_t len, unsigned long *cp, size_t *used)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    const char *semi = memchr(s, ';', len < 12 ? len : 12);
    size_t n;

    if (!semi)
        return -EINVAL;
    n = (size_t)(semi - s) + 1;
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        if (n == strlen(named[i].name) && memcmp(s, named[i].name, n) == 0) {
            *cp = (unsigned char)named[i].ch;
            *used = n;
            return 0;
        }
    if (n >= 4 && s[1] == '#') {
        unsigned long v = 0;
        bool hex = s[2] == 'x';
        size_t i = hex ? 3 : 2;
        if (i >= n - 1)
            return -EINVAL;
        for (; i < n - 1; i++) {
            char ch = s[i];
            int d;
            if (ch >= '0' && ch <= '9')
                d = ch - '0';
            else if (hex && ch >= 'a' && ch <= 'f')
                d = ch - 'a' + 10;
            else if (hex && ch >= 'A' && ch <= 'F')
                d = ch - 'A' + 10;
            else
                return -EINVAL;
            v = v * (hex ? 16 : 10) + (unsigned long)d;
            if (v > 0x10FFFF)
                return -EINVAL;
        }
        if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
            return -EINVAL;
        *cp = v;
        *used = n;
        return 0;
    }
    return -EINVAL;
}

static int put_utf8(unsigned long cp, char *out, size_t out_len, size_t *o)
{
    unsigned char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n >= out_len)
        return -ENOSPC;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

int s3xml_value(const char *xml, size_t len, size_t *pos, const char *tag, char *out,
                size_t out_len)
{
    size_t start, end, o = 0, i;
    int rc = s3xml_block(xml, len, pos, tag, &start, &end);

    if (rc != 0)
        return rc;
    if (out_len == 0)
        return -ENOSPC;
    for (i = start; i < end;) {
        if (xml[i] == '<' || xml[i] == '\0')
            return -EINVAL; /* markup inside a leaf; a NUL would cut the value short */
        if (xml[i] == '&') {
            unsigned long cp;
            size_t used;
            if (entity(xml + i, end - i, &cp, &used) != 0)
                return -EINVAL;
            if (put_utf8(cp, out, out_len, &o) != 0)
                return -ENOSPC;
            i += used;
            continue;
        }
        if (o + 1 >= out_len)
            return -ENOSPC;
        out[o++] = xml[i++];
    }
    out[o] = '\0';
    return (int)o;
}

static int days_from_civil(int y, unsigned m, unsigned d, long *days)
{
    /* Howard Hinnant's algorithm, proleptic Gregorian */
    int era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = (long)era * 146097 + (long)doe - 719468;
    return 0;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int s3xml_time(const char *s, time_t *out)
{
    int y, mo, d, h, mi, se;
    long days;
    size_t n = strlen(s), i = 19;

    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
        return -EINVAL;
    if (s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
    }
    if (i != n - 1 || s[i] != 'Z')
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    days_from_civil(y, (unsigned)mo, (unsigned)d, &days);
    *out = (time_t)(days * 86400 + h * 3600 + mi * 60 + se);
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* The optional element tag within the whole answer, outside the item blocks (S3 puts the
 * paging elements at the top level; an item never holds them). */
static int top_value(const char *xml, size_t len, const char *tag, char *out, size_t out_len)
{
    int rc = s3xml_value(xml, len, NULL, tag, out, out_len);
    if (rc == -ENOENT) {
        if (out_len)
            out[0] = '\0';
        return 0;
    }
    return rc < 0 ? rc : 0;
}

static int truncated_of(const char *xml, size_t len, bool *truncated)
{
    char v[8];
    int rc = top_value(xml, len, "IsTruncated", v, sizeof(v));
    if (rc != 0)
        return rc;
    *truncated = strcmp(v, "true") == 0;
    return 0;
}

int s3xml_list_objects(const char *xml, size_t len,
                       int (*cb)(void *arg, const struct s3xml_object *o), void *arg,
                       bool *truncated, char *next, size_t next_len)
{
    size_t pos = 0, start, end;
    char num[32], date[64];
    int rc;

    if (len > STORE_MAX_XML || !find(xml, len, "</ListBucketResult>"))
        return -EINVAL; /* a cut answer is not a listing */
    if ((rc = truncated_of(xml, len, truncated)) != 0 ||
        (rc = top_value(xml, len, "NextContinuationToken", next, next_len)) != 0)
        return rc == -ENOSPC ? -EINVAL : rc;
    while ((rc = s3xml_block(xml, len, &pos, "Contents", &start, &end)) == 0) {
        struct s3xml_object o = {0};
        const char *b = xml + start;
        size_t bl = end - start;

        if (s3xml_value(b, bl, NULL, "Key", o.key, sizeof(o.key)) <= 0 ||
            s3xml_value(b, bl, NULL, "Size", num, sizeof(num)) <= 0 || parse_u64(num, &o.size) != 0)
            return -EINVAL;
        rc = s3xml_value(b, bl, NULL, "LastModified", date, sizeof(date));
        if (rc > 0 && s3xml_time(date, &o.mtime) != 0)
            return -EINVAL;
        if (rc < 0 && rc != -ENOENT)
            return -EINVAL;
        rc = cb(arg, &o);
        if (rc != 0)
            return rc;
    }
    return rc == -ENOENT ? 0 : rc;
}

int s3xml_list_uploads(const char *xml, size_t len,
                       int (*cb)(void *arg, const struct s3xml_upload *u), void *arg,
                       bool *truncated, char *next_key, size_t next_key_len, char *next_upload,
                       size_t next_upload_len)
{
    size_t pos = 0, start, end;
    char date[64];
    int rc;

    if (len > STORE_MAX_XML || !find(xml, len, "</ListMultipartUploadsResult>"))
        return -EINVAL;
    if ((rc = truncated_of(xml, len, truncated)) != 0 ||
        (rc = top_value(xml, len, "NextKeyMarker", next_key, next_key_len)) != 0 ||
        (rc = top_value(xml, len, "NextUploadIdMarker", next_upload, next_upload_len)) != 0)
        return rc == -ENOSPC ? -EINVAL : rc;
    while ((rc = s3xml_block(xml, len, &pos, "Upload", &start, &end)) == 0) {
        struct s3xml_upload u = {0};
        const char *b = xml + start;
        size_t bl = end - start;

        if (s3xml_value(b, bl, NULL, "Key", u.key, sizeof(u.key)) <= 0 ||
            s3xml_value(b, bl, NULL, "UploadId", u.upload_id, sizeof(u.upload_id)) <= 0 ||
            s3xml_value(b, bl, NULL, "Initiated", date, sizeof(date)) <= 0 ||
            s3xml_time(date, &u.initiated) != 0)
            return -EINVAL;
        rc = cb(arg, &u);
        if (rc != 0)
            return rc;
    }
    return rc == -ENOENT ? 0 : rc;
}

int s3xml_error(const char *xml, size_t len, char *code, size_t code_len, char *msg, size_t msg_len)
{
    size_t start, end;
    int rc;

    if (!xml || len > STORE_MAX_XML || s3xml_block(xml, len, NULL, "Error", &start, &end) != 0)
        return -ENOENT;
    rc = s3xml_value(xml + start, end - start, NULL, "Code", code, code_len);
    if (rc < 0 && code_len)
        code[0] = '\0';
    rc = s3xml_value(xml + start, end - start, NULL, "Message", msg, msg_len);
    if (rc < 0 && msg_len)
        msg[0] = '\0';
    return 0;
}
