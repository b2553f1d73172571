/* http_util.c - helpers shared by handlers and both protocol modules: request header and query
 * lookups, response body/header setters, the one JSON error body, the output buffer,
 * request-target splitting and reason phrases. Sockets and protocol state live in server.c, http1.c
 * and http2.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server_internal.h"
#include "hex.h"

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

bool http_query_param(const struct http_request *req, const char *key, char *val, size_t val_len)
{
    const char *q = req->query ? req->query : "";
    size_t klen = strlen(key);
    while (*q) {
        const char *end = strchr(q, '&');
        size_t n = end ? (size_t)(end - q) : strlen(q);
        if (n >= klen && strncmp(q, key, klen) == 0 && (n == klen || q[klen] == '=')) {
            if (val && val_len > 0) {
                size_t vn = n > klen ? n - klen - 1 : 0;
                if (vn >= val_len)
                    vn = val_len - 1;
                memcpy(val, q + klen + (n > klen ? 1 : 0), vn);
                val[vn] = '\0';
            }
            return true;
        }
        if (!end)
            break;
        q = end + 1;
    }
    return false;
}

int http_response_set_body(struct http_response *resp, int status, const char *content_type,
                           const char *body, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, body, len);
    free(resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = copy;
    resp->body_ref = NULL;
    resp->body_len = len;
    return 0;
}

int http_response_add_header(struct http_response *resp, const char *name, const char *value)
{
    size_t used = 0;
    /* storage is used from the front; find the end of what earlier calls used */
    for (size_t i = 0; i < resp->n_extra; i++) {
        const char *v = resp->extra[i].value;
        if (v >= resp->extra_storage && v < resp->extra_storage + sizeof resp->extra_storage) {
            size_t end = (size_t)(v - resp->extra_storage) + strlen(v) + 1;
            if (end > used)
                used = end;
        }
    }
    size_t vlen = strlen(value);
    if (resp->n_extra >= HTTP_MAX_EXTRA_HEADERS || vlen + 1 > sizeof resp->extra_storage - used)
        return -ENOSPC;
    memcpy(resp->extra_storage + used, value, vlen + 1);
    resp->extra[resp->n_extra].name = name;
    resp->extra[resp->n_extra].value = resp->extra_storage + used;
    resp->n_extra++;
    return 0;
}

int http_buf_reserve(struct http_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (b->off > 0) { /* compact first */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n)
            return 0;
    }
    size_t cap = b->cap ? b->cap : SERVER_BUF_SIZE;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int http_buf_append(struct http_buf *b, const void *p, size_t n)
{
    int rc = http_buf_reserve(b, n);
    if (rc == 0 && n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
    return rc;
}

void http_buf_free(struct http_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int http_split_target(char *target, const char **path, const char **query)
{
    char *p = target;
    if (strcmp(p, "*") == 0) {
        *path = p;
        *query = "";
        return 0;
    }
    if (*p != '/') {
        /* absolute-form: scheme://authority/path?query */
        char *s = strstr(p, "://");
        if (!s || s == p)
            return -EINVAL;
        for (char *t = p; t < s; t++)
            if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || *t == '+' || *t == '-' ||
                  *t == '.' || (t > p && *t >= '0' && *t <= '9')))
                return -EINVAL;
        char *slash = strchr(s + 3, '/');
        char *qm = strchr(s + 3, '?');
        if (!slash || (qm && qm < slash)) {
            /* no path: "/" (reuse the "//" of "://" minus one slash is not possible; point at
             * a static string and keep the query) */
            *path = "/";
            if (qm) {
                char *hash = strchr(qm + 1, '#');
                if (hash)
                    *hash = '\0';
                *query = qm + 1;
            } else {
                *query = "";
            }
            return 0;
        }
        p = slash;
    }
    char *hash = strchr(p, '#');
    if (hash)
        *hash = '\0';
    char *qm = strchr(p, '?');
    if (qm) {
        *qm = '\0';
        *query = qm + 1;
    } else {
        *query = "";
    }
    /* percent-decode the path in place */
    char *w = p;
    for (char *r = p; *r; r++) {
        if (*r == '%') {
            int hi = hex_value(r[1]), lo = hi >= 0 ? hex_value(r[2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            int v = hi * 16 + lo;
            if (v == 0)
                return -EINVAL;
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    *path = p;
    return 0;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

size_t http_error_body(char *buf, size_t len, int status, const char *msg)
{
    static const char head[] = "{\"error\":\"";
    char tail[40];
    int tn = snprintf(tail, sizeof tail, "\",\"status\":%d}\n", status);
    size_t hn = sizeof head - 1;
    if (tn < 0 || len < hn + (size_t)tn + 1) {
        if (len > 0)
            buf[0] = '\0';
        return 0;
    }
    size_t room = len - 1 - (size_t)tn; /* the message stops here so the tail always fits */
    size_t n = hn;
    memcpy(buf, head, hn);
    for (const unsigned char *s = (const unsigned char *)(msg ? msg : ""); *s; s++) {
        char esc[6];
        size_t e = 0;
        if (*s == '"' || *s == '\\') {
            esc[e++] = '\\';
            esc[e++] = (char)*s;
        } else if (*s < 0x20) {
            esc[e++] = '\\';
            esc[e++] = 'u';
            esc[e++] = '0';
            esc[e++] = '0';
            esc[e++] = hex_digits[*s >> 4];
            esc[e++] = hex_digits[*s & 15];
        } else {
            esc[e++] = *s < 0x7f ? (char)*s : '?'; /* ASCII only: never invalid UTF-8 */
        }
        if (n + e > room)
            break; /* truncated at a character boundary, never inside an escape */
        memcpy(buf + n, esc, e);
        n += e;
    }
    memcpy(buf + n, tail, (size_t)tn + 1);
    return n + (size_t)tn;
}

int http_response_error(struct http_response *resp, int status, const char *msg)
{
    char body[HTTP_ERROR_BODY_MAX];
    size_t n = http_error_body(body, sizeof body, status, msg);
    int rc = http_response_set_body(resp, status, HTTP_ERROR_CONTENT_TYPE, body, n);
    if (rc < 0) {
        /* Out of memory while answering: a static body still tells the client. */
        static const char oom[] = "{\"error\":\"out of memory\",\"status\":500}\n";
        free(resp->body);
        resp->body = NULL;
        resp->body_ref = oom;
        resp->body_len = sizeof oom - 1;
        resp->status = 500;
        resp->content_type = HTTP_ERROR_CONTENT_TYPE;
    }
    return rc;
}
