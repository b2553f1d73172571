/* test_tls.c - unit tests for tls.c: context errors, reload on file change, handshakes.
 *
 * Certificates are made with the openssl CLI in a temp dir that the group teardown removes.
 * Handshakes run client and server in one thread over a non-blocking socketpair; TLS 1.2 cipher
 * policy against plain OpenSSL peers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "array.h"
#include "log.h"
#include "tls.h"

#define PATH_LEN 512
#define RELOAD_WAIT_US 1100000 /* tls.c checks the files at most once per second */
#define HANDSHAKE_ROUNDS 1000

static char dir[] = "/tmp/test_tls.XXXXXX";
static char ca[PATH_LEN], other_ca[PATH_LEN], crt[PATH_LEN], key[PATH_LEN];
static int generation;

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* rm -rf without a shell */
static int rm_tree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    return system(cmd);
}

static void path(char *out, const char *name)
{
    int n = snprintf(out, PATH_LEN, "%s/%s", dir, name);

    assert_true(n > 0 && n < PATH_LEN);
}

/* A new leaf key+cert signed by ca.key with CN=gen-<n>, moved into place like a secret
 * rotation (rename of each file). */
static int new_leaf(void)
{
    generation++;
    return sh("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-subj /CN=gen-%d -keyout new.key -out new.csr 2>/dev/null && "
              "openssl x509 -req -in new.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
              "-extfile ext.cnf -extensions leaf -out new.crt 2>/dev/null && "
              "mv new.key leaf.key && mv new.crt leaf.crt",
              dir, generation);
}

static int group_teardown(void **state);

static int group_setup_inner(void)
{
    if (!mkdtemp(dir))
        return -1;
    path(ca, "ca.crt");
    path(other_ca, "other-ca.crt");
    path(crt, "leaf.crt");
    path(key, "leaf.key");
    if (sh("cd %s && printf '[leaf]\\nsubjectAltName = IP:127.0.0.1, DNS:localhost\\n"
           "extendedKeyUsage = serverAuth, clientAuth\\n' >ext.cnf && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=other-ca -keyout other-ca.key -out other-ca.crt 2>/dev/null",
           dir) != 0)
        return -1;
    return new_leaf() == 0 ? 0 : -1;
}

/* A setup that fails half way cleans up itself: cmocka skips the teardown then. */
static int group_setup(void **state)
{
    if (group_setup_inner() == 0)
        return 0;
    group_teardown(state);
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (strstr(dir, "XXXXXX"))
        return 0; /* mkdtemp never ran */
    return rm_tree(dir);
}

/* CN of the certificate a context would present. */
static int cert_generation(SSL_CTX *c)
{
    X509 *x = SSL_CTX_get0_certificate(c);
    char cn[64] = "";
    int g = -1;

    assert_non_null(x);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    assert_int_equal(sscanf(cn, "gen-%d", &g), 1);
    return g;
}

/* Rebuilds of a tls_ctx as seen through tls_ctx_current: the context last returned is kept
 * alive by a reference of our own, so a rebuilt one can never reuse its address and a changed
 * pointer is exactly one rebuild (each call rebuilds at most once). */
struct ctx_watch {
    struct tls_ctx *t;
    SSL_CTX *held;
    unsigned rebuilds;
};

static SSL_CTX *watch_current(struct ctx_watch *w)
{
    SSL_CTX *c = tls_ctx_current(w->t);

    assert_non_null(c);
    if (c != w->held) {
        if (w->held != NULL) {
            w->rebuilds++;
            SSL_CTX_free(w->held);
        }
        assert_int_equal(SSL_CTX_up_ref(c), 1);
        w->held = c;
    }
    return c;
}

static void watch_done(struct ctx_watch *w)
{
    SSL_CTX_free(w->held);
    w->held = NULL;
}

static void test_errors(void **state)
{
    struct tls_files f = {0};
    char err[512];
    struct tls_ctx *t;

    (void)state;
    f.ca_file = "/nonexistent/ca.crt";
    assert_null(tls_client_new(&f, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/ca.crt"));
    assert_non_null(strstr(err, "No such file"));

    f.ca_file = NULL; /* a client must verify the server */
    assert_null(tls_client_new(&f, err, sizeof err));

    f.ca_file = ca;
    f.cert_file = crt;
    f.key_file = "/nonexistent/leaf.key";
    assert_null(tls_client_new(&f, err, sizeof err));
    assert_non_null(strstr(err, "key file /nonexistent/leaf.key"));

    /* a CA file that is not PEM */
    f.ca_file = "/etc/hostname";
    f.cert_file = NULL;
    f.key_file = NULL;
    assert_null(tls_client_new(&f, err, sizeof err));
    assert_non_null(strstr(err, "ca file /etc/hostname"));

    /* key does not match the certificate */
    f.ca_file = ca;
    f.cert_file = crt;
    f.key_file = ca; /* not a key at all */
    assert_null(tls_client_new(&f, err, sizeof err));
    assert_non_null(strstr(err, "key file"));

    /* server: certificate and key required */
    f.ca_file = NULL;
    f.cert_file = crt;
    f.key_file = NULL;
    assert_null(tls_server_new(&f, err, sizeof err));
    f.cert_file = "/nonexistent/leaf.crt";
    f.key_file = key;
    assert_null(tls_server_new(&f, err, sizeof err));
    assert_non_null(strstr(err, "cert file /nonexistent/leaf.crt"));

    /* good ones */
    f.cert_file = crt;
    t = tls_server_new(&f, err, sizeof err);
    assert_non_null(t);
    assert_false(tls_ctx_verifies_clients(t));
    tls_ctx_free(t);
    f.ca_file = ca;
    t = tls_server_new(&f, err, sizeof err);
    assert_non_null(t);
    assert_true(tls_ctx_verifies_clients(t));
    tls_ctx_free(t);
    t = tls_client_new(&f, err, sizeof err);
    assert_non_null(t);
    assert_false(tls_ctx_verifies_clients(t));
    {
        struct ctx_watch w = {.t = t};

        (void)watch_current(&w);
        (void)watch_current(&w);
        assert_int_equal(w.rebuilds, 0);
        watch_done(&w);
    }
    tls_ctx_free(t);
    tls_ctx_free(NULL);
}

static void test_reload(void **state)
{
    struct tls_files f = {ca, crt, key};
    char err[512];
    struct tls_ctx *t = tls_client_new(&f, err, sizeof err);
    int gen = generation, logfd;
    char logpath[PATH_LEN], logbuf[8192];
    ssize_t loglen;
    FILE *fp;
    struct ctx_watch w = {0};

    (void)state;
    assert_non_null(t);
    w.t = t;
    path(logpath, "log");
    logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(logfd >= 0);
    log_set_fd(logfd);
    assert_int_equal(cert_generation(watch_current(&w)), gen);
    /* unchanged files: nothing happens */
    usleep(RELOAD_WAIT_US);
    assert_int_equal(cert_generation(watch_current(&w)), gen);
    assert_int_equal(w.rebuilds, 0);

    /* rotated files: rebuilt */
    assert_int_equal(new_leaf(), 0);
    usleep(RELOAD_WAIT_US);
    assert_int_equal(cert_generation(watch_current(&w)), gen + 1);
    assert_int_equal(w.rebuilds, 1);

    /* a half-written certificate: the old context stays (and is retried only on change) */
    fp = fopen(crt, "w");
    assert_non_null(fp);
    fputs("-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUAMBExDzANBgNV\n",
          fp);
    fclose(fp);
    usleep(RELOAD_WAIT_US);
    assert_int_equal(cert_generation(watch_current(&w)), gen + 1);
    assert_int_equal(w.rebuilds, 1);
    usleep(RELOAD_WAIT_US);
    assert_int_equal(cert_generation(watch_current(&w)), gen + 1);
    assert_int_equal(w.rebuilds, 1);

    /* an empty key file (truncated by a writer): same */
    assert_int_equal(new_leaf(), 0);
    fp = fopen(key, "w");
    assert_non_null(fp);
    fclose(fp);
    usleep(RELOAD_WAIT_US);
    assert_int_equal(cert_generation(watch_current(&w)), gen + 1);
    assert_int_equal(w.rebuilds, 1);

    /* the writer finishes: picked up */
    assert_int_equal(new_leaf(), 0);
    usleep(RELOAD_WAIT_US);
    assert_int_equal(cert_generation(watch_current(&w)), gen + 3);
    assert_int_equal(w.rebuilds, 2);
    watch_done(&w);
    tls_ctx_free(t);

    /* one warning per broken version of the files, not one per check */
    log_set_fd(2);
    loglen = pread(logfd, logbuf, sizeof logbuf - 1, 0);
    close(logfd);
    assert_true(loglen > 0);
    logbuf[loglen] = '\0';
    {
        int warnings = 0;
        for (char *p = logbuf; (p = strstr(p, "reloading changed files failed")); p++)
            warnings++;
        assert_int_equal(warnings, 2);
        assert_non_null(strstr(logbuf, "leaf.crt"));
        assert_non_null(strstr(logbuf, "leaf.key"));
    }
}

struct pair {
    SSL *client, *server;
    int fds[2];
};

/* Runs both handshakes to completion; returns 1 if both succeeded, 0 if either failed. */
static int handshake(struct pair *p)
{
    int cdone = 0, sdone = 0, rv, e;

    for (int i = 0; i < HANDSHAKE_ROUNDS && !(cdone && sdone); i++) {
        if (!cdone) {
            ERR_clear_error();
            rv = SSL_connect(p->client);
            if (rv == 1)
                cdone = 1;
            else if ((e = SSL_get_error(p->client, rv)) != SSL_ERROR_WANT_READ &&
                     e != SSL_ERROR_WANT_WRITE)
                return 0;
        }
        if (!sdone) {
            ERR_clear_error();
            rv = SSL_accept(p->server);
            if (rv == 1)
                sdone = 1;
            else if ((e = SSL_get_error(p->server, rv)) != SSL_ERROR_WANT_READ &&
                     e != SSL_ERROR_WANT_WRITE)
                return 0;
        }
    }
    /* TLS 1.3: the server's verdict on the client certificate arrives after the client's
     * handshake finished; a read surfaces it. */
    {
        char b;
        ERR_clear_error();
        rv = SSL_read(p->client, &b, 1);
        e = SSL_get_error(p->client, rv);
        if (e != SSL_ERROR_WANT_READ)
            return 0;
    }
    return cdone && sdone;
}

static void pair_new(struct pair *p, struct tls_ctx *c, const char *host, struct tls_ctx *s)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds), 0);
    p->client = tls_client_ssl(c, host);
    assert_non_null(p->client);
    p->server = SSL_new(tls_ctx_current(s));
    assert_non_null(p->server);
    SSL_set_fd(p->client, p->fds[0]);
    SSL_set_fd(p->server, p->fds[1]);
}

static void pair_free(struct pair *p)
{
    SSL_free(p->client);
    SSL_free(p->server);
    close(p->fds[0]);
    close(p->fds[1]);
    ERR_clear_error();
}

static void test_handshakes(void **state)
{
    struct tls_files cf = {ca, crt, key}, anon = {ca, NULL, NULL}, wrong = {other_ca, NULL, NULL};
    struct tls_files sf = {ca, crt, key}, sf_open = {NULL, crt, key};
    char err[512];
    struct tls_ctx *client = tls_client_new(&cf, err, sizeof err);
    struct tls_ctx *nocert = tls_client_new(&anon, err, sizeof err);
    struct tls_ctx *other = tls_client_new(&wrong, err, sizeof err);
    struct tls_ctx *server = tls_server_new(&sf, err, sizeof err);
    struct tls_ctx *open_server = tls_server_new(&sf_open, err, sizeof err);
    const unsigned char *alpn;
    unsigned alpn_len;
    struct pair p;

    (void)state;
    assert_non_null(client);
    assert_non_null(nocert);
    assert_non_null(other);
    assert_non_null(server);
    assert_non_null(open_server);

    /* mTLS by IP: h2 selected, no SNI for an IP literal */
    pair_new(&p, client, "127.0.0.1", server);
    assert_null(SSL_get_servername(p.client, TLSEXT_NAMETYPE_host_name));
    assert_int_equal(handshake(&p), 1);
    SSL_get0_alpn_selected(p.client, &alpn, &alpn_len);
    assert_int_equal(alpn_len, 2);
    assert_memory_equal(alpn, "h2", 2);
    assert_non_null(SSL_get0_peer_certificate(p.server));
    pair_free(&p);

    /* by name, with SNI */
    pair_new(&p, client, "localhost", server);
    assert_string_equal(SSL_get_servername(p.client, TLSEXT_NAMETYPE_host_name), "localhost");
    assert_int_equal(handshake(&p), 1);
    pair_free(&p);

    /* a name or an IP the certificate does not have */
    pair_new(&p, client, "etcd.example.com", server);
    assert_int_equal(handshake(&p), 0);
    assert_int_equal(SSL_get_verify_result(p.client), X509_V_ERR_HOSTNAME_MISMATCH);
    pair_free(&p);
    pair_new(&p, client, "127.0.0.2", server);
    assert_int_equal(handshake(&p), 0);
    assert_int_equal(SSL_get_verify_result(p.client), X509_V_ERR_IP_ADDRESS_MISMATCH);
    pair_free(&p);

    /* a server from another CA */
    pair_new(&p, other, "127.0.0.1", server);
    assert_int_equal(handshake(&p), 0);
    tls_error_string(p.client, err, sizeof err);
    assert_non_null(strstr(err, "certificate verify failed"));
    pair_free(&p);

    /* the server requires a client certificate ... */
    pair_new(&p, nocert, "127.0.0.1", server);
    assert_int_equal(handshake(&p), 0);
    pair_free(&p);
    /* ... unless it has no CA */
    pair_new(&p, nocert, "127.0.0.1", open_server);
    assert_int_equal(handshake(&p), 1);
    assert_null(SSL_get0_peer_certificate(p.server));
    pair_free(&p);

    /* a client offering only http/1.1 gets it */
    pair_new(&p, nocert, "127.0.0.1", open_server);
    assert_int_equal(SSL_set_alpn_protos(p.client, (const unsigned char *)"\x08http/1.1", 9), 0);
    assert_int_equal(handshake(&p), 1);
    SSL_get0_alpn_selected(p.server, &alpn, &alpn_len);
    assert_int_equal(alpn_len, 8);
    assert_memory_equal(alpn, "http/1.1", 8);
    pair_free(&p);

    tls_ctx_free(client);
    tls_ctx_free(nocert);
    tls_ctx_free(other);
    tls_ctx_free(server);
    tls_ctx_free(open_server);
}

/* A plain OpenSSL peer (not tls.c's policy) that speaks only TLS 1.2 with the given suites. */
static SSL_CTX *tls12_peer(bool server, const char *ciphers)
{
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    assert_non_null(c);
    assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(c, ciphers), 1);
    if (server) {
        assert_int_equal(SSL_CTX_use_certificate_chain_file(c, crt), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM), 1);
    }
    return c;
}

/* One handshake of `client` against `server` over a socketpair; 1 if both succeeded. With
 * `cipher`, the suite both agreed on must be that one. */
static int handshake_raw(SSL *client, SSL *server, const char *cipher)
{
    struct pair p = {client, server, {-1, -1}};
    int ok;

    assert_non_null(client);
    assert_non_null(server);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fds), 0);
    SSL_set_fd(client, p.fds[0]);
    SSL_set_fd(server, p.fds[1]);
    ok = handshake(&p);
    if (ok && cipher)
        assert_string_equal(SSL_get_cipher_name(client), cipher);
    pair_free(&p);
    return ok;
}

/* TLS 1.2 policy, both sides: AEAD suites with forward secrecy only. A peer that offers only CBC
 * suites (LUCKY13) is refused by the agent's listener, and tls.c's client refuses a server that
 * has only CBC suites; AES-GCM and ChaCha20-Poly1305 with ECDHE are accepted; tls.c's two sides
 * still agree on TLS 1.3. (The test certificates are ECDSA: ECDHE-ECDSA suites are the ones a
 * peer could pick.) */
static void test_tls12_ciphers(void **state)
{
    static const char *const refused[] = {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256",
                                          "ECDHE-ECDSA-AES256-SHA384"};
    static const char *const accepted[] = {"ECDHE-ECDSA-AES128-GCM-SHA256",
                                           "ECDHE-ECDSA-AES256-GCM-SHA384",
                                           "ECDHE-ECDSA-CHACHA20-POLY1305"};
    struct tls_files cf = {ca, NULL, NULL}, sf = {NULL, crt, key};
    char err[512];
    struct tls_ctx *client = tls_client_new(&cf, err, sizeof err);
    struct tls_ctx *server = tls_server_new(&sf, err, sizeof err);
    SSL_CTX *peer;

    (void)state;
    assert_non_null(client);
    assert_non_null(server);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        peer = tls12_peer(false, refused[i]); /* a client that offers only this suite */
        if (handshake_raw(SSL_new(peer), SSL_new(tls_ctx_current(server)), NULL))
            fail_msg("the server accepted a TLS 1.2 client offering only %s", refused[i]);
        SSL_CTX_free(peer);
        peer = tls12_peer(true, refused[i]); /* a server that has only this suite */
        if (handshake_raw(tls_client_ssl(client, "127.0.0.1"), SSL_new(peer), NULL))
            fail_msg("the client accepted a TLS 1.2 server with only %s", refused[i]);
        SSL_CTX_free(peer);
    }
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        peer = tls12_peer(false, accepted[i]);
        if (!handshake_raw(SSL_new(peer), SSL_new(tls_ctx_current(server)), accepted[i]))
            fail_msg("the server refused a TLS 1.2 client offering %s", accepted[i]);
        SSL_CTX_free(peer);
        peer = tls12_peer(true, accepted[i]);
        if (!handshake_raw(tls_client_ssl(client, "127.0.0.1"), SSL_new(peer), accepted[i]))
            fail_msg("the client refused a TLS 1.2 server with %s", accepted[i]);
        SSL_CTX_free(peer);
    }
    {
        SSL *c = tls_client_ssl(client, "127.0.0.1"), *s = SSL_new(tls_ctx_current(server));
        struct pair p = {c, s, {-1, -1}};

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fds), 0);
        SSL_set_fd(c, p.fds[0]);
        SSL_set_fd(s, p.fds[1]);
        assert_int_equal(handshake(&p), 1);
        assert_int_equal(SSL_version(c), TLS1_3_VERSION);
        pair_free(&p);
    }
    tls_ctx_free(client);
    tls_ctx_free(server);
}

/* Every PEM key layout a Secret may hold loads (tls.c decodes the common ones through a
 * narrowed decoder, the rest through OpenSSL's generic path), and a key that does not match
 * its certificate is refused whichever path decoded it. */
static void test_key_formats(void **state)
{
    static const struct {
        const char *cert, *key; /* key NULL: the cert file holds the key too */
        bool good;
    } cases[] = {
        {"kf-ec.crt", "kf-ec8.key", true},   /* PKCS#8 */
        {"kf-ec.crt", "kf-sec1.key", true},  /* SEC1 "EC PRIVATE KEY" */
        {"kf-ec.crt", "kf-ecp.key", true},   /* "EC PARAMETERS" block first (ecparam -genkey) */
        {"kf-combo.pem", NULL, true},        /* certificate and key in one file */
        {"kf-rsa.crt", "kf-rsa8.key", true}, /* RSA PKCS#8 */
        {"kf-rsa.crt", "kf-rsa1.key", true}, /* RSA PKCS#1 "RSA PRIVATE KEY" */
        {"kf-ed.crt", "kf-ed.key", true},    /* Ed25519 */
        {"kf-rsa.crt", "kf-ec8.key", false}, /* mismatches */
        {"kf-ec.crt", "kf-rsa1.key", false}, {"kf-ec.crt", "kf-ed.key", false},
        {"kf-ec.crt", "kf-ec.crt", false}, /* no key at all */
    };
    char cert[PATH_LEN], keyf[PATH_LEN], err[512];
    struct tls_files f = {.ca_file = ca};
    struct tls_ctx *t;

    (void)state;
    assert_int_equal(
        sh("cd %s && openssl ecparam -name prime256v1 -genkey -out kf-ecp.key && "
           "openssl req -x509 -key kf-ecp.key -subj /CN=kf-ec -days 2 -out kf-ec.crt && "
           "openssl pkey -in kf-ecp.key -out kf-ec8.key && "
           "openssl ec -in kf-ecp.key -out kf-sec1.key 2>/dev/null && "
           "cat kf-ec.crt kf-ec8.key >kf-combo.pem && "
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout kf-rsa8.key -subj /CN=kf-rsa "
           "-days 2 -out kf-rsa.crt 2>/dev/null && "
           "openssl rsa -in kf-rsa8.key -traditional -out kf-rsa1.key 2>/dev/null && "
           "openssl req -x509 -newkey ed25519 -nodes -keyout kf-ed.key -subj /CN=kf-ed -days 2 "
           "-out kf-ed.crt 2>/dev/null && grep -q 'BEGIN EC PRIVATE' kf-sec1.key && "
           "grep -q 'BEGIN RSA PRIVATE' kf-rsa1.key && grep -q 'BEGIN EC PARAMETERS' kf-ecp.key",
           dir),
        0);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        path(cert, cases[i].cert);
        f.cert_file = cert;
        f.key_file = NULL;
        if (cases[i].key) {
            path(keyf, cases[i].key);
            f.key_file = keyf;
        }
        t = tls_client_new(&f, err, sizeof err);
        if (cases[i].good) {
            if (!t)
                fail_msg("%s + %s: %s", cases[i].cert, cases[i].key, err);
            tls_ctx_free(t);
            if (!f.key_file)
                f.key_file = cert;                   /* a server names its key file */
            t = tls_server_new(&f, err, sizeof err); /* the agent's side loads keys alike */
            if (!t)
                fail_msg("server %s + %s: %s", cases[i].cert, f.key_file, err);
            tls_ctx_free(t);
        } else {
            if (t)
                fail_msg("%s + %s: accepted", cases[i].cert, cases[i].key);
            assert_non_null(strstr(err, "key file"));
        }
        assert_int_equal(ERR_peek_error(), 0); /* nothing left behind for the next caller */
    }
}

static void test_error_string(void **state)
{
    char buf[64];

    (void)state;
    ERR_clear_error();
    assert_string_equal(tls_error_string(NULL, buf, sizeof buf), "unknown TLS error");
    ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
    ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
    assert_string_equal(tls_error_string(NULL, buf, sizeof buf),
                        "certificate verify failed; no shared cipher");
    assert_int_equal(ERR_peek_error(), 0);
    /* truncation keeps the string terminated */
    for (int i = 0; i < 10; i++)
        ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
    tls_error_string(NULL, buf, 16);
    assert_int_equal(strlen(buf), 15);
    assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_error_string),
        cmocka_unit_test(test_key_formats), cmocka_unit_test(test_handshakes),
        cmocka_unit_test(test_reload),      cmocka_unit_test(test_tls12_ciphers),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
