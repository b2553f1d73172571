/* bench_age.c - a command-line front to common/codec.c and common/age.c, for the interop
 * tests (tests/e2e/age_interop.sh) and the benchmark (tests/bench/age.sh); also generates
 * Kubernetes-like JSON to compress. stdin to stdout, 1 MiB reads.
 *
 * usage: bench_age enc [-z LEVEL] [-r age1...]... [-R FILE]   (-z 0: no zstd; no -r/-R: no age)
 *        bench_age dec [-z] [-i FILE]                          (-z: zstd-decompress after age)
 *        bench_age gen MB                                      (~MB MiB of JSON objects)
 * enc/dec print "plain SHA SIZE object SHA SIZE" on stderr when they succeed; a failure
 * prints the reason and exits 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "codec.h"
#include "config.h"
#include "hex.h"

#define BENCH_IO (1u << 20)

static int out_stdout(void *arg, const uint8_t *buf, size_t len)
{
    (void)arg;
    while (len > 0) {
        ssize_t w = write(1, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static int pump(struct codec *c)
{
    static uint8_t buf[BENCH_IO];
    struct codec_result r;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("read");
            return 1;
        }
        if (n == 0)
            break;
        if (codec_write(c, buf, (size_t)n) != 0)
            goto bad;
    }
    if (codec_finish(c, &r) != 0)
        goto bad;
    char p[65], o[65];
    hex_encode(r.plain_sha256, 32, p);
    hex_encode(r.object_sha256, 32, o);
    fprintf(stderr, "plain %s %llu object %s %llu\n", p, (unsigned long long)r.plain_size, o,
            (unsigned long long)r.object_size);
    return 0;
bad:
    fprintf(stderr, "bench_age: %s\n", codec_error(c));
    return 1;
}

/* Kubernetes-like objects: pods, configmaps, events with repeated keys and varying values. */
static int gen(uint64_t mb)
{
    static char buf[BENCH_IO + 8192];
    uint64_t total = mb << 20, done = 0, i = 0, x = 88172645463325252ull;
    static const char *ns[] = {"kube-system", "default", "monitoring", "payments", "ingress"};
    static const char *kinds[] = {"Pod", "ConfigMap", "Event", "Service", "Secret"};
    while (done < total) {
        size_t o = 0;
        while (o < BENCH_IO) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int n = snprintf(
                buf + o, sizeof buf - o,
                "{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"app-%llx-%04llx\","
                "\"namespace\":\"%s\",\"uid\":\"%08llx-%04llx-4%03llx-a%03llx-%012llx\","
                "\"resourceVersion\":\"%llu\",\"creationTimestamp\":\"2026-%02llu-%02lluT%02llu:"
                "%02llu:%02lluZ\",\"labels\":{\"app\":\"app-%llx\",\"pod-template-hash\":\"%llx\"}}"
                ","
                "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"registry.example/"
                "app-%llx:"
                "v1.%llu.%llu\",\"resources\":{\"requests\":{\"cpu\":\"%llum\",\"memory\":\"%"
                "lluMi\"}},"
                "\"env\":[{\"name\":\"REPLICA\",\"value\":\"%llu\"}]}],\"nodeName\":\"node-%"
                "02llu\"},"
                "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%llu.%llu.%llu\"}}\n",
                kinds[x % 5], (unsigned long long)(x >> 40) % 200, (unsigned long long)i % 65536,
                ns[(x >> 8) % 5], (unsigned long long)(x & 0xffffffff),
                (unsigned long long)(x >> 32) & 0xffff, (unsigned long long)(x >> 20) & 0xfff,
                (unsigned long long)(x >> 10) & 0xfff, (unsigned long long)(x ^ i) & 0xffffffffffff,
                (unsigned long long)(1000000 + i), (unsigned long long)(x % 12) + 1,
                (unsigned long long)(x % 28) + 1, (unsigned long long)(x % 24),
                (unsigned long long)(x % 60), (unsigned long long)((x >> 6) % 60),
                (unsigned long long)(x >> 40) % 200, (unsigned long long)(x >> 16) & 0xfffff,
                (unsigned long long)(x >> 40) % 200, (unsigned long long)(x % 30),
                (unsigned long long)(x >> 50) % 10, (unsigned long long)(x % 40) * 25,
                (unsigned long long)((x >> 5) % 32) * 64, (unsigned long long)(x % 7),
                (unsigned long long)(x >> 30) % 40, (unsigned long long)(x >> 3) & 255,
                (unsigned long long)(x >> 11) & 255, (unsigned long long)(x >> 19) & 255);
            if (n < 0 || (size_t)n >= sizeof buf - o)
                return 1;
            o += (size_t)n;
            i++;
        }
        if (out_stdout(NULL, (const uint8_t *)buf, o) != 0)
            return 1;
        done += o;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct age_recipient rs[AGE_MAX_RECIPIENTS];
    static struct age_identity ids[AGE_MAX_IDENTITIES];
    char err[AGE_ERR_LEN];
    size_t nr = 0, ni = 0, got;
    int level = 3, rc = 2;
    bool zstd = false;
    if (argc >= 3 && strcmp(argv[1], "gen") == 0) {
        uint64_t mb;
        if (config_parse_u64(argv[2], 1, 1u << 20, &mb) < 0)
            goto usage;
        return gen(mb);
    }
    if (argc < 2 || (strcmp(argv[1], "enc") != 0 && strcmp(argv[1], "dec") != 0))
        goto usage;
    bool enc = strcmp(argv[1], "enc") == 0;
    for (int i = 2; i < argc; i++) {
        uint64_t v;
        if (enc && strcmp(argv[i], "-z") == 0 && i + 1 < argc) {
            if (config_parse_u64(argv[++i], 0, CODEC_ZSTD_MAX_LEVEL, &v) < 0)
                goto usage;
            level = (int)v;
        } else if (!enc && strcmp(argv[i], "-z") == 0) {
            zstd = true;
        } else if (enc && strcmp(argv[i], "-r") == 0 && i + 1 < argc && nr < AGE_MAX_RECIPIENTS) {
            i++;
            if (age_recipient_parse(argv[i], strlen(argv[i]), &rs[nr++]) != 0) {
                fprintf(stderr, "bench_age: bad recipient %s\n", argv[i]);
                return 1;
            }
        } else if (enc && strcmp(argv[i], "-R") == 0 && i + 1 < argc) {
            if (age_recipients_load(argv[++i], rs + nr, AGE_MAX_RECIPIENTS - nr, &got, err,
                                    sizeof err) != 0) {
                fprintf(stderr, "bench_age: %s\n", err);
                return 1;
            }
            nr += got;
        } else if (!enc && strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            if (age_identities_load(argv[++i], ids + ni, AGE_MAX_IDENTITIES - ni, &got, err,
                                    sizeof err) != 0) {
                fprintf(stderr, "bench_age: %s\n", err);
                return 1;
            }
            ni += got;
        } else {
            goto usage;
        }
    }
    struct codec *c = NULL;
    if (enc) {
        struct codec_enc_opts o = {
            .zstd = level > 0, .zstd_level = level, .recipients = rs, .n_recipients = nr};
        rc = codec_enc_new(&c, &o, out_stdout, NULL);
    } else {
        struct codec_dec_opts o = {.zstd = zstd, .identities = ids, .n_identities = ni};
        rc = codec_dec_new(&c, &o, out_stdout, NULL);
    }
    age_identity_wipe(ids, ni);
    if (rc != 0) {
        fprintf(stderr, "bench_age: %s\n", strerror(-rc));
        return 1;
    }
    rc = pump(c);
    codec_free(c);
    return rc;
usage:
    fprintf(stderr, "usage: bench_age enc [-z LEVEL] [-r age1...]... [-R FILE]\n"
                    "       bench_age dec [-z] [-i FILE]\n"
                    "       bench_age gen MB\n");
    return 2;
}
