/* httpsget.c - a bounded, blocking HTTP/1.0 GET over TLS or plain TCP (httpsget.h).
 *
 * Sockets are blocking with SO_RCVTIMEO/SO_SNDTIMEO plus an overall deadline checked between
 * reads; TLS policy (verification, SNI) is tls.c's. */
#include "httpsget.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "bounds.h"
#include "clock.h"

/* "https://host:port" -> host, port, tls. [v6] literals keep no brackets. */
static int split_url(const char *url, char *host, size_t hcap, char *port, size_t pcap, bool *tls)
{
    const char *p = url;
    *tls = true;
    if (strncmp(p, "https://", 8) == 0) {
        p += 8;
    } else if (strncmp(p, "http://", 7) == 0) {
        p += 7;
        *tls = false;
    }
    size_t hl;
    const char *rest;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close)
            return -EINVAL;
        hl = (size_t)(close - p - 1);
        if (hl >= hcap)
            return -EINVAL;
        memcpy(host, p + 1, hl);
        rest = close + 1;
    } else {
        hl = strcspn(p, ":/");
        if (hl == 0 || hl >= hcap)
            return -EINVAL;
        memcpy(host, p, hl);
        rest = p + hl;
    }
    host[hl] = '\0';
    if (*rest == ':') {
        size_t pl = strcspn(rest + 1, "/");
        if (pl == 0 || pl >= pcap)
            return -EINVAL;
        memcpy(port, rest + 1, pl);
        port[pl] = '\0';
    } else {
        (void)snprintf(port, pcap, "%s", *tls ? "443" : "80");
    }
    return 0;
}

static int dial(const char *host, const char *port, int timeout_ms, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rv = getaddrinfo(host, port, &hints, &res);
    if (rv) {
        (void)snprintf(err, err_len, "resolve %s: %s", host, gai_strerror(rv));
        return -EHOSTUNREACH;
    }
    int fd = -1, rc = -ECONNREFUSED;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            rc = -errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        (void)snprintf(err, err_len, "connect %s:%s: %s", host, port, strerror(-rc));
    return fd < 0 ? rc : fd;
}

int httpsget(struct tls_ctx *tls, const char *base_url, const char *path, size_t max_bytes,
             int timeout_ms, char **body, size_t *len, char *err, size_t err_len)
{
    char host[256], port[16], req[512];
    bool use_tls;
    int fd = -1, rc;
    SSL *ssl = NULL;
    char *buf = NULL;
    size_t n = 0, cap = max_bytes + HTTPSGET_MAX_HEADER + 1;
    int64_t deadline = clock_mono_ms() + timeout_ms;

    *body = NULL;
    *len = 0;
    rc = split_url(base_url, host, sizeof(host), port, sizeof(port), &use_tls);
    if (rc || (use_tls && !tls)) {
        (void)snprintf(err, err_len, "bad URL %.100s", base_url);
        return -EINVAL;
    }
    int w = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: text/plain\r\n\r\n",
                     path, host);
    if (w < 0 || (size_t)w >= sizeof(req))
        return -EINVAL;
    fd = dial(host, port, timeout_ms, err, err_len);
    if (fd < 0)
        return fd;
    rc = -EPROTO;
    if (use_tls) {
        ssl = tls_client_ssl(tls, host);
        /* etcd serves gRPC on h2: offer only HTTP/1.1 so this is a plain HTTP answer */
        static const unsigned char alpn[] = "\x08http/1.1";
        if (!ssl || SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0 ||
            SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
            char e[200];
            (void)snprintf(err, err_len, "tls %s: %s", host, tls_error_string(ssl, e, sizeof(e)));
            goto out;
        }
        if (SSL_write(ssl, req, w) != w) {
            (void)snprintf(err, err_len, "write to %s failed", host);
            goto out;
        }
    } else if (write(fd, req, (size_t)w) != w) {
        (void)snprintf(err, err_len, "write to %s: %s", host, strerror(errno));
        goto out;
    }
    buf = malloc(cap);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (clock_mono_ms() > deadline) {
            rc = -ETIMEDOUT;
            (void)snprintf(err, err_len, "GET %s%s: timed out", base_url, path);
            goto out;
        }
        if (n == cap - 1) {
            rc = -E2BIG;
            (void)snprintf(err, err_len, "GET %s%s: answer over %zu bytes", base_url, path, cap);
            goto out;
        }
        int r =
            ssl ? SSL_read(ssl, buf + n, (int)(cap - 1 - n)) : (int)read(fd, buf + n, cap - 1 - n);
        if (r <= 0) {
            if (ssl && SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN)
                break;
            if (!ssl && r == 0)
                break;
            if (ssl && SSL_get_error(ssl, r) == SSL_ERROR_SYSCALL && n > 0)
                break; /* closed without close_notify: the body ends at EOF anyway */
            if (ssl && SSL_get_error(ssl, r) == SSL_ERROR_SSL) {
                char e[200];
                (void)snprintf(err, err_len, "read %s: %s", host,
                               tls_error_string(ssl, e, sizeof(e)));
                goto out;
            }
            rc = -ETIMEDOUT;
            (void)snprintf(err, err_len, "GET %s%s: no answer", base_url, path);
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    /* "HTTP/1.x 200 ..." */
    int code = 0;
    if (n >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && buf[8] == ' ')
        for (int k = 9; k < 12 && buf[k] >= '0' && buf[k] <= '9'; k++)
            code = code * 10 + (buf[k] - '0');
    if (code != 200) {
        (void)snprintf(err, err_len, "GET %s%s: status %d", base_url, path, code);
        goto out;
    }
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (!hdr_end || (size_t)(hdr_end - buf) > HTTPSGET_MAX_HEADER) {
        (void)snprintf(err, err_len, "GET %s%s: malformed answer", base_url, path);
        goto out;
    }
    hdr_end += 4;
    *len = n - (size_t)(hdr_end - buf);
    memmove(buf, hdr_end, *len + 1);
    *body = buf;
    buf = NULL;
    rc = 0;
out:
    if (ssl) {
        ERR_clear_error();
        SSL_free(ssl);
    }
    close(fd);
    free(buf);
    return rc;
}
