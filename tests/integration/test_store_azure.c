/* test_store_azure.c - store_azure.c against Azurite (Microsoft's emulator, which verifies Shared
 * Key and SAS) behind tests/azure/faultproxy.py: a 40 MB blob in 16 MiB blocks read back
 * byte-identical, small puts, listing, removal, a SAS token instead of the key, a wrong key and
 * a wrong SAS (clear errors, no query in them), a missing container, blocks answered 500
 * (retried), connections dropped during every block (nothing committed or listed), a download
 * cut in the middle (resumed with a range), and a tampered blob caught by the caller's sha256.
 * Needs no etcd; skips without node or python3-azure-storage. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "store.h"
#include "testutil.h"

extern const struct store_ops store_azure_ops;

#define BIG_SIZE (40u * 1000 * 1000) /* 3 blocks of 16 MiB */

static char server_dir[256], proxy[128], account[64], container[64], key[128], sas[1024];
static char work[64], big_path[128], big_sha[65];
static bool server_up;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

/* a get sink hashing what it receives: the caller's sha256 check */
struct hash_sink {
    EVP_MD_CTX *c;
    uint64_t n;
};

static int hash_cb(void *arg, const void *buf, size_t len)
{
    struct hash_sink *h = arg;
    EVP_DigestUpdate(h->c, buf, len);
    h->n += len;
    return 0;
}

static int get_sha(struct store *s, const char *name, char *hex, uint64_t *n, char *err,
                   size_t errlen)
{
    struct hash_sink h = {EVP_MD_CTX_new(), 0};
    unsigned char md[32];
    int rc;

    EVP_DigestInit_ex(h.c, EVP_sha256(), NULL);
    rc = store_azure_ops.get(s, name, hash_cb, &h, err, errlen);
    EVP_DigestFinal_ex(h.c, md, NULL);
    EVP_MD_CTX_free(h.c);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (n)
        *n = h.n;
    return rc;
}

static void fault(const char *match, const char *status, int count)
{
    sh("curl -sf -X POST '%s/__fault?match=%s&status=%s&count=%d' >/dev/null", proxy, match, status,
       count);
}

static int log_count(const char *needle)
{
    char cmd[512], line[1024];
    int n = 0;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "curl -sf '%s/__log'", proxy);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p))
        n += strstr(line, needle) != NULL;
    pclose(p);
    return n;
}

static struct store *open_store(const char *prefix, int attempts)
{
    struct store_options o = {.retry_attempts = attempts, .retry_base_ms = 20};
    char url[256], err[512];
    struct store *s = NULL;
    int rc;

    snprintf(url, sizeof(url), "azure://%s/%s/%s", account, container, prefix);
    rc = store_open(url, &o, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("open %s: %s", url, err);
    return s;
}

static int setup(void **state)
{
    char line[2048], *eq;
    FILE *p;
    int rc;

    (void)state;
    snprintf(work, sizeof(work), "/tmp/azstore.XXXXXX");
    if (!mkdtemp(work))
        return -1;
    p = popen("tests/azure/server.sh start", "r");
    if (!p)
        return -1;
    while (fgets(line, sizeof(line), p)) {
        char *k = line + strlen("export "), *v;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "export ", 7) != 0 || !(eq = strchr(k, '=')))
            continue;
        *eq = '\0';
        v = eq + 1;
        if (*v == '\'') {
            v++;
            v[strcspn(v, "'")] = '\0';
        }
        setenv(k, v, 1);
    }
    rc = pclose(p);
    if (rc != 0)
        return 0; /* server_up stays false: every test skips */
    snprintf(server_dir, sizeof(server_dir), "%s", getenv("AZURE_TEST_DIR"));
    snprintf(proxy, sizeof(proxy), "%s", getenv("AZURE_TEST_PROXY"));
    snprintf(account, sizeof(account), "%s", getenv("AZURE_STORAGE_ACCOUNT"));
    snprintf(container, sizeof(container), "%s", getenv("AZURE_TEST_CONTAINER"));
    snprintf(key, sizeof(key), "%s", getenv("AZURE_STORAGE_KEY"));
    snprintf(sas, sizeof(sas), "%s", getenv("AZURE_TEST_SAS"));
    snprintf(big_path, sizeof(big_path), "%s/big", work);
    assert_int_equal(test_file_fill(big_path, BIG_SIZE, 1), 0);
    assert_int_equal(test_file_sha256(big_path, big_sha), 0);
    server_up = true;
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];

    (void)state;
    if (server_dir[0]) {
        snprintf(cmd, sizeof(cmd), "tests/azure/server.sh stop '%s'", server_dir);
        if (system(cmd) != 0)
            return -1;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
    return system(cmd) == 0 ? 0 : -1;
}

/* every test starts with the harness's key and no SAS, whatever the previous one left */
static int reset_env(void **state)
{
    (void)state;
    if (server_up) {
        unsetenv("AZURE_STORAGE_SAS_TOKEN");
        setenv("AZURE_STORAGE_KEY", key, 1);
        if (system("curl -sf -X POST \"$AZURE_TEST_PROXY/__reset\" >/dev/null") != 0)
            return -1;
    }
    return 0;
}

static int count_cb(void *arg, const struct store_entry *e)
{
    size_t *n = arg;
    (void)e;
    (*n)++;
    return 0;
}

struct find {
    const char *name;
    uint64_t size;
    bool found;
};

static int find_cb(void *arg, const struct store_entry *e)
{
    struct find *f = arg;
    if (strcmp(e->name, f->name) == 0) {
        f->found = true;
        f->size = e->size;
    }
    return 0;
}

static bool listed(struct store *s, const char *prefix, const char *name, uint64_t *size)
{
    struct find f = {name, 0, false};
    char err[512];
    int rc = store_azure_ops.list(s, prefix, find_cb, &f, err, sizeof(err));
    if (rc != 0)
        fail_msg("list: %s", err);
    if (size)
        *size = f.size;
    return f.found;
}

static void test_put_get_list_remove(void **state)
{
    struct store *s;
    char err[512], sha[65];
    uint64_t n, size;
    int fd;

    (void)state;
    if (!server_up)
        skip();
    s = open_store("etcd/p1", 0);
    fd = open(big_path, O_RDONLY);
    assert_true(fd >= 0);
    if (store_put_file(s, "0123456789abcdef/20261203T221000Z-rev42.db", fd, 0, BIG_SIZE, err,
                       sizeof(err)) != 0)
        fail_msg("put: %s", err);
    close(fd);
    assert_int_equal(log_count("comp=block"), 0); /* the log has no query: checked below */
    assert_int_equal(store_put_buffer(s, "0123456789abcdef/20261203T221000Z-rev42.db.manifest.json",
                                      "{\"x\":1}", 7, err, sizeof(err)),
                     0);
    assert_int_equal(
        get_sha(s, "0123456789abcdef/20261203T221000Z-rev42.db", sha, &n, err, sizeof(err)), 0);
    assert_int_equal(n, BIG_SIZE);
    assert_string_equal(sha, big_sha);
    assert_true(listed(s, "", "0123456789abcdef/20261203T221000Z-rev42.db", &size));
    assert_int_equal(size, BIG_SIZE);
    assert_true(listed(s, "0123456789abcdef/",
                       "0123456789abcdef/20261203T221000Z-rev42.db.manifest.json", &size));
    assert_int_equal(size, 7);
    /* prefix isolation: another prefix sees nothing */
    {
        struct store *o = open_store("etcd/p1x", 0);
        size_t cnt = 0;
        assert_int_equal(store_azure_ops.list(o, "", count_cb, &cnt, err, sizeof(err)), 0);
        assert_int_equal(cnt, 0);
        store_close(o);
    }
    assert_int_equal(
        store_remove(s, "0123456789abcdef/20261203T221000Z-rev42.db", err, sizeof(err)), 0);
    assert_false(listed(s, "", "0123456789abcdef/20261203T221000Z-rev42.db", NULL));
    assert_int_equal(
        get_sha(s, "0123456789abcdef/20261203T221000Z-rev42.db", sha, NULL, err, sizeof(err)),
        -ENOENT);
    assert_int_equal(
        store_remove(s, "0123456789abcdef/20261203T221000Z-rev42.db", err, sizeof(err)), -ENOENT);
    store_close(s);
}

static void test_many_listed_with_markers(void **state)
{
    struct store *s;
    char err[512], name[64];
    size_t cnt = 0;

    (void)state;
    if (!server_up)
        skip();
    s = open_store("paged", 0);
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "o%02d & <x>", i); /* entities in the listing */
        assert_int_equal(store_put_buffer(s, name, "a", 1, err, sizeof(err)), 0);
    }
    assert_int_equal(store_azure_ops.list(s, "", count_cb, &cnt, err, sizeof(err)), 0);
    assert_int_equal(cnt, 30);
    assert_true(listed(s, "", "o07 & <x>", NULL));
    store_close(s);
}

static void test_sas_token(void **state)
{
    struct store *s;
    char err[512], sha[65];

    (void)state;
    if (!server_up)
        skip();
    unsetenv("AZURE_STORAGE_KEY");
    setenv("AZURE_STORAGE_SAS_TOKEN", sas, 1);
    s = open_store("sas", 0);
    assert_int_equal(store_put_buffer(s, "small", "hello", 5, err, sizeof(err)), 0);
    assert_int_equal(get_sha(s, "small", sha, NULL, err, sizeof(err)), 0);
    assert_true(listed(s, "", "small", NULL));
    store_close(s);
    /* a SAS with a forged signature: refused, and the error shows no query */
    {
        char bad[1100], *sig;
        snprintf(bad, sizeof(bad), "%s", sas);
        sig = strstr(bad, "sig=");
        assert_non_null(sig);
        sig[4] = sig[4] == 'A' ? 'B' : 'A';
        setenv("AZURE_STORAGE_SAS_TOKEN", bad, 1);
        s = open_store("sas", 1);
        assert_int_equal(store_put_buffer(s, "small2", "x", 1, err, sizeof(err)), -EACCES);
        assert_null(strstr(err, "sig="));
        assert_null(strstr(err, "?"));
        assert_non_null(strstr(err, "AZURE_STORAGE_SAS_TOKEN"));
        store_close(s);
    }
    unsetenv("AZURE_STORAGE_SAS_TOKEN");
    setenv("AZURE_STORAGE_KEY", key, 1);
    /* nothing in the proxy's log carries a query */
    assert_int_equal(log_count("sig="), 0);
}

static void test_bad_key(void **state)
{
    struct store *s;
    char err[512], sha[65];

    (void)state;
    if (!server_up)
        skip();
    /* a well-formed key that is not the account's */
    setenv(
        "AZURE_STORAGE_KEY",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        1);
    s = open_store("bad", 1);
    assert_int_equal(store_put_buffer(s, "x", "x", 1, err, sizeof(err)), -EACCES);
    /* Azure says AuthenticationFailed, Azurite AuthorizationFailure: either names the key */
    if (strstr(err, "HTTP 403") == NULL && strstr(err, "AuthenticationFailed") == NULL)
        fail_msg("bad key: %s", err);
    assert_non_null(strstr(err, "AZURE_STORAGE_KEY"));
    assert_int_equal(get_sha(s, "x", sha, NULL, err, sizeof(err)), -EACCES);
    store_close(s);
    setenv("AZURE_STORAGE_KEY", key, 1);
}

static void test_missing_container(void **state)
{
    struct store_options o = {.retry_attempts = 1};
    struct store *s = NULL;
    char url[256], err[512];

    (void)state;
    if (!server_up)
        skip();
    snprintf(url, sizeof(url), "azure://%s/nosuchcontainer/p", account);
    assert_int_equal(store_open(url, &o, &s, err, sizeof(err)), 0);
    assert_int_equal(store_put_buffer(s, "x", "x", 1, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "ContainerNotFound"));
    store_close(s);
    snprintf(url, sizeof(url), "azure://%s/Bad_Container/p", account);
    assert_int_equal(store_open(url, &o, &s, err, sizeof(err)), -EINVAL);
}

static void test_block_fails_retried(void **state)
{
    struct store *s;
    char err[512], sha[65];
    int fd, before = log_count("injected");

    (void)state;
    if (!server_up)
        skip();
    s = open_store("retry", 5);
    fault("comp=block%26", "500", 2); /* the second and third request to any block */
    fd = open(big_path, O_RDONLY);
    if (store_put_file(s, "obj", fd, 0, BIG_SIZE, err, sizeof(err)) != 0)
        fail_msg("put with failing blocks: %s", err);
    close(fd);
    assert_int_equal(log_count("injected") - before, 2);
    assert_int_equal(get_sha(s, "obj", sha, NULL, err, sizeof(err)), 0);
    assert_string_equal(sha, big_sha);
    store_close(s);
}

static void test_dropped_connection_nothing_committed(void **state)
{
    struct store *s;
    char err[512];
    int fd, commits = log_count("PUT /"), rc;

    (void)state;
    if (!server_up)
        skip();
    (void)commits;
    s = open_store("drop", 2);
    /* the second block's connection drops on every attempt */
    fault("blockid=YmxvY2stMDAwMDAwMDAx", "drop", 100);
    fd = open(big_path, O_RDONLY);
    rc = store_put_file(s, "halfway", fd, 0, BIG_SIZE, err, sizeof(err));
    close(fd);
    assert_int_equal(rc, -EIO);
    assert_null(strstr(err, "?"));
    assert_false(listed(s, "", "halfway", NULL));
    {
        char sha[65];
        assert_int_equal(get_sha(s, "halfway", sha, NULL, err, sizeof(err)), -ENOENT);
    }
    sh("curl -sf -X POST '%s/__reset' >/dev/null", proxy);
    /* the next upload of the same name succeeds and holds only its own blocks */
    fd = open(big_path, O_RDONLY);
    assert_int_equal(store_put_file(s, "halfway", fd, 0, BIG_SIZE, err, sizeof(err)), 0);
    close(fd);
    assert_true(listed(s, "", "halfway", NULL));
    store_close(s);
}

static void test_download_cut_resumes(void **state)
{
    struct store *s;
    char err[512], sha[65];
    uint64_t n;
    int fd;

    (void)state;
    if (!server_up)
        skip();
    s = open_store("cut", 4);
    fd = open(big_path, O_RDONLY);
    assert_int_equal(store_put_file(s, "obj", fd, 0, BIG_SIZE, err, sizeof(err)), 0);
    close(fd);
    fault("GET%20/", "cut", 1);
    if (get_sha(s, "obj", sha, &n, err, sizeof(err)) != 0)
        fail_msg("get after a cut: %s", err);
    assert_int_equal(n, BIG_SIZE);
    assert_string_equal(sha, big_sha);
    assert_int_equal(log_count(" cut"), 1);
    store_close(s);
}

static void test_tampered_blob_refused(void **state)
{
    struct store *s;
    char err[512], sha[65], want[65];
    int fd;

    (void)state;
    if (!server_up)
        skip();
    s = open_store("tamper", 0);
    fd = open(big_path, O_RDONLY);
    assert_int_equal(store_put_file(s, "obj", fd, 0, 20u << 20, err, sizeof(err)), 0);
    close(fd);
    assert_int_equal(get_sha(s, "obj", want, NULL, err, sizeof(err)), 0);
    /* someone with the key rewrites it behind the manifest's back */
    sh("/usr/bin/python3 -c \"import os; from azure.storage.blob import BlobClient; "
       "BlobClient(os.environ['AZURE_STORAGE_BLOB_ENDPOINT'], '%s', 'tamper/obj', "
       "credential={'account_name': '%s', 'account_key': os.environ['AZURE_STORAGE_KEY']})"
       ".upload_blob(b'x' * 1000, overwrite=True)\"",
       container, account);
    assert_int_equal(get_sha(s, "obj", sha, NULL, err, sizeof(err)), 0);
    assert_string_not_equal(sha, want); /* the caller's sha256 check refuses it */
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_put_get_list_remove, reset_env),
        cmocka_unit_test_setup(test_many_listed_with_markers, reset_env),
        cmocka_unit_test_setup(test_sas_token, reset_env),
        cmocka_unit_test_setup(test_bad_key, reset_env),
        cmocka_unit_test_setup(test_missing_container, reset_env),
        cmocka_unit_test_setup(test_block_fails_retried, reset_env),
        cmocka_unit_test_setup(test_dropped_connection_nothing_committed, reset_env),
        cmocka_unit_test_setup(test_download_cut_resumes, reset_env),
        cmocka_unit_test_setup(test_tampered_blob_refused, reset_env),
    };
    return cmocka_run_group_tests_name("store_azure", tests, setup, teardown);
}
