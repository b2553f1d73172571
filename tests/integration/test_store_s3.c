/* test_store_s3.c - store_s3.c against a real S3 server: s3rver behind tests/s3/proxy.py, which
 * verifies every SigV4 signature, Content-MD5 and payload hash, and injects faults. Multipart
 * put of ~100 MB in 16 MiB parts read back byte-identical, small puts, paged listings,
 * removal, stale-upload sweep, retried 500/503 parts, a dropped connection (aborted, never
 * listed), a download resumed with Range, wrong secret / key id, a missing bucket, an
 * unreachable store, and interop with the AWS CLI both ways. Needs no etcd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

#define BIG_SIZE (100u * 1000 * 1000) /* ~100 MB: 6 parts of 16 MiB */
#define AWS "/usr/bin/aws"

static char server_dir[256], proxy[128], bucket[64], work[64], big_path[128];
static char big_sha[65];
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

/* GET on the proxy's control URL; returns the parsed stats (caller frees). */
static cJSON *control(const char *what)
{
    char cmd[512], buf[8192];
    size_t n;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "curl -sf '%s/__proxy/%s'", proxy, what);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    return cJSON_Parse(buf);
}

static int stat_int(const char *what, const char *field)
{
    cJSON *o = control(what), *f = cJSON_GetObjectItem(o, field);
    int v = cJSON_IsNumber(f) ? f->valueint : -1;
    cJSON_Delete(o);
    return v;
}

static int part_attempts(int part)
{
    char num[16];
    cJSON *o = control("stats"), *parts = cJSON_GetObjectItem(o, "parts"), *f;
    int v;
    snprintf(num, sizeof(num), "%d", part);
    f = cJSON_GetObjectItem(parts, num);
    v = cJSON_IsNumber(f) ? f->valueint : 0;
    cJSON_Delete(o);
    return v;
}

struct sha_sink {
    EVP_MD_CTX *c;
    uint64_t n;
};

static int on_bytes(void *arg, const void *buf, size_t len)
{
    struct sha_sink *s = arg;
    EVP_DigestUpdate(s->c, buf, len);
    s->n += len;
    return 0;
}

static int get_sha(struct store *st, const char *name, char *hex, uint64_t *n, char *err,
                   size_t err_len)
{
    struct sha_sink s = {EVP_MD_CTX_new(), 0};
    unsigned char md[32];
    int rc;

    EVP_DigestInit_ex(s.c, EVP_sha256(), NULL);
    rc = store_get(st, name, on_bytes, &s, err, err_len);
    EVP_DigestFinal_ex(s.c, md, NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(s.c);
    if (n)
        *n = s.n;
    return rc;
}

struct listing {
    int count;
    char names[64][STORE_MAX_NAME + 1];
    uint64_t sizes[64];
};

static int on_entry(void *arg, const struct store_entry *e)
{
    struct listing *l = arg;
    if (l->count < 64) {
        snprintf(l->names[l->count], sizeof(l->names[0]), "%s", e->name);
        l->sizes[l->count] = e->size;
    }
    l->count++;
    return 0;
}

static int find(const struct listing *l, const char *name)
{
    for (int i = 0; i < l->count && i < 64; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

static struct store *open_store(const char *url)
{
    struct store_options o = {.part_size = 16ull << 20, .retry_attempts = 4, .retry_base_ms = 20};
    struct store *st = NULL;
    char err[512] = "";
    int rc = store_open(url, &o, &st, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "store_open %s: %s\n", url, err);
    assert_int_equal(rc, 0);
    return st;
}

static struct store *open_main(void)
{
    char url[128];
    snprintf(url, sizeof(url), "s3://%s/backups/", bucket);
    return open_store(url);
}

static int setup(void **state)
{
    char line[1024];
    FILE *p;

    (void)state;
    p = popen("tests/s3/server.sh start", "r");
    if (!p)
        return -1;
    while (fgets(line, sizeof(line), p)) {
        char *eq, *v;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "export ", 7) != 0 || !(eq = strchr(line, '=')))
            continue;
        *eq = '\0';
        v = eq + 1;
        setenv(line + 7, v, 1);
        if (strcmp(line + 7, "S3_TEST_DIR") == 0)
            snprintf(server_dir, sizeof(server_dir), "%s", v);
        if (strcmp(line + 7, "S3_TEST_PROXY") == 0)
            snprintf(proxy, sizeof(proxy), "%s", v);
        if (strcmp(line + 7, "S3_TEST_BUCKET") == 0)
            snprintf(bucket, sizeof(bucket), "%s", v);
    }
    if (pclose(p) != 0 || !server_dir[0] || !proxy[0]) {
        fprintf(stderr, "tests/s3/server.sh start failed\n");
        return -1;
    }
    server_up = true;
    snprintf(work, sizeof(work), "/tmp/test_store_s3.XXXXXX");
    if (!mkdtemp(work))
        return -1;
    snprintf(big_path, sizeof(big_path), "%s/big", work);
    assert_int_equal(test_file_fill(big_path, BIG_SIZE, 1), 0);
    assert_int_equal(test_file_sha256(big_path, big_sha), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    (void)state;
    if (server_up) {
        snprintf(cmd, sizeof(cmd), "tests/s3/server.sh stop '%s'", server_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "server.sh stop failed\n");
    }
    if (work[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "rm failed\n");
    }
    return 0;
}

static void reset_faults(void)
{
    cJSON_Delete(control("reset"));
}

static void test_multipart_roundtrip(void **state)
{
    struct store *st = open_main();
    struct listing l = {0};
    char err[512] = "", sha[65];
    uint64_t n = 0;
    int fd = open(big_path, O_RDONLY), before = stat_int("stats", "completed"), i;
    struct timespec t0, t1;

    (void)state;
    reset_faults();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(
        store_put_file(st, "0123456789abcdef/big.db", fd, 0, BIG_SIZE, err, sizeof(err)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "put %u bytes in %.2f s\n", BIG_SIZE,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    assert_int_equal(stat_int("stats", "completed"), before + 1);
    assert_int_equal(part_attempts(6), 1); /* 6 parts of 16 MiB: the sixth exists ... */
    assert_int_equal(part_attempts(7), 0); /* ... and there is no seventh */
    assert_int_equal(get_sha(st, "0123456789abcdef/big.db", sha, &n, err, sizeof(err)), 0);
    assert_int_equal(n, BIG_SIZE);
    assert_string_equal(sha, big_sha);
    assert_int_equal(store_list(st, "0123456789abcdef/", on_entry, &l, err, sizeof(err)), 0);
    i = find(&l, "0123456789abcdef/big.db");
    assert_true(i >= 0);
    assert_int_equal(l.sizes[i], BIG_SIZE);
    close(fd);
    store_close(st);
}

/* Parts uploaded side by side, as the backup does (STORE_UPLOAD_STREAMS threads): part 1 alone
 * first, then the rest by two threads at once, the last two smaller (the stream's tail split);
 * the multipart upload is created once and the object reads back byte-identical. */
struct par {
    pthread_barrier_t start; /* both threads call at once: the creation race happens */
    pthread_mutex_t mu;
    struct store_upload *u;
    int fd;
    unsigned next;
    uint64_t off;
    int rc;
    char err[512];
};

static void *par_worker(void *arg)
{
    struct par *w = arg;
    pthread_barrier_wait(&w->start);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        uint64_t left = BIG_SIZE - w->off;
        uint64_t n = left > (32u << 20) ? 16u << 20 : left > (12u << 20) ? left / 2 : left;
        if (w->rc)
            n = 0;
        struct store_part p = {
            .number = w->next, .obj_off = w->off, .fd = w->fd, .off = w->off, .len = n};
        w->next++;
        w->off += n;
        pthread_mutex_unlock(&w->mu);
        if (n == 0)
            return NULL;
        char err[512];
        int rc = store_upload_part(w->u, &p, err, sizeof(err));
        if (rc) {
            pthread_mutex_lock(&w->mu);
            w->rc = rc;
            snprintf(w->err, sizeof(w->err), "%s", err);
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
    }
}

static void test_parallel_parts(void **state)
{
    struct store *st = open_main();
    struct par w = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = open(big_path, O_RDONLY), .next = 2};
    struct store_part first = {.number = 1, .fd = w.fd, .len = 16u << 20};
    char err[512] = "", sha[65];
    uint64_t n = 0;
    int before = stat_int("stats", "completed"), created = stat_int("stats", "created");
    pthread_t t[2];

    (void)state;
    reset_faults();
    pthread_barrier_init(&w.start, NULL, 2);
    assert_int_equal(store_upload_begin(st, "par/big.db", &w.u, err, sizeof(err)), 0);
    assert_int_equal(store_upload_part(w.u, &first, err, sizeof(err)), 0);
    w.off = first.len;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, par_worker, &w), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    if (w.rc)
        fail_msg("part: %s", w.err);
    assert_int_equal(store_upload_commit(w.u, err, sizeof(err)), 0);
    assert_int_equal(stat_int("stats", "completed"), before + 1);
    assert_int_equal(stat_int("stats", "created"), created + 1); /* one upload, both threads' */
    pthread_barrier_destroy(&w.start);
    assert_int_equal(get_sha(st, "par/big.db", sha, &n, err, sizeof(err)), 0);
    assert_int_equal(n, BIG_SIZE);
    assert_string_equal(sha, big_sha);
    close(w.fd);
    store_close(st);
}

static void test_small_objects_and_paging(void **state)
{
    struct store *st = open_main();
    struct listing l = {0};
    char err[512] = "", name[64], sha[65], want[65];
    uint64_t n;

    (void)state;
    reset_faults();
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "page/obj %d+&=.json", i);
        assert_int_equal(store_put_buffer(st, name, name, strlen(name), err, sizeof(err)), 0);
    }
    assert_int_equal(store_put_buffer(st, "page/empty", "", 0, err, sizeof(err)), 0);
    cJSON_Delete(control("max_keys?n=2")); /* pages of 2: three continuation tokens */
    assert_int_equal(store_list(st, "page/", on_entry, &l, err, sizeof(err)), 0);
    reset_faults();
    assert_int_equal(l.count, 6);
    assert_true(find(&l, "page/obj 3+&=.json") >= 0);
    assert_int_equal(l.sizes[find(&l, "page/empty")], 0);
    assert_int_equal(get_sha(st, "page/obj 3+&=.json", sha, &n, err, sizeof(err)), 0);
    {
        unsigned char md[32];
        EVP_Digest("page/obj 3+&=.json", 18, md, NULL, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
            snprintf(want + 2 * i, 3, "%02x", md[i]);
    }
    assert_string_equal(sha, want);
    /* removal: gone from the listing, a get is -ENOENT */
    assert_int_equal(store_remove(st, "page/obj 3+&=.json", err, sizeof(err)), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_list(st, "page/", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 5);
    assert_int_equal(get_sha(st, "page/obj 3+&=.json", sha, &n, err, sizeof(err)), -ENOENT);
    store_close(st);
}

static void test_faulty_parts_retried(void **state)
{
    struct store *st = open_main();
    char err[512] = "", sha[65];
    int fd = open(big_path, O_RDONLY);
    uint64_t len = 40ull << 20; /* 3 parts */

    (void)state;
    reset_faults();
    cJSON_Delete(control("fault?part=2&status=500&count=2"));
    cJSON_Delete(control("fault?part=3&status=503&count=1"));
    int p2 = part_attempts(2), p3 = part_attempts(3);
    assert_int_equal(store_put_file(st, "faults/retried.db", fd, 0, len, err, sizeof(err)), 0);
    assert_int_equal(part_attempts(2) - p2, 3);
    assert_int_equal(part_attempts(3) - p3, 2);
    assert_int_equal(get_sha(st, "faults/retried.db", sha, NULL, err, sizeof(err)), 0);
    {
        char want[65], cmd[256];
        FILE *p;
        snprintf(cmd, sizeof(cmd), "head -c %llu '%s' | sha256sum", (unsigned long long)len,
                 big_path);
        p = popen(cmd, "r");
        assert_non_null(fgets(want, sizeof(want), p));
        pclose(p);
        assert_string_equal(sha, want);
    }
    close(fd);
    store_close(st);
}

static void test_dropped_connection_aborts(void **state)
{
    struct store *st = open_main();
    struct listing l = {0};
    char err[512] = "";
    int fd = open(big_path, O_RDONLY), aborted = stat_int("stats", "aborted");

    (void)state;
    reset_faults();
    cJSON_Delete(control("fault?part=2&drop=1&count=-1"));
    assert_int_equal(store_put_file(st, "faults/dropped.db", fd, 0, 40ull << 20, err, sizeof(err)),
                     -EIO);
    fprintf(stderr, "expected error: %s\n", err);
    assert_non_null(strstr(err, "upload part 2"));
    reset_faults();
    assert_int_equal(stat_int("stats", "aborted"), aborted + 1);
    assert_int_equal(stat_int("stats", "open_uploads"), 0);
    assert_int_equal(store_list(st, "faults/", on_entry, &l, err, sizeof(err)), 0);
    assert_int_equal(find(&l, "faults/dropped.db"), -1);
    close(fd);
    store_close(st);
}

static void test_get_resumes_with_range(void **state)
{
    struct store *st = open_main();
    char err[512] = "", sha[65];
    uint64_t n;
    int ranged = stat_int("stats", "gets_ranged");

    (void)state;
    reset_faults();
    cJSON_Delete(control("fault?get_drop_after=5000000&count=2"));
    assert_int_equal(get_sha(st, "0123456789abcdef/big.db", sha, &n, err, sizeof(err)), 0);
    reset_faults();
    assert_int_equal(n, BIG_SIZE);
    assert_string_equal(sha, big_sha);
    assert_int_equal(stat_int("stats", "gets_ranged"), ranged + 2);
    store_close(st);
}

static void test_stale_uploads_aborted(void **state)
{
    struct store *st = open_main();
    char err[512] = "";
    unsigned aborted = 0;

    (void)state;
    reset_faults();
    /* a crashed writer's upload, started by the AWS CLI */
    sh(AWS " --endpoint-url %s s3api create-multipart-upload --bucket %s --key backups/crashed.db "
           ">/dev/null",
       getenv("AWS_ENDPOINT_URL"), bucket);
    sh(AWS " --endpoint-url %s s3api create-multipart-upload --bucket %s --key elsewhere/x.db "
           ">/dev/null",
       getenv("AWS_ENDPOINT_URL"), bucket);
    assert_int_equal(stat_int("stats", "open_uploads"), 2);
    assert_int_equal(store_abort_stale(st, "", time(NULL) - 3600, &aborted, err, sizeof(err)), 0);
    assert_int_equal(aborted, 0); /* young: left alone */
    cJSON_Delete(control("age_uploads?seconds=90000"));
    assert_int_equal(store_abort_stale(st, "", time(NULL) - 86400, &aborted, err, sizeof(err)), 0);
    assert_int_equal(aborted, 1); /* ours only: elsewhere/ is outside the store's prefix */
    assert_int_equal(stat_int("stats", "open_uploads"), 1);
    store_close(st);
}

static void test_refusals(void **state)
{
    struct store *st;
    struct listing l = {0};
    char err[512] = "", url[128], saved[128];

    (void)state;
    reset_faults();
    snprintf(saved, sizeof(saved), "%s", getenv("AWS_SECRET_ACCESS_KEY"));
    setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
    st = open_main();
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), -EACCES);
    assert_non_null(strstr(err, "SignatureDoesNotMatch"));
    assert_null(strstr(err, "not-the-secret"));
    fprintf(stderr, "expected error: %s\n", err);
    store_close(st);
    setenv("AWS_SECRET_ACCESS_KEY", saved, 1);
    snprintf(saved, sizeof(saved), "%s", getenv("AWS_ACCESS_KEY_ID"));
    setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN", 1);
    st = open_main();
    assert_int_equal(store_put_buffer(st, "x", "x", 1, err, sizeof(err)), -EACCES);
    assert_non_null(strstr(err, "InvalidAccessKeyId"));
    fprintf(stderr, "expected error: %s\n", err);
    store_close(st);
    setenv("AWS_ACCESS_KEY_ID", saved, 1);
    st = open_store("s3://no-such-bucket/p/");
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "NoSuchBucket"));
    fprintf(stderr, "expected error: %s\n", err);
    store_close(st);
    /* unreachable: a port nobody listens on */
    snprintf(saved, sizeof(saved), "%s", getenv("AWS_ENDPOINT_URL"));
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
    snprintf(url, sizeof(url), "s3://%s/p/", bucket);
    st = open_store(url);
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), -ECONNREFUSED);
    fprintf(stderr, "expected error: %s\n", err);
    store_close(st);
    setenv("AWS_ENDPOINT_URL", saved, 1);
}

/* s3://BUCKET/ (no prefix): the bucket's whole listing, put and get at the bucket's root */
static void test_empty_prefix(void **state)
{
    struct store *st;
    struct listing l = {0};
    char err[512] = "", url[128], sha[65];
    uint64_t n = 0;

    (void)state;
    reset_faults();
    snprintf(url, sizeof(url), "s3://%s/", bucket);
    st = open_store(url);
    assert_int_equal(store_put_buffer(st, "root-object.json", "{}", 2, err, sizeof(err)), 0);
    if (store_list(st, "", on_entry, &l, err, sizeof(err)) != 0)
        fprintf(stderr, "list s3://%s/: %s\n", bucket, err);
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), 0);
    assert_true(find(&l, "root-object.json") >= 0);
    assert_int_equal(get_sha(st, "root-object.json", sha, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    memset(&l, 0, sizeof(l));
    snprintf(url, sizeof(url), "s3://%s", bucket); /* no slash at all: the same */
    store_close(st);
    st = open_store(url);
    assert_int_equal(store_list(st, "", on_entry, &l, err, sizeof(err)), 0);
    assert_true(find(&l, "root-object.json") >= 0);
    assert_int_equal(store_remove(st, "root-object.json", err, sizeof(err)), 0);
    store_close(st);
}

static void test_aws_cli_interop(void **state)
{
    struct store *st = open_main();
    char err[512] = "", sha[65], back[160], want[65];
    const char *ep = getenv("AWS_ENDPOINT_URL");

    (void)state;
    reset_faults();
    if (access(AWS, X_OK) != 0) {
        fprintf(stderr, AWS " missing (make deps)\n");
        fail();
    }
    /* what we uploaded, the CLI lists and downloads byte-identical */
    sh(AWS " --endpoint-url %s s3 ls s3://%s/backups/0123456789abcdef/ | grep -q ' %u big.db$'", ep,
       bucket, BIG_SIZE);
    snprintf(back, sizeof(back), "%s/back", work);
    sh(AWS " --endpoint-url %s s3 cp --only-show-errors s3://%s/backups/0123456789abcdef/big.db %s",
       ep, bucket, back);
    assert_int_equal(test_file_sha256(back, sha), 0);
    assert_string_equal(sha, big_sha);
    /* what the CLI uploaded (multipart: 20 MB at its 8 MiB default), we download */
    assert_int_equal(test_file_fill(back, 20u * 1000 * 1000, 7), 0);
    assert_int_equal(test_file_sha256(back, want), 0);
    sh(AWS " --endpoint-url %s s3 cp --only-show-errors %s s3://%s/backups/cli/by-cli.db", ep, back,
       bucket);
    assert_int_equal(get_sha(st, "cli/by-cli.db", sha, NULL, err, sizeof(err)), 0);
    assert_string_equal(sha, want);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_roundtrip),
        cmocka_unit_test(test_parallel_parts),
        cmocka_unit_test(test_small_objects_and_paging),
        cmocka_unit_test(test_faulty_parts_retried),
        cmocka_unit_test(test_dropped_connection_aborts),
        cmocka_unit_test(test_get_resumes_with_range),
        cmocka_unit_test(test_stale_uploads_aborted),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_aws_cli_interop),
        cmocka_unit_test(test_empty_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
