/* azxml.c - the List Blobs answer, scanned within bounds: each <Blob> element's name, size and
 * modification time, and the paging marker. Element text is entity-decoded; CDATA, nested
 * markup inside the fields, and Encoded names are refused. */
#include "azxml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

/* the text of <tag>...</tag> inside [p, end), or NULL */
static const char *find_elem(const char *p, const char *end, const char *tag, size_t *tlen)
{
    char open[64], close[64];
    size_t ol, cl;
    const char *a, *b;

    ol = (size_t)snprintf(open, sizeof open, "<%s>", tag);
    cl = (size_t)snprintf(close, sizeof close, "</%s>", tag);
    a = memmem(p, (size_t)(end - p), open, ol);
    if (a == NULL)
        return NULL;
    a += ol;
    b = memmem(a, (size_t)(end - a), close, cl);
    if (b == NULL)
        return NULL;
    *tlen = (size_t)(b - a);
    return a;
}

static int put_utf8(char *out, size_t cap, size_t *o, unsigned long cp)
{
    unsigned char b[4];
    size_t n;

    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -EINVAL;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n >= cap)
        return -E2BIG;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

/* entity-decodes [s, s+n) into out (NUL-terminated) */
static int decode_text(const char *s, size_t n, char *out, size_t cap)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int rc;
        if (s[i] == '<')
            return -EINVAL; /* markup (CDATA, nested elements) is not expected here */
        if (s[i] != '&') {
            if (o + 1 >= cap)
                return -E2BIG;
            out[o++] = s[i];
            continue;
        }
        i++;
        if (i < n && s[i] == '#') {
            unsigned long cp = 0;
            int base = 10, digits = 0;
            i++;
            if (i < n && s[i] == 'x') {
                base = 16;
                i++;
            }
            for (; i < n && s[i] != ';' && digits < 8; i++, digits++) {
                int d = s[i] >= '0' && s[i] <= '9'                 ? s[i] - '0'
                        : base == 16 && s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                        : base == 16 && s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
                                                                   : -1;
                if (d < 0)
                    return -EINVAL;
                cp = cp * (unsigned long)base + (unsigned long)d;
            }
            if (digits == 0 || i >= n || s[i] != ';')
                return -EINVAL;
            rc = put_utf8(out, cap, &o, cp);
            if (rc != 0)
                return rc;
            continue;
        }
        {
            bool found = false;
            for (size_t e = 0; e < ARRAY_SIZE(ents); e++) {
                size_t el = strlen(ents[e].name);
                if (n - i >= el && memcmp(s + i, ents[e].name, el) == 0) {
                    if (o + 1 >= cap)
                        return -E2BIG;
                    out[o++] = ents[e].c;
                    i += el - 1;
                    found = true;
                    break;
                }
            }
            if (!found)
                return -EINVAL;
        }
    }
    out[o] = '\0';
    return 0;
}

static int two(const char *s, int *v)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -EINVAL;
    *v = (s[0] - '0') * 10 + (s[1] - '0');
    return 0;
}

int azxml_parse_date(const char *s, size_t n, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm = {0};
    int d, y1, y2, h, mi, sec, mon = -1;

    /* "Thu, 03 Dec 2026 22:10:00 GMT" */
    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -EINVAL;
    if (two(s + 5, &d) || two(s + 12, &y1) || two(s + 14, &y2) || two(s + 17, &h) ||
        two(s + 20, &mi) || two(s + 23, &sec))
        return -EINVAL;
    for (int m = 0; m < 12; m++) {
        if (memcmp(s + 8, months + 3 * m, 3) == 0)
            mon = m;
    }
    if (mon < 0 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    tm.tm_year = y1 * 100 + y2 - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return 0;
}

int azxml_list_blobs(const char *xml, size_t len, azxml_blob_fn fn, void *arg, char *marker,
                     size_t marker_len)
{
    const char *end, *p, *t;
    struct azxml_blob *b;
    size_t tl, count = 0;
    int rc = 0;

    if (xml == NULL || fn == NULL || marker == NULL || marker_len == 0)
        return -EINVAL;
    end = xml + len;
    marker[0] = '\0';
    if (memmem(xml, len, "<EnumerationResults", 19) == NULL)
        return -EINVAL;
    b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    p = xml;
    for (;;) {
        const char *bs = memmem(p, (size_t)(end - p), "<Blob>", 6), *be;
        char num[24];
        uint64_t size = 0;

        if (bs == NULL)
            break;
        be = memmem(bs, (size_t)(end - bs), "</Blob>", 7);
        if (be == NULL) {
            rc = -EINVAL;
            goto out;
        }
        if (++count > AZXML_MAX_BLOBS) {
            rc = -E2BIG;
            goto out;
        }
        t = find_elem(bs, be, "Name", &tl);
        if (t == NULL || tl == 0 || (rc = decode_text(t, tl, b->name, sizeof b->name)) != 0 ||
            b->name[0] == '\0') {
            rc = rc != 0 ? rc : -EINVAL;
            goto out;
        }
        t = find_elem(bs, be, "Content-Length", &tl);
        if (t == NULL || tl == 0 || tl >= sizeof num) {
            rc = -EINVAL;
            goto out;
        }
        for (size_t i = 0; i < tl; i++) {
            if (t[i] < '0' || t[i] > '9' || size > (UINT64_MAX - 9) / 10) {
                rc = -EINVAL;
                goto out;
            }
            size = size * 10 + (uint64_t)(t[i] - '0');
        }
        b->size = size;
        t = find_elem(bs, be, "Last-Modified", &tl);
        if (t == NULL || azxml_parse_date(t, tl, &b->mtime) != 0) {
            rc = -EINVAL;
            goto out;
        }
        rc = fn(arg, b);
        if (rc != 0)
            goto out;
        p = be + 7;
    }
    t = find_elem(p, end, "NextMarker", &tl);
    if (t != NULL && tl > 0)
        rc = decode_text(t, tl, marker, marker_len);
out:
    free(b);
    if (rc != 0 && marker_len > 0)
        marker[0] = '\0';
    return rc;
}
