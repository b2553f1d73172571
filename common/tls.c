/* tls.c - OpenSSL 3 client and server contexts, rebuilt when their files change on disk.
 *
 * Builds SSL_CTXs (versions, security level, TLS 1.2 ciphers, CA, certificate, key, ALPN) and
 * client SSL objects with SNI and peer name checks; sets OpenSSL up once per process. Sockets,
 * handshakes and I/O are left to grpc.c (client) and the agent (server). */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "bounds.h"
#include "log.h"
#include "clock.h"

#define TLS_NFILES 3
#define TLS_MIN_SECURITY_LEVEL 2 /* >= 112-bit keys, no SHA-1 signatures: Debian's default */
/* TLS 1.2 cipher suites, both sides: AEAD with forward secrecy only (no CBC: LUCKY13; no static
 * RSA key exchange). TLS 1.3's suites are all AEAD with (EC)DHE and stay OpenSSL's default. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

struct tls_file_id {
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct tls_ctx {
    bool server;
    char *files[TLS_NFILES]; /* ca, cert, key; NULL when not used */
    SSL_CTX *ssl_ctx;
    struct tls_file_id seen[TLS_NFILES]; /* identity at the last build attempt */
    long long last_check_ms;
    pthread_mutex_t lock;
};

static const unsigned char alpn_h2[] = {2, 'h', '2'};
static const unsigned char alpn_server[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_exit_cleanup = true;

static void tls_init_once(void)
{
    /* No openssl.cnf: this file is the TLS policy, whatever the image holds (the distroless
     * image has none; Debian's sets nothing), and reading it cost every start ~0.8 M
     * instructions. */
    uint64_t opts = OPENSSL_INIT_NO_LOAD_CONFIG;

    if (!tls_exit_cleanup)
        opts |= OPENSSL_INIT_NO_ATEXIT;
    (void)OPENSSL_init_ssl(opts, NULL); /* a failure shows at SSL_CTX_new */
}

void tls_init(bool exit_cleanup)
{
    if (!exit_cleanup)
        tls_exit_cleanup = false;
    pthread_once(&tls_once, tls_init_once);
}

const char *tls_error_string(SSL *ssl, char *buf, size_t len)
{
    size_t used = 0;
    unsigned long e;
    const char *reason;
    int n;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        reason = ERR_reason_error_string(e);
        if (used < len) {
            if (reason)
                n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", reason);
            else
                n = snprintf(buf + used, len - used, "%serror:%08lX", used ? "; " : "", e);
            used = n < 0 ? len : used + (size_t)n;
        }
    }
    if (ssl && SSL_get_verify_result(ssl) != X509_V_OK && used < len) {
        n = snprintf(buf + used, len - used, "%s(verify: %s)", used ? " " : "",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
        used = n < 0 ? len : used + (size_t)n;
    }
    if (used == 0)
        snprintf(buf, len, "unknown TLS error");
    return buf;
}

/* Checks that a configured file is readable, for a clear message ("ca file /x: No such file"). */
static int check_file(const char *what, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
        return -errno;
    }
    fclose(f);
    return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    /* Our list in our order of preference: h2 if offered, else http/1.1. */
    if (SSL_select_next_proto(&sel, outlen, alpn_server, sizeof alpn_server, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Key type of a DER PrivateKeyInfo (PKCS#8) for the decoder; NULL if not one we name. */
static const char *pkcs8_key_type(const unsigned char *der, long len)
{
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &der, len);
    const ASN1_OBJECT *alg = NULL;
    const char *type = NULL;

    if (p8 && PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8) == 1) {
        switch (OBJ_obj2nid(alg)) {
        case NID_X9_62_id_ecPublicKey:
            type = "EC";
            break;
        case NID_rsaEncryption:
            type = "RSA";
            break;
        case NID_rsassaPss:
            type = "RSA-PSS";
            break;
        case NID_ED25519:
            type = "ED25519";
            break;
        case NID_ED448:
            type = "ED448";
            break;
        default:
            break;
        }
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    return type;
}

/* The first private key of a PEM file, decoded by a decoder narrowed to its type and structure:
 * OpenSSL 3.0's PEM_read_bio_PrivateKey sets up every decoder of every key type (~3 M
 * instructions, a tenth of reset-member's run). NULL for anything else (encrypted, other key
 * types, unreadable): the caller takes the generic path then, whose errors are the ones to
 * report, so this one leaves no error behind. */
static EVP_PKEY *read_key_narrow(const char *path)
{
    BIO *b = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    EVP_PKEY *pkey = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    const char *structure = NULL, *type = NULL;
    long len = 0;
    size_t left;

    ERR_set_mark();
    b = BIO_new_file(path, "r");
    for (int i = 0; b && i < TLS_MAX_PEM_BLOCKS && !structure; i++) {
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        name = header = NULL;
        der = NULL;
        if (PEM_read_bio(b, &name, &header, &der, &len) != 1)
            goto out;
        if (strcmp(name, "PRIVATE KEY") == 0) {
            structure = "PrivateKeyInfo";
            type = pkcs8_key_type(der, len);
        } else if (strcmp(name, "EC PRIVATE KEY") == 0) {
            structure = "type-specific";
            type = "EC";
        } else if (strcmp(name, "RSA PRIVATE KEY") == 0) {
            structure = "type-specific";
            type = "RSA";
        } else if (strstr(name, "PRIVATE KEY")) {
            goto out; /* ENCRYPTED, DSA, ...: the generic path */
        }
    }
    /* a header is "Proc-Type: 4,ENCRYPTED" (legacy encryption): the generic path asks */
    if (!structure || !type || header[0])
        goto out;
    dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", structure, type, EVP_PKEY_KEYPAIR, NULL, NULL);
    p = der;
    left = (size_t)len;
    if (!dctx || OSSL_DECODER_from_data(dctx, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    OSSL_DECODER_CTX_free(dctx);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(der, der ? (size_t)len : 0);
    BIO_free(b);
    ERR_pop_to_mark();
    return pkey;
}

/* Builds a fresh SSL_CTX from the files; NULL with err filled. */
static SSL_CTX *build_ctx(bool server, char *const files[TLS_NFILES], char *err, size_t err_len)
{
    static const unsigned char sid_ctx[] = "etcd-recovery";
    const char *ca = files[0], *cert = files[1], *key = files[2];
    char why[256];
    SSL_CTX *c = NULL;

    ERR_clear_error();
    if ((ca && check_file("ca file", ca, err, err_len) < 0) ||
        (cert && check_file("cert file", cert, err, err_len) < 0) ||
        (key && check_file("key file", key, err, err_len) < 0))
        goto fail;
    c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c) {
        snprintf(err, err_len, "SSL_CTX_new: %s", tls_error_string(NULL, why, sizeof why));
        goto fail;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    if (SSL_CTX_get_security_level(c) < TLS_MIN_SECURITY_LEVEL)
        SSL_CTX_set_security_level(c, TLS_MIN_SECURITY_LEVEL);
    if (SSL_CTX_set_cipher_list(c, TLS12_CIPHERS) != 1) {
        snprintf(err, err_len, "TLS 1.2 ciphers %s: %s", TLS12_CIPHERS,
                 tls_error_string(NULL, why, sizeof why));
        goto fail;
    }
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* grpc.c keeps its own output buffer and may retry a write with a moved pointer. */
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (ca && SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
        snprintf(err, err_len, "ca file %s: %s", ca, tls_error_string(NULL, why, sizeof why));
        goto fail;
    }
    if (cert && SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
        snprintf(err, err_len, "cert file %s: %s", cert, tls_error_string(NULL, why, sizeof why));
        goto fail;
    }
    if (cert) {
        EVP_PKEY *pk = read_key_narrow(key ? key : cert);
        int ok = pk ? SSL_CTX_use_PrivateKey(c, pk)
                    : SSL_CTX_use_PrivateKey_file(c, key ? key : cert, SSL_FILETYPE_PEM);

        EVP_PKEY_free(pk); /* the SSL_CTX holds its own reference */
        if (ok != 1) {
            snprintf(err, err_len, "key file %s: %s", key ? key : cert,
                     tls_error_string(NULL, why, sizeof why));
            goto fail;
        }
    }
    if (cert && SSL_CTX_check_private_key(c) != 1) {
        snprintf(err, err_len, "key file %s does not match cert file %s: %s", key ? key : cert,
                 cert, tls_error_string(NULL, why, sizeof why));
        goto fail;
    }

    if (server) {
        SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
        SSL_CTX_set_session_id_context(c, sid_ctx, sizeof sid_ctx - 1);
        if (ca) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
            if (!names) {
                snprintf(err, err_len, "ca file %s: no CA names: %s", ca,
                         tls_error_string(NULL, why, sizeof why));
                goto fail;
            }
            SSL_CTX_set_client_CA_list(c, names);
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        /* set_alpn_protos returns 0 on success */
        if (SSL_CTX_set_alpn_protos(c, alpn_h2, sizeof alpn_h2) != 0) {
            snprintf(err, err_len, "ALPN: %s", tls_error_string(NULL, why, sizeof why));
            goto fail;
        }
    }
    return c;
fail:
    SSL_CTX_free(c);
    ERR_clear_error();
    return NULL;
}

static void stat_files(char *const files[TLS_NFILES], struct tls_file_id ids[TLS_NFILES])
{
    struct stat sb;

    for (int i = 0; i < TLS_NFILES; i++) {
        memset(&ids[i], 0, sizeof ids[i]);
        /* stat, not lstat: Kubernetes swaps the ..data symlink, the target is what changes */
        if (files[i] && stat(files[i], &sb) == 0) {
            ids[i].present = true;
            ids[i].dev = sb.st_dev;
            ids[i].ino = sb.st_ino;
            ids[i].size = sb.st_size;
            ids[i].mtime = sb.st_mtim;
        }
    }
}

static bool same_ids(const struct tls_file_id *a, const struct tls_file_id *b)
{
    for (int i = 0; i < TLS_NFILES; i++) {
        if (a[i].present != b[i].present || a[i].dev != b[i].dev || a[i].ino != b[i].ino ||
            a[i].size != b[i].size || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
            a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
            return false;
    }
    return true;
}

static void tls_ctx_destroy(struct tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl_ctx);
    for (int i = 0; i < TLS_NFILES; i++)
        free(t->files[i]);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct tls_ctx *tls_new(bool server, const struct tls_files *files, char *err,
                               size_t err_len)
{
    struct tls_ctx *t = NULL;
    const char *names[TLS_NFILES];

    tls_init(true);
    if (!files) {
        snprintf(err, err_len, "no TLS files given");
        return NULL;
    }
    names[0] = files->ca_file;
    names[1] = files->cert_file;
    names[2] = files->key_file;
    if (!server && !files->ca_file) {
        snprintf(err, err_len, "a CA file is required to verify the server");
        return NULL;
    }
    if (server && (!files->cert_file || !files->key_file)) {
        snprintf(err, err_len, "a server needs a cert file and a key file");
        return NULL;
    }
    if (!server && files->key_file && !files->cert_file) {
        snprintf(err, err_len, "key file %s given without a cert file", files->key_file);
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    t->server = server;
    pthread_mutex_init(&t->lock, NULL);
    for (int i = 0; i < TLS_NFILES; i++) {
        if (names[i] && names[i][0] && !(t->files[i] = strdup(names[i]))) {
            snprintf(err, err_len, "out of memory");
            goto fail;
        }
    }
    /* stat before reading so that a change during the build is seen at the next check */
    stat_files(t->files, t->seen);
    t->ssl_ctx = build_ctx(server, t->files, err, err_len);
    if (!t->ssl_ctx)
        goto fail;
    t->last_check_ms = clock_mono_ms();
    return t;
fail:
    tls_ctx_destroy(t);
    return NULL;
}

struct tls_ctx *tls_client_new(const struct tls_files *files, char *err, size_t err_len)
{
    return tls_new(false, files, err, err_len);
}

struct tls_ctx *tls_server_new(const struct tls_files *files, char *err, size_t err_len)
{
    return tls_new(true, files, err, err_len);
}

/* Caller holds t->lock. */
static void maybe_reload(struct tls_ctx *t)
{
    struct tls_file_id ids[TLS_NFILES];
    char err[512];
    SSL_CTX *fresh;
    long long now = clock_mono_ms();

    if (now - t->last_check_ms < TLS_RELOAD_CHECK_MS)
        return;
    t->last_check_ms = now;
    stat_files(t->files, ids);
    if (same_ids(ids, t->seen))
        return;
    /* Remember this identity whatever the outcome: a broken file is reported once and
     * retried only when it changes again. */
    memcpy(t->seen, ids, sizeof ids);
    fresh = build_ctx(t->server, t->files, err, sizeof err);
    if (!fresh) {
        cJSON *fields = cJSON_CreateObject();
        if (fields)
            cJSON_AddStringToObject(fields, "error", err);
        log_event(LOG_WARN, "tls: reloading changed files failed, keeping the previous context",
                  fields);
        return;
    }
    SSL_CTX_free(t->ssl_ctx); /* open connections hold their own reference */
    t->ssl_ctx = fresh;
}

SSL_CTX *tls_ctx_current(struct tls_ctx *ctx)
{
    SSL_CTX *c;

    pthread_mutex_lock(&ctx->lock);
    maybe_reload(ctx);
    c = ctx->ssl_ctx;
    pthread_mutex_unlock(&ctx->lock);
    return c;
}

SSL *tls_client_ssl(struct tls_ctx *ctx, const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    X509_VERIFY_PARAM *param;
    SSL *ssl;

    pthread_mutex_lock(&ctx->lock);
    maybe_reload(ctx);
    ssl = SSL_new(ctx->ssl_ctx); /* takes its own reference on the SSL_CTX */
    pthread_mutex_unlock(&ctx->lock);
    if (!ssl)
        return NULL;
    param = SSL_get0_param(ssl);
    if (is_ip) {
        /* no SNI for IP literals (RFC 6066); check the IP SAN instead */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
            goto fail;
    } else {
        /* SSL_set_tlsext_host_name's macro casts const away: hand it a copy */
        char name[TLS_MAX_HOST];
        int n = snprintf(name, sizeof name, "%s", host);
        if (n < 0 || (size_t)n >= sizeof name)
            goto fail;
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
            goto fail;
    }
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

bool tls_ctx_verifies_clients(const struct tls_ctx *ctx)
{
    return ctx->server && ctx->files[0] != NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    tls_ctx_destroy(ctx);
}
