/* tls.h - OpenSSL 3 contexts for both sides, re-read when their files change on disk.
 *
 * Kubernetes rotates mounted secrets by swapping a symlink; a long-running agent must pick up
 * the new certificate without a restart. A tls_ctx remembers the (device, inode, size, mtime)
 * of its files and rebuilds its SSL_CTX when any changed, at most once per second; connections
 * already open keep the SSL_CTX they were made with (OpenSSL reference-counts it). A rebuild
 * that fails (half-written files) keeps the old context and logs once.
 * Sockets, handshakes and I/O are the callers' (grpc.c for clients, the agent's server). */
#ifndef ER_TLS_H
#define ER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_ctx;

/* Sets OpenSSL up for the process, once (tls_client_new and tls_server_new call it; a program
 * that wants exit_cleanup false calls it first, before any thread). OpenSSL's configuration
 * file is not read: the policy is tls.c's. exit_cleanup false skips OpenSSL's atexit cleanup
 * (~1.3 M instructions freeing what the exiting process gives back anyway). */
void tls_init(bool exit_cleanup);

struct tls_files {
    const char *ca_file;   /* CA bundle: verify the peer against it (client: required) */
    const char *cert_file; /* our certificate chain (server: required; client: optional) */
    const char *key_file;  /* its private key */
};

/* Client context: TLS >= 1.2, security level >= 2, peer verification against ca_file, ALPN
 * "h2", optional client certificate. Returns NULL with err filled (file names and OpenSSL's
 * reason). */
struct tls_ctx *tls_client_new(const struct tls_files *files, char *err, size_t err_len);

/* Server context: TLS >= 1.2, security level >= 2, certificate and key required. If
 * files->ca_file is set, client certificates are required and verified against it. ALPN: "h2"
 * if offered, else "http/1.1". Returns NULL with err filled. */
struct tls_ctx *tls_server_new(const struct tls_files *files, char *err, size_t err_len);

/* Current SSL_CTX (after reloading it if the files changed). Borrowed: valid until the next
 * tls_ctx_current or tls_ctx_free; SSL objects made from it keep their own reference. */
SSL_CTX *tls_ctx_current(struct tls_ctx *ctx);

/* A client SSL for `host` (a DNS name or an IP literal): sets SNI for names and turns on
 * hostname or IP verification. Returns NULL on allocation failure. */
SSL *tls_client_ssl(struct tls_ctx *ctx, const char *host);

/* True if a client certificate is verified by this server context. */
bool tls_ctx_verifies_clients(const struct tls_ctx *ctx);

void tls_ctx_free(struct tls_ctx *ctx);

/* Render the OpenSSL error queue (and verify result of ssl, if not NULL) into buf, clearing
 * the queue. Returns buf. */
const char *tls_error_string(SSL *ssl, char *buf, size_t len);

#endif
