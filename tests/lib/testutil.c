/* testutil.c - helpers shared by the test programs; see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"

int test_time_scale(void)
{
    const char *s = getenv("TEST_TIME_SCALE");
    uint64_t v;

    if (!s || config_parse_u64(s, 1, 100, &v) != 0)
        return 1;
    return (int)v;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int test_rm_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void test_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void test_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void test_bbolt_meta(uint8_t *p, uint64_t pgid, uint32_t page_size, uint64_t txid, uint64_t hwm)
{
    uint8_t *m = p + 16;                  /* after the page header */
    uint64_t sum = 0xcbf29ce484222325ull; /* FNV-1a over the meta up to its checksum */

    memset(p, 0, TEST_BBOLT_META_LEN);
    test_put_le64(p, pgid);
    p[8] = 0x04; /* metaPageFlag */
    test_put_le32(m, 0xED0CDAED);
    test_put_le32(m + 4, 2);
    test_put_le32(m + 8, page_size);
    test_put_le64(m + 16, 3); /* root */
    test_put_le64(m + 32, 2); /* freelist */
    test_put_le64(m + 40, hwm);
    test_put_le64(m + 48, txid);
    for (size_t i = 0; i < 56; i++) {
        sum ^= m[i];
        sum *= 0x100000001b3ull;
    }
    test_put_le64(m + 56, sum);
}

int test_file_fill(const char *path, size_t size, uint64_t seed)
{
    const size_t chunk = 1u << 20;
    uint64_t *buf = malloc(chunk), x = seed * 0x9E3779B97F4A7C15ull + 1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc = 0;

    if (fd < 0 || !buf) {
        rc = fd < 0 ? -errno : -ENOMEM;
        goto out;
    }
    for (size_t done = 0; done < size;) {
        size_t n = size - done < chunk ? size - done : chunk;
        for (size_t i = 0; i < chunk / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        ssize_t w = write(fd, buf, n);
        if (w != (ssize_t)n) {
            rc = w < 0 ? -errno : -EIO;
            goto out;
        }
        done += n;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int test_file_sha256(const char *path, char hex[65])
{
    const size_t chunk = 1u << 20;
    unsigned char md[32], *buf = malloc(chunk);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    ssize_t r;

    if (fd < 0 || !buf || !c) {
        rc = fd < 0 ? -errno : -ENOMEM;
        goto out;
    }
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    while ((r = read(fd, buf, chunk)) > 0)
        EVP_DigestUpdate(c, buf, (size_t)r);
    if (r < 0) {
        rc = -errno;
        goto out;
    }
    EVP_DigestFinal_ex(c, md, NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
    EVP_MD_CTX_free(c);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int test_buf_sink(void *arg, const uint8_t *data, size_t len)
{
    struct test_buf *b = arg;

    if (b->fail_after && ++b->calls >= b->fail_after)
        return -ENOSPC;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2 + 64;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

int test_channel_open(const char *who, const char *endpoint, const struct tls_files *files,
                      struct tls_ctx **tls, struct grpc_channel **ch)
{
    char err[512];
    const char *eps[] = {endpoint};

    *ch = NULL;
    if (!(*tls = tls_client_new(files, err, sizeof err))) {
        fprintf(stderr, "%s: tls: %s\n", who, err);
        return -1;
    }
    struct grpc_channel_config cfg = {.endpoints = eps, .n_endpoints = 1, .tls = *tls};
    if (!(*ch = grpc_channel_new(&cfg, err, sizeof err))) {
        fprintf(stderr, "%s: channel: %s\n", who, err);
        return -1;
    }
    return 0;
}
