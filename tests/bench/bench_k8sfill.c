/* bench_k8sfill.c - fills an etcd with Kubernetes-like objects until MB megabytes of values
 * are written: pods (JSON with the field names, labels, managedFields and status a real
 * cluster's pods carry, ~4-12 KB), configmaps (config text, some of it high-entropy) and
 * secrets (base64 of random bytes, which no compressor shrinks), under
 * /registry/<kind>/<namespace>/<name> keys, so that a snapshot compresses like a real
 * cluster's (zstd -3: ~5x) rather than like random values (1x). Deterministic per SEED.
 * Used by tests/bench/backup.sh (several processes in parallel, one SEED each).
 *
 * usage: bench_k8sfill ENDPOINT CACERT CERT KEY MB SEED */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "etcd.h"
#include "grpc.h"
#include "testutil.h"
#include "tls.h"

#define K8S_MAX_MB 8192u
#define K8S_MAX_SEED 1000000u
#define K8S_VALUE_CAP (256u * 1024) /* one object; etcd's request limit is ~1.5 MiB */
#define K8S_TIMEOUT_MS 30000

struct gen {
    uint64_t s;
    char *buf;
    size_t len;
};

static uint64_t rnd(struct gen *g)
{
    g->s ^= g->s << 13; /* xorshift64 */
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return g->s;
}

static unsigned pick(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static void put(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->buf + g->len, K8S_VALUE_CAP - g->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        g->len += (size_t)n < K8S_VALUE_CAP - g->len ? (size_t)n : K8S_VALUE_CAP - g->len - 1;
}

static void rand_chars(struct gen *g, const char *alphabet, size_t n)
{
    size_t a = strlen(alphabet);
    for (size_t i = 0; i < n && g->len + 1 < K8S_VALUE_CAP; i++)
        g->buf[g->len++] = alphabet[rnd(g) % a];
    g->buf[g->len] = '\0';
}

static const char *const apps[] = {"web",      "api",       "worker",  "frontend", "cache",
                                   "ingest",   "billing",   "search",  "auth",     "metrics",
                                   "notifier", "scheduler", "gateway", "reporter"};
static const char *const images[] = {"nginx:1.25.3",
                                     "redis:7.2.4",
                                     "python:3.11-slim",
                                     "golang:1.21",
                                     "envoyproxy/envoy:v1.28.0",
                                     "quay.io/prometheus/node-exporter:v1.7.0"};
static const char *const managers[] = {"kube-controller-manager", "kubelet", "kube-scheduler",
                                       "helm", "argocd-controller"};
static const char hexd[] = "0123456789abcdef";
static const char lower[] = "bcdfghjklmnpqrstvwxz2456789";
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void uid(struct gen *g)
{
    rand_chars(g, hexd, 8);
    put(g, "-");
    rand_chars(g, hexd, 4);
    put(g, "-4");
    rand_chars(g, hexd, 3);
    put(g, "-a");
    rand_chars(g, hexd, 3);
    put(g, "-");
    rand_chars(g, hexd, 12);
}

static void stamp(struct gen *g)
{
    put(g, "2026-%02u-%02uT%02u:%02u:%02uZ", 1 + pick(g, 11), 1 + pick(g, 28), pick(g, 24),
        pick(g, 60), pick(g, 60));
}

static void meta(struct gen *g, const char *name, const char *ns, const char *app, uint64_t rv)
{
    put(g, "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"uid\":\"", name, ns);
    uid(g);
    put(g, "\",\"resourceVersion\":\"%llu\",\"creationTimestamp\":\"", (unsigned long long)rv);
    stamp(g);
    put(g,
        "\",\"labels\":{\"app.kubernetes.io/name\":\"%s\",\"app.kubernetes.io/part-of\":\"%s\","
        "\"app.kubernetes.io/managed-by\":\"Helm\",\"team\":\"%s\"},\"annotations\":{"
        "\"meta.helm.sh/release-name\":\"%s\",\"meta.helm.sh/release-namespace\":\"%s\"},"
        "\"managedFields\":[",
        app, app, ns, app, ns);
    unsigned nm = 1 + pick(g, 3);
    for (unsigned i = 0; i < nm; i++) {
        put(g, "%s{\"manager\":\"%s\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"",
            i ? "," : "", managers[pick(g, 5)]);
        stamp(g);
        put(g, "\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{"
               "\".\":{},\"f:app.kubernetes.io/name\":{},\"f:team\":{}}},\"f:spec\":{"
               "\"f:containers\":{\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},\"f:image\":{},"
               "\"f:imagePullPolicy\":{},\"f:name\":{},\"f:resources\":{}}}}}}");
    }
    put(g, "]}");
}

static void pod(struct gen *g, const char *name, const char *ns, const char *app, uint64_t rv)
{
    put(g, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",");
    meta(g, name, ns, app, rv);
    put(g, ",\"spec\":{\"containers\":[");
    unsigned nc = 1 + pick(g, 3);
    for (unsigned c = 0; c < nc; c++) {
        put(g,
            "%s{\"name\":\"%s\",\"image\":\"%s\",\"imagePullPolicy\":\"IfNotPresent\","
            "\"ports\":[{\"containerPort\":%u,\"protocol\":\"TCP\"}],\"env\":[",
            c ? "," : "", c ? "sidecar" : "main", images[pick(g, 6)], 8000 + pick(g, 1000));
        unsigned ne = 3 + pick(g, 12);
        for (unsigned e = 0; e < ne; e++) {
            put(g, "%s{\"name\":\"%s_SETTING_%u\",\"value\":\"", e ? "," : "", apps[pick(g, 14)],
                e);
            rand_chars(g, lower, 6 + pick(g, 30));
            put(g, "\"}");
        }
        put(g,
            "],\"resources\":{\"limits\":{\"cpu\":\"%um\",\"memory\":\"%uMi\"},\"requests\":{"
            "\"cpu\":\"%um\",\"memory\":\"%uMi\"}},\"volumeMounts\":[{\"name\":\"kube-api-"
            "access-",
            100 * (1 + pick(g, 20)), 64 * (1 + pick(g, 32)), 50 * (1 + pick(g, 20)),
            32 * (1 + pick(g, 32)));
        rand_chars(g, lower, 5);
        put(g, "\",\"readOnly\":true,\"mountPath\":\"/var/run/secrets/kubernetes.io/"
               "serviceaccount\"}],\"terminationMessagePath\":\"/dev/termination-log\","
               "\"terminationMessagePolicy\":\"File\",\"securityContext\":{"
               "\"allowPrivilegeEscalation\":false,\"runAsNonRoot\":true}}");
    }
    put(g,
        "],\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":"
        "\"ClusterFirst\",\"serviceAccountName\":\"%s\",\"nodeName\":\"worker-%u.cluster.local\","
        "\"schedulerName\":\"default-scheduler\",\"tolerations\":[{\"key\":\"node.kubernetes.io/"
        "not-ready\",\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":300}"
        "]},\"status\":{\"phase\":\"Running\",\"conditions\":[",
        app, pick(g, 200));
    static const char *const conds[] = {"Initialized", "Ready", "ContainersReady", "PodScheduled"};
    for (unsigned i = 0; i < 4; i++) {
        put(g, "%s{\"type\":\"%s\",\"status\":\"True\",\"lastTransitionTime\":\"", i ? "," : "",
            conds[i]);
        stamp(g);
        put(g, "\"}");
    }
    put(g, "],\"hostIP\":\"10.%u.%u.%u\",\"podIP\":\"10.%u.%u.%u\",\"startTime\":\"", pick(g, 256),
        pick(g, 256), pick(g, 256), 128 + pick(g, 128), pick(g, 256), pick(g, 256));
    stamp(g);
    put(g,
        "\",\"containerStatuses\":[{\"name\":\"main\",\"ready\":true,\"restartCount\":%u,"
        "\"containerID\":\"containerd://",
        pick(g, 4));
    rand_chars(g, hexd, 64);
    put(g, "\",\"imageID\":\"sha256:");
    rand_chars(g, hexd, 64);
    put(g, "\"}],\"qosClass\":\"Burstable\"}}");
}

static void configmap(struct gen *g, const char *name, const char *ns, const char *app, uint64_t rv,
                      bool secret)
{
    put(g, "{\"apiVersion\":\"v1\",\"kind\":\"%s\",", secret ? "Secret" : "ConfigMap");
    meta(g, name, ns, app, rv);
    put(g, ",%s\"data\":{", secret ? "\"type\":\"Opaque\"," : "");
    unsigned nk = 1 + pick(g, 6);
    for (unsigned k = 0; k < nk; k++) {
        put(g, "%s\"%s-%u.%s\":\"", k ? "," : "", apps[pick(g, 14)], k, secret ? "key" : "yaml");
        if (secret) {
            rand_chars(g, b64, 64 + pick(g, 3000));
        } else {
            unsigned lines = 10 + pick(g, 150);
            for (unsigned l = 0; l < lines; l++) {
                put(g,
                    "%s_%u:\\n  enabled: %s\\n  endpoint: https://%s.%s.svc:%u/v1/\\n  "
                    "timeout: %us\\n",
                    apps[pick(g, 14)], l, pick(g, 2) ? "true" : "false", apps[pick(g, 14)], ns,
                    8000 + pick(g, 1000), 1 + pick(g, 60));
                if (pick(g, 8) == 0) { /* an embedded certificate or token line */
                    put(g, "  ca: ");
                    rand_chars(g, b64, 64 + pick(g, 200));
                    put(g, "\\n");
                }
            }
        }
        put(g, "\"");
    }
    put(g, "}}");
}

int main(int argc, char **argv)
{
    uint64_t mb, seed;
    int rc = 1;
    struct tls_ctx *tls = NULL;
    struct grpc_channel *ch = NULL;
    struct gen g = {0};
    if (argc != 7 || config_parse_u64(argv[5], 1, K8S_MAX_MB, &mb) < 0 ||
        config_parse_u64(argv[6], 0, K8S_MAX_SEED, &seed) < 0) {
        fprintf(stderr, "usage: %s ENDPOINT CACERT CERT KEY MB SEED\n", argv[0]);
        return 2;
    }
    struct tls_files files = {.ca_file = argv[2], .cert_file = argv[3], .key_file = argv[4]};
    if (test_channel_open(argv[0], argv[1], &files, &tls, &ch) < 0)
        goto out;
    if (!(g.buf = malloc(K8S_VALUE_CAP)))
        goto out;
    g.s = 0x9e3779b97f4a7c15ull * (seed + 1);
    uint64_t total = 0, goal = mb << 20;
    for (uint64_t i = 0; total < goal; i++) {
        char key[256], name[128], ns[32];
        const char *app = apps[pick(&g, 14)];
        snprintf(ns, sizeof ns, "team-%03u", pick(&g, 60));
        unsigned kind = pick(&g, 10); /* 7 pods : 2 configmaps : 1 secret */
        g.len = 0;
        g.buf[0] = '\0';
        snprintf(name, sizeof name, "%s-%llx-%llu", app, (unsigned long long)(rnd(&g) & 0xfffffff),
                 (unsigned long long)i);
        uint64_t rv = 1000000 + seed * 10000000 + i;
        if (kind < 7)
            pod(&g, name, ns, app, rv);
        else
            configmap(&g, name, ns, app, rv, kind == 9);
        snprintf(key, sizeof key, "/registry/%s/%s/%s-s%llu",
                 kind < 7   ? "pods"
                 : kind < 9 ? "configmaps"
                            : "secrets",
                 ns, name, (unsigned long long)seed);
        struct grpc_status st;
        if (etcd_put(ch, key, (const uint8_t *)g.buf, g.len, K8S_TIMEOUT_MS, &st) != GRPC_OK) {
            fprintf(stderr, "put %s: %s\n", key, st.message);
            goto out;
        }
        total += g.len;
    }
    rc = 0;
out:
    free(g.buf);
    grpc_channel_free(ch);
    tls_ctx_free(tls);
    return rc;
}
