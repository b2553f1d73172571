/* bench_tlsfloor.c - the floor of reset-member's steady state: a process that does nothing but
 * one mTLS handshake with etcd (OpenSSL 3, the same certificates, ALPN h2) and exits. Any
 * program that asks etcd anything over mTLS from a fresh process pays at least this; run beside
 * reset-member by tests/bench/reset_member.sh. Plain OpenSSL calls only, none of the project's
 * code, so it measures the library and the kernel, not us.
 * usage: bench_tlsfloor HOST PORT CA CERT KEY      (exit 0 after a completed handshake) */
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_tcp(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int fd = -1;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    static const unsigned char alpn[] = "\x02h2";
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1, rc = 1;

    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT CA CERT KEY\n", argv[0]);
        return 2;
    }
    /* as reset-member (tls_init(false)): no openssl.cnf, no exit-time cleanup */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL);
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
        goto out;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    fd = connect_tcp(argv[1], argv[2]);
    if (fd < 0 || !(ssl = SSL_new(ctx)) || SSL_set_fd(ssl, fd) != 1 ||
        SSL_set1_host(ssl, argv[1]) != 1)
        goto out;
    if (SSL_connect(ssl) == 1)
        rc = 0;
out:
    if (rc)
        ERR_print_errors_fp(stderr);
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    return rc;
}
