/* bench_h2get.c - a minimal HTTP/2-over-TLS GET client (nghttp2 + OpenSSL) that prints the
 * response's status, headers and trailers ("name: value" lines on stdout) and writes the body
 * to a file. curl's CLI does not show HTTP/2 trailers; tests/e2e/snapshot.sh uses this to check
 * x-etcd-snapshot-sha256. Exit 0 only when the stream ended cleanly (END_STREAM, no reset).
 *
 * usage: bench_h2get HOST PORT PATH CACERT CERT KEY OUTFILE */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"

#define H2GET_BUF (64 * 1024)

struct h2get {
    SSL *ssl;
    FILE *out;
    int32_t stream_id;
    bool closed, clean, body_started;
};

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
    (void)s;
    (void)flags;
    struct h2get *g = arg;
    int n = SSL_write(g->ssl, data, (int)len);
    return n > 0 ? n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    (void)s;
    (void)f;
    (void)flags;
    struct h2get *g = arg;
    printf("%s%.*s: %.*s\n", g->body_started ? "trailer " : "", (int)namelen, (const char *)name,
           (int)valuelen, (const char *)value);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *arg)
{
    (void)s;
    (void)flags;
    (void)id;
    struct h2get *g = arg;
    g->body_started = true;
    return fwrite(data, 1, len, g->out) == len ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *arg)
{
    (void)s;
    (void)id;
    struct h2get *g = arg;
    g->closed = true;
    g->clean = code == NGHTTP2_NO_ERROR;
    if (!g->clean)
        printf("reset: %u\n", code);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT PATH CACERT CERT KEY OUTFILE\n", argv[0]);
        return 2;
    }
    int rc = 1, fd = -1;
    struct h2get g = {0};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    nghttp2_session *sess = NULL;
    nghttp2_session_callbacks *cb = NULL;
    static const unsigned char alpn[] = "\x02h2";
    if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[4], NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, argv[5]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[6], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0)
        goto out;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    uint64_t port;
    if (config_parse_u64(argv[2], 1, 65535, &port) < 0)
        goto out;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
        (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    if (!(g.ssl = SSL_new(ctx)) || SSL_set_fd(g.ssl, fd) != 1 || SSL_connect(g.ssl) != 1)
        goto out;
    const unsigned char *proto = NULL;
    unsigned proto_len = 0;
    SSL_get0_alpn_selected(g.ssl, &proto, &proto_len);
    if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) {
        fprintf(stderr, "no h2 via ALPN\n");
        goto out;
    }
    if (!(g.out = fopen(argv[7], "wb")))
        goto out;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_client_new(&sess, cb, &g);
    nghttp2_settings_entry st[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(sess, NGHTTP2_FLAG_NONE, st, 1);
    nghttp2_session_set_local_window_size(sess, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    char authority[128];
    snprintf(authority, sizeof authority, "%s:%s", argv[1], argv[2]);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hdrs[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", authority),
                         NV(":path", argv[3])};
    g.stream_id = nghttp2_submit_request(sess, NULL, hdrs, 4, NULL, NULL);
    static uint8_t buf[H2GET_BUF];
    while (!g.closed) {
        if (nghttp2_session_send(sess) != 0)
            goto out;
        int n = SSL_read(g.ssl, buf, sizeof buf);
        if (n <= 0)
            break;
        if (nghttp2_session_mem_recv(sess, buf, (size_t)n) < 0)
            goto out;
    }
    rc = g.closed && g.clean ? 0 : 1;
out:
    if (rc != 0)
        ERR_print_errors_fp(stderr);
    if (g.out && fclose(g.out) != 0)
        rc = 1;
    nghttp2_session_del(sess);
    nghttp2_session_callbacks_del(cb);
    if (g.ssl)
        SSL_free(g.ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    return rc;
}
