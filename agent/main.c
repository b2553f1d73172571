/* main.c - etcd-agent: flags, wiring of cache, probes, routes and the HTTP server, signals.
 *
 * The sidecar's parts live elsewhere: probe.c asks etcd, routes.c answers HTTP from the cache,
 * server.c owns sockets and protocols. SIGTERM/SIGINT stop the server gracefully (in-flight
 * responses get AGENT_STOP_GRACE_MS), then the probes; the exit code is 0. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cache.h"
#include "array.h"
#include "bounds.h"
#include "clock.h"
#include "config.h"
#include "divergent.h"
#include "log.h"
#include "maint.h"
#include "maint_peer.h"
#include "probe.h"
#include "routes.h"
#include "server.h"
#include "backup.h"
#include "snapshot.h"
#include "tls.h"

#ifndef ETCD_RECOVERY_VERSION
#define ETCD_RECOVERY_VERSION "0.0.0"
#endif

#define AGENT_PROG "etcd-agent"
#define AGENT_DEFAULT_ENDPOINT "https://127.0.0.1:2379"
#define AGENT_DEFAULT_LISTEN "127.0.0.1:9980"
#define AGENT_DEFAULT_PROBE_INTERVAL_MS 1000
#define AGENT_DEFAULT_LIVEZ_INTERVALS 30
#define AGENT_DEFAULT_SNAPSHOT_CONCURRENCY 1
#define MAINT_DEFAULT_DEFRAG_INTERVAL_MS (10 * 60 * 1000) /* HyperShift's defrag controller */
#define MAINT_DEFAULT_DEFRAG_SETTLE_MS (30 * 1000)
#define MAINT_DEFAULT_DEFRAG_TIMEOUT_MS (10 * 60 * 1000)
#define MAINT_DEFAULT_HASHKV_INTERVAL_MS (60 * 60 * 1000) /* HashKV holds the backend read lock */
#define MAINT_DEFAULT_DEFRAG_THRESHOLD 45                 /* percent of the db free */
#define MAINT_DEFAULT_DEFRAG_MIN_FREE "100MB"
#define MAINT_DEFAULT_NOSPACE_RESUME 80 /* percent of the quota */
#define AGENT_EXIT_OK 0
#define AGENT_EXIT_FAILED 1
#define AGENT_EXIT_USAGE 2

struct flags {
    struct config_list endpoints, cluster_endpoints, peer_agents;
    struct config_string cacert, cert, key;
    struct config_string listen, tls_listen, tls_cert, tls_key, tls_client_ca;
    uint64_t probe_interval_ms, livez_intervals;
    struct config_string name, data_dir, divergent_marker;
    /* snapshots (snapshot.c) */
    struct config_string snapshot_dir, spool_dir;
    uint64_t snapshot_concurrency, snapshot_interval_ms, snapshot_keep;
    bool allow_insecure_snapshot, io_uring;
    /* day-2 maintenance (maint.c) */
    uint64_t defrag_interval_ms, defrag_settle_ms, defrag_timeout_ms, hashkv_interval_ms;
    uint64_t defrag_threshold, nospace_resume;
    struct config_string defrag_min_free;
    bool nospace_compact;
    /* off-node backups (backup.c) */
    struct config_string backup_url, backup_keep, backup_compress, backup_recipients_file;
    struct config_list backup_recipients;
    uint64_t backup_interval_ms, backup_verify_interval_ms, backup_zstd_level;
};

/* The flags with their defaults; the option table points into it. */
static struct flags g_flags = {
    .listen = {.value = AGENT_DEFAULT_LISTEN},
    .probe_interval_ms = AGENT_DEFAULT_PROBE_INTERVAL_MS,
    .livez_intervals = AGENT_DEFAULT_LIVEZ_INTERVALS,
    .snapshot_concurrency = AGENT_DEFAULT_SNAPSHOT_CONCURRENCY,
    .io_uring = true,
    .defrag_interval_ms = MAINT_DEFAULT_DEFRAG_INTERVAL_MS,
    .defrag_settle_ms = MAINT_DEFAULT_DEFRAG_SETTLE_MS,
    .defrag_timeout_ms = MAINT_DEFAULT_DEFRAG_TIMEOUT_MS,
    .hashkv_interval_ms = MAINT_DEFAULT_HASHKV_INTERVAL_MS,
    .defrag_threshold = MAINT_DEFAULT_DEFRAG_THRESHOLD,
    .defrag_min_free = {.value = MAINT_DEFAULT_DEFRAG_MIN_FREE},
    .nospace_resume = MAINT_DEFAULT_NOSPACE_RESUME,
    .backup_compress = {.value = "zstd"},
    .backup_verify_interval_ms = BACKUP_VERIFY_DEFAULT_MS,
};

static const struct config_option g_opts[] = {
    {.name = "endpoints",
     .env = {"ETCDCTL_ENDPOINTS"},
     .type = CONFIG_LIST,
     .target = &g_flags.endpoints,
     .help = "the local etcd member's client URLs; unset: " AGENT_DEFAULT_ENDPOINT,
     .arg_name = "URLS"},
    {.name = "cluster-endpoints",
     .env = {"ETCD_AGENT_CLUSTER_ENDPOINTS"},
     .type = CONFIG_LIST,
     .target = &g_flags.cluster_endpoints,
     .help = "client URLs for the cluster table and promotion; unset: MemberList's client URLs "
             "(set it when the member starts as a learner)",
     .arg_name = "URLS"},
    {.name = "cacert",
     .env = {"ETCDCTL_CACERT"},
     .type = CONFIG_STRING,
     .target = &g_flags.cacert,
     .help = "CA bundle that signed etcd's certificates (required)",
     .arg_name = "FILE"},
    {.name = "cert",
     .env = {"ETCDCTL_CERT"},
     .type = CONFIG_STRING,
     .target = &g_flags.cert,
     .help = "client certificate for etcd",
     .arg_name = "FILE"},
    {.name = "key",
     .env = {"ETCDCTL_KEY"},
     .type = CONFIG_STRING,
     .target = &g_flags.key,
     .help = "client key for etcd",
     .arg_name = "FILE"},
    {.name = "listen",
     .env = {"ETCD_AGENT_LISTEN"},
     .type = CONFIG_STRING,
     .target = &g_flags.listen,
     .help = "plain HTTP listener (HTTP/1.1 and h2c) for probes and metrics",
     .arg_name = "ADDR:PORT"},
    {.name = "tls-listen",
     .env = {"ETCD_AGENT_TLS_LISTEN"},
     .type = CONFIG_STRING,
     .target = &g_flags.tls_listen,
     .help = "HTTPS listener (h2 via ALPN); needs --tls-cert and --tls-key",
     .arg_name = "ADDR:PORT"},
    {.name = "tls-cert",
     .env = {"ETCD_AGENT_TLS_CERT"},
     .type = CONFIG_STRING,
     .target = &g_flags.tls_cert,
     .help = "server certificate for --tls-listen",
     .arg_name = "FILE"},
    {.name = "tls-key",
     .env = {"ETCD_AGENT_TLS_KEY"},
     .type = CONFIG_STRING,
     .target = &g_flags.tls_key,
     .help = "server key for --tls-listen",
     .arg_name = "FILE"},
    {.name = "tls-client-ca",
     .env = {"ETCD_AGENT_TLS_CLIENT_CA"},
     .type = CONFIG_STRING,
     .target = &g_flags.tls_client_ca,
     .help = "require client certificates signed by this CA on --tls-listen",
     .arg_name = "FILE"},
    {.name = "probe-interval",
     .env = {"ETCD_AGENT_PROBE_INTERVAL"},
     .type = CONFIG_DURATION,
     .target = &g_flags.probe_interval_ms,
     .min = AGENT_MIN_INTERVAL_MS,
     .max = AGENT_MAX_INTERVAL_MS,
     .help = "how often the local member is probed",
     .arg_name = "DURATION"},
    {.name = "livez-intervals",
     .env = {"ETCD_AGENT_LIVEZ_INTERVALS"},
     .type = CONFIG_UINT,
     .target = &g_flags.livez_intervals,
     .min = 1,
     .max = AGENT_MAX_LIVEZ_INTERVALS,
     .help = "/livez fails after this many probe intervals without an answer",
     .arg_name = "N"},
    {.name = "name",
     .env = {"ETCD_NAME"},
     .type = CONFIG_STRING,
     .target = &g_flags.name,
     .help = "the member's name (shown)",
     .arg_name = "NAME"},
    {.name = "data-dir",
     .env = {"ETCD_DATA_DIR"},
     .type = CONFIG_STRING,
     .target = &g_flags.data_dir,
     .help = "the member's data dir (snapshots from disk; the divergent marker beside it)",
     .arg_name = "DIR"},
    {.name = "divergent-marker",
     .env = {"ETCD_AGENT_DIVERGENT_MARKER"},
     .type = CONFIG_STRING,
     .target = &g_flags.divergent_marker,
     .help = "where to write the divergent marker (default <data-dir>.divergent; reset-member "
             "must read the same file)",
     .arg_name = "FILE"},
    {.name = "snapshot-dir",
     .env = {"ETCD_AGENT_SNAPSHOT_DIR"},
     .type = CONFIG_STRING,
     .target = &g_flags.snapshot_dir,
     .help = "keep snapshots here: POST /snapshots, GET /snapshots[/NAME], schedule",
     .arg_name = "DIR"},
    {.name = "spool-dir",
     .env = {"ETCD_AGENT_SPOOL_DIR"},
     .type = CONFIG_STRING,
     .target = &g_flags.spool_dir,
     .help = "where a snapshot spills when its client is slow (default: --snapshot-dir, else /tmp)",
     .arg_name = "DIR"},
    {.name = "snapshot-concurrency",
     .env = {"ETCD_AGENT_SNAPSHOT_CONCURRENCY"},
     .type = CONFIG_UINT,
     .target = &g_flags.snapshot_concurrency,
     .min = 1,
     .max = SNAPSHOT_MAX_CONCURRENCY,
     .help = "etcd snapshots at once; more requests get 429",
     .arg_name = "N"},
    {.name = "snapshot-interval",
     .env = {"ETCD_AGENT_SNAPSHOT_INTERVAL"},
     .type = CONFIG_DURATION,
     .target = &g_flags.snapshot_interval_ms,
     .max = AGENT_MAX_SNAPSHOT_INTERVAL_MS,
     .help = "take a snapshot into --snapshot-dir this often (0: never)",
     .arg_name = "DURATION"},
    {.name = "snapshot-keep",
     .env = {"ETCD_AGENT_SNAPSHOT_KEEP"},
     .type = CONFIG_UINT,
     .target = &g_flags.snapshot_keep,
     .max = SNAPSHOT_MAX_KEEP,
     .help = "keep the newest N saved snapshots (0: all)",
     .arg_name = "N"},
    {.name = "allow-insecure-snapshot",
     .env = {"ETCD_AGENT_ALLOW_INSECURE_SNAPSHOT"},
     .type = CONFIG_BOOL,
     .target = &g_flags.allow_insecure_snapshot,
     .help = "serve snapshot routes on the plain listener too (they hold every secret)"},
    {.name = "io-uring",
     .env = {"ETCD_AGENT_IO_URING"},
     .type = CONFIG_BOOL,
     .target = &g_flags.io_uring,
     .help = "file I/O through io_uring (--no-io-uring: pread/pwrite)"},
    /* ---- day-2 maintenance (maint.c, docs/maintenance.md) ---- */
    {.name = "defrag-interval",
     .env = {"ETCD_AGENT_DEFRAG_INTERVAL"},
     .type = CONFIG_DURATION,
     .target = &g_flags.defrag_interval_ms,
     .max = AGENT_MAX_MAINT_MS,
     .help = "the leader's agent looks for members due for a defrag this often (0: never)",
     .arg_name = "DURATION"},
    {.name = "defrag-settle",
     .env = {"ETCD_AGENT_DEFRAG_SETTLE"},
     .type = CONFIG_DURATION,
     .target = &g_flags.defrag_settle_ms,
     .max = AGENT_MAX_MAINT_MS,
     .help = "pause after each maintenance step (defrag, leader move)",
     .arg_name = "DURATION"},
    {.name = "defrag-timeout",
     .env = {"ETCD_AGENT_DEFRAG_TIMEOUT"},
     .type = CONFIG_DURATION,
     .target = &g_flags.defrag_timeout_ms,
     .min = 1000,
     .max = AGENT_MAX_MAINT_MS,
     .help = "deadline of one Defragment; /livez stays 200 this long during one",
     .arg_name = "DURATION"},
    {.name = "defrag-min-free",
     .env = {"ETCD_AGENT_DEFRAG_MIN_FREE"},
     .type = CONFIG_STRING,
     .target = &g_flags.defrag_min_free,
     .help = "a member is due when at least this much of its db is free (bytes, 100MB, 1GiB)",
     .arg_name = "SIZE"},
    {.name = "defrag-threshold",
     .env = {"ETCD_AGENT_DEFRAG_THRESHOLD"},
     .type = CONFIG_UINT,
     .target = &g_flags.defrag_threshold,
     .max = 100,
     .help = "... and at least this percentage of its db is free",
     .arg_name = "PERCENT"},
    {.name = "hashkv-interval",
     .env = {"ETCD_AGENT_HASHKV_INTERVAL"},
     .type = CONFIG_DURATION,
     .target = &g_flags.hashkv_interval_ms,
     .max = AGENT_MAX_MAINT_MS,
     .help = "compare every member's HashKV this often (0: never)",
     .arg_name = "DURATION"},
    {.name = "peer-agents",
     .env = {"ETCD_AGENT_PEER_AGENTS"},
     .type = CONFIG_LIST,
     .target = &g_flags.peer_agents,
     .help = "the other agents' base URLs, to learn the leader's HashKV verdict; unset: the "
             "leader's client URL host with this agent's own scheme and port",
     .arg_name = "URLS"},
    {.name = "nospace-resume",
     .env = {"ETCD_AGENT_NOSPACE_RESUME"},
     .type = CONFIG_UINT,
     .target = &g_flags.nospace_resume,
     .min = 1,
     .max = 100,
     .help = "disarm NOSPACE when every member's db is below this percentage of its quota",
     .arg_name = "PERCENT"},
    {.name = "nospace-compact",
     .env = {"ETCD_AGENT_NOSPACE_COMPACT"},
     .type = CONFIG_BOOL,
     .target = &g_flags.nospace_compact,
     .help = "under NOSPACE, compact to the current revision before defragmenting"},
    /* ---- off-node backups (backup.c): secrets come from the AWS_* env only ---- */
    {.name = "backup-url",
     .env = {"ETCD_AGENT_BACKUP_URL"},
     .type = CONFIG_STRING,
     .target = &g_flags.backup_url,
     .help = "back up to s3://BUCKET/PREFIX or file:///PATH (credentials: AWS_* env)",
     .arg_name = "URL"},
    {.name = "backup-interval",
     .env = {"ETCD_AGENT_BACKUP_INTERVAL"},
     .type = CONFIG_DURATION,
     .target = &g_flags.backup_interval_ms,
     .max = UINT64_C(7) * 24 * 3600 * 1000,
     .help = "one backup per interval for the whole cluster (0: only POST /backups)",
     .arg_name = "DURATION"},
    {.name = "backup-keep",
     .env = {"ETCD_AGENT_BACKUP_KEEP"},
     .type = CONFIG_STRING,
     .target = &g_flags.backup_keep,
     .help = "keep N backups, or last=N,hourly=N,daily=N,weekly=N,monthly=N (unset: all)",
     .arg_name = "POLICY"},
    {.name = "backup-compress",
     .env = {"ETCD_AGENT_BACKUP_COMPRESS"},
     .type = CONFIG_STRING,
     .target = &g_flags.backup_compress,
     .help = "zstd or none",
     .arg_name = "ALGO"},
    {.name = "backup-compress-level",
     .env = {"ETCD_AGENT_BACKUP_COMPRESS_LEVEL"},
     .type = CONFIG_UINT,
     .target = &g_flags.backup_zstd_level,
     .max = CODEC_ZSTD_MAX_LEVEL,
     .help = "zstd level (0: default 3)",
     .arg_name = "N"},
    {.name = "backup-recipient",
     .env = {"ETCD_AGENT_BACKUP_RECIPIENTS"},
     .type = CONFIG_LIST,
     .target = &g_flags.backup_recipients,
     .help = "encrypt backups to these age public keys (age1...; comma-separated)",
     .arg_name = "KEYS"},
    {.name = "backup-recipients-file",
     .env = {"ETCD_AGENT_BACKUP_RECIPIENTS_FILE"},
     .type = CONFIG_STRING,
     .target = &g_flags.backup_recipients_file,
     .help = "age recipients file (one age1... per line)",
     .arg_name = "FILE"},
    {.name = "backup-verify-interval",
     .env = {"ETCD_AGENT_BACKUP_VERIFY_INTERVAL"},
     .type = CONFIG_DURATION,
     .target = &g_flags.backup_verify_interval_ms,
     .min = 1000,
     .max = UINT64_C(30) * 24 * 3600 * 1000,
     .help = "download and check the newest backup this often (and after the first)",
     .arg_name = "DURATION"},
};

static const char summary[] =
    "etcd sidecar: cached health probes (/livez /readyz /healthz), the cluster table "
    "(/members), /status and Prometheus /metrics; promotes its member when it is a learner.";

static const char *const default_endpoints[] = {AGENT_DEFAULT_ENDPOINT};

/* Everything main() sets up, torn down in reverse by agent_teardown(). */
struct agent {
    const struct flags *fl;
    struct tls_ctx *client_tls, *server_tls;
    struct cache *cache;
    struct routes *routes;
    struct server *srv;
    struct probe *probe;
    struct snapshot *snap;
    struct maint *maint;
    struct backup *backup;
    bool keep_shared; /* a stuck maintenance thread still uses the cache, TLS and endpoints */
    char divergent_marker[PATH_MAX]; /* "" : no marker (no --data-dir, no --divergent-marker) */
};

static struct server *g_server; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    /* server_stop_graceful is async-signal-safe (an eventfd write). */
    if (g_server)
        server_stop_graceful(g_server, AGENT_STOP_GRACE_MS);
}

static int setup_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -errno;
    /* Peers that vanish mid-write must not kill us; write errors are handled where they occur. */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    return 0;
}

/* Flags and environment into g_flags, then the rules between flags. Returns -1 to go on, or
 * the exit code (help, version, usage error). */
static int parse_flags(int argc, char **argv)
{
    const struct flags *fl = &g_flags;
    char err[512];
    int rc = config_parse(g_opts, ARRAY_SIZE(g_opts), argc, argv, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        config_usage(stdout, AGENT_PROG, summary, g_opts, ARRAY_SIZE(g_opts));
        return AGENT_EXIT_OK;
    }
    if (rc == CONFIG_VERSION) {
        printf("%s %s\n", AGENT_PROG, ETCD_RECOVERY_VERSION);
        return AGENT_EXIT_OK;
    }
    const char *why = NULL;
    int64_t min_free = 0;
    if (rc != CONFIG_OK)
        why = err;
    else if (!fl->cacert.value[0])
        why = "--cacert (or ETCDCTL_CACERT) is required";
    else if ((fl->cert.value[0] != '\0') != (fl->key.value[0] != '\0'))
        why = "--cert and --key go together";
    else if (fl->tls_listen.value[0] && (!fl->tls_cert.value[0] || !fl->tls_key.value[0]))
        why = "--tls-listen needs --tls-cert and --tls-key";
    else if (!fl->listen.value[0] && !fl->tls_listen.value[0])
        why = "one of --listen and --tls-listen is required";
    else if (maint_plan_parse_size(fl->defrag_min_free.value, &min_free) < 0)
        why = "--defrag-min-free: not a size (bytes, or with kB/MB/GB/KiB/MiB/GiB)";
    if (!why)
        return -1;
    fprintf(stderr, "%s: %s\n", AGENT_PROG, why);
    config_usage(stderr, AGENT_PROG, summary, g_opts, ARRAY_SIZE(g_opts));
    return AGENT_EXIT_USAGE;
}

static const char *opt_str(const struct config_string *s)
{
    return s->value[0] ? s->value : NULL;
}

static int setup_tls(struct agent *a, char *err, size_t err_len)
{
    const struct flags *fl = a->fl;
    struct tls_files cf = {.ca_file = fl->cacert.value,
                           .cert_file = opt_str(&fl->cert),
                           .key_file = opt_str(&fl->key)};
    a->client_tls = tls_client_new(&cf, err, err_len);
    if (!a->client_tls)
        return -EINVAL;
    if (!fl->tls_listen.value[0])
        return 0;
    struct tls_files sf = {.ca_file = opt_str(&fl->tls_client_ca),
                           .cert_file = fl->tls_cert.value,
                           .key_file = fl->tls_key.value};
    a->server_tls = tls_server_new(&sf, err, err_len);
    return a->server_tls ? 0 : -EINVAL;
}

static int setup_routes(struct agent *a)
{
    const struct flags *fl = a->fl;
    a->cache = cache_new(clock_mono_ms());
    if (!a->cache)
        return -ENOMEM;
    int timeout = probe_call_timeout_ms(fl->probe_interval_ms);
    struct routes_config rc = {
        .cache = a->cache,
        .health = {.interval_ms = fl->probe_interval_ms,
                   .livez_intervals = fl->livez_intervals,
                   /* A round takes at most three call timeouts; allow two late rounds. */
                   .stale_ms = 2 * fl->probe_interval_ms + 3 * (uint64_t)timeout},
        .version = ETCD_RECOVERY_VERSION,
        .name = fl->name.value,
    };
    a->routes = routes_new(&rc);
    return a->routes ? 0 : -ENOMEM;
}

/* The local member's client URLs (--endpoints, else the default). */
static const char *const *local_endpoints(const struct flags *fl, size_t *n)
{
    *n = fl->endpoints.n ? fl->endpoints.n : ARRAY_SIZE(default_endpoints);
    return fl->endpoints.n ? (const char *const *)fl->endpoints.items : default_endpoints;
}

static int setup_snapshots(struct agent *a, char *err, size_t err_len)
{
    const struct flags *fl = a->fl;
    struct snapshot_config snc = {
        .tls = a->client_tls,
        .snapshot_dir = fl->snapshot_dir.value,
        .spool_dir = fl->spool_dir.value,
        .data_dir = fl->data_dir.value,
        .concurrency = (unsigned)fl->snapshot_concurrency,
        .allow_insecure = fl->allow_insecure_snapshot,
        .no_io_uring = !fl->io_uring,
        .interval_ms = fl->snapshot_interval_ms,
        .keep = (unsigned)fl->snapshot_keep,
    };
    snc.endpoints = local_endpoints(fl, &snc.n_endpoints);
    a->snap = snapshot_new(&snc, err, err_len);
    if (!a->snap)
        return -EINVAL;
    return snapshot_add_routes(a->snap, a->routes);
}

/* --backup-*: keys, policy, the module and its routes (after the snapshot module). */
static int setup_backup(struct agent *a, char *err, size_t err_len)
{
    const struct flags *fl = a->fl;
    static struct age_recipient rcp[AGE_MAX_RECIPIENTS];
    size_t n = 0;
    if (!fl->backup_url.value[0])
        return 0;
    const char *comp = fl->backup_compress.value;
    if (strcmp(comp, "zstd") != 0 && strcmp(comp, "none") != 0) {
        (void)snprintf(err, err_len, "--backup-compress: zstd or none, not \"%.32s\"", comp);
        return -EINVAL;
    }
    for (size_t i = 0; i < fl->backup_recipients.n; i++) {
        const char *k = fl->backup_recipients.items[i];
        if (n == AGE_MAX_RECIPIENTS || age_recipient_parse(k, strlen(k), &rcp[n]) < 0) {
            (void)snprintf(err, err_len, "--backup-recipient %zu: not an age X25519 recipient",
                           i + 1);
            return -EINVAL;
        }
        n++;
    }
    if (fl->backup_recipients_file.value[0]) {
        size_t m = 0;
        char why[256];
        if (age_recipients_load(fl->backup_recipients_file.value, rcp + n, AGE_MAX_RECIPIENTS - n,
                                &m, why, sizeof(why)) < 0) {
            (void)snprintf(err, err_len, "--backup-recipients-file %.200s: %s",
                           fl->backup_recipients_file.value, why);
            return -EINVAL;
        }
        n += m;
    }
    struct backup_config bc = {
        .url = fl->backup_url.value,
        .interval_ms = fl->backup_interval_ms,
        .verify_interval_ms = fl->backup_verify_interval_ms,
        .keep = fl->backup_keep.value,
        .compress = strcmp(comp, "zstd") == 0,
        .zstd_level = (int)fl->backup_zstd_level,
        .recipients = rcp,
        .n_recipients = n,
        .spool_dir = fl->spool_dir.value,
        .snap = snapshot_ctx(a->snap),
        .cache = a->cache,
    };
    a->backup = backup_new(&bc, err, err_len);
    if (!a->backup)
        return -EINVAL;
    int rc = backup_add_routes(a->backup, a->routes);
    if (rc < 0)
        (void)snprintf(err, err_len, "cannot add routes: %s", strerror(-rc));
    return rc;
}

static int setup_maint(struct agent *a)
{
    const struct flags *fl = a->fl;
    int64_t min_free = 0;
    (void)maint_plan_parse_size(fl->defrag_min_free.value, &min_free); /* checked in parse_flags */
    if (fl->divergent_marker.value[0])
        snprintf(a->divergent_marker, sizeof a->divergent_marker, "%s", fl->divergent_marker.value);
    else if (fl->data_dir.value[0] && divergent_path(fl->data_dir.value, a->divergent_marker,
                                                     sizeof a->divergent_marker) != 0)
        a->divergent_marker[0] = '\0';
    struct maint_config mc = {
        .cache = a->cache,
        .tls = a->client_tls,
        .cluster_endpoints = (const char *const *)fl->cluster_endpoints.items,
        .n_cluster_endpoints = fl->cluster_endpoints.n,
        .defrag_interval_ms = fl->defrag_interval_ms,
        .defrag_settle_ms = fl->defrag_settle_ms,
        .defrag_timeout_ms = fl->defrag_timeout_ms,
        .hashkv_interval_ms = fl->hashkv_interval_ms,
        .divergent_marker = a->divergent_marker[0] ? a->divergent_marker : NULL,
        .peer_agents = (const char *const *)fl->peer_agents.items,
        .n_peer_agents = fl->peer_agents.n,
        .plan = {.min_free = min_free,
                 .threshold_pct = (unsigned)fl->defrag_threshold,
                 .nospace_resume_pct = (unsigned)fl->nospace_resume,
                 .nospace_compact = fl->nospace_compact},
    };
    /* the leader's agent listens like ours: HTTPS port if we have one, else the plain one */
    static char port[8];
    bool tls = fl->tls_listen.value[0] != '\0';
    if (maint_peer_listen_port(tls ? fl->tls_listen.value : fl->listen.value, port, sizeof(port)) ==
        0) {
        mc.agent_scheme = tls ? "https" : "http";
        mc.agent_port = port;
    }
    a->maint = maint_new(&mc);
    if (!a->maint)
        return -ENOMEM;
    int rc = maint_add_routes(a->maint, a->routes);
    if (rc < 0)
        return rc;
    return routes_add_metrics(a->routes, &(struct metrics_source){maint_metrics, a->maint});
}

static int setup_server(struct agent *a, char *err, size_t err_len)
{
    struct server_config sc = {
        .listen = opt_str(&a->fl->listen),
        .tls_listen = opt_str(&a->fl->tls_listen),
        .tls = a->server_tls,
        .handler = routes_handle,
        .handler_arg = a->routes,
        .on_done = routes_on_done,
        .done_arg = a->routes,
    };
    a->srv = server_new(&sc, err, err_len);
    return a->srv ? 0 : -EINVAL;
}

/* Probe threads, then the signal handlers. The threads inherit a mask without SIGTERM/SIGINT:
 * the handler runs on this thread only, never concurrently with the teardown on another. */
static int start_probes(struct agent *a, char *err, size_t err_len)
{
    const struct flags *fl = a->fl;
    struct probe_config pc = {
        .cluster_endpoints = (const char *const *)fl->cluster_endpoints.items,
        .n_cluster_endpoints = fl->cluster_endpoints.n,
        .tls = a->client_tls,
        .interval_ms = fl->probe_interval_ms,
    };
    pc.endpoints = local_endpoints(fl, &pc.n_endpoints);
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    a->probe = probe_start(&pc, a->cache, err, err_len);
    g_server = a->srv;
    int rc = setup_signals();
    pthread_sigmask(SIG_UNBLOCK, &stop_sigs, NULL);
    if (!a->probe)
        return -EINVAL;
    if (rc < 0) {
        (void)snprintf(err, err_len, "sigaction: %s", strerror(-rc));
        return rc;
    }
    rc = maint_start(a->maint);
    if (rc < 0)
        (void)snprintf(err, err_len, "maintenance thread: %s", strerror(-rc));
    return rc;
}

static void log_serving(const struct agent *a)
{
    size_t n;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "version", ETCD_RECOVERY_VERSION);
    cJSON_AddStringToObject(f, "endpoint", local_endpoints(a->fl, &n)[0]);
    if (a->fl->listen.value[0])
        cJSON_AddNumberToObject(f, "http_port", server_port(a->srv, false));
    if (a->fl->tls_listen.value[0])
        cJSON_AddNumberToObject(f, "https_port", server_port(a->srv, true));
    cJSON_AddNumberToObject(f, "probe_interval_ms", (double)a->fl->probe_interval_ms);
    log_event(LOG_INFO, "etcd-agent serving", f);
}

/* Set everything up in order; on failure logs why and returns negative. */
static int agent_setup(struct agent *a)
{
    char err[512];
    if (setup_tls(a, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "%s TLS: %s", a->client_tls ? "server" : "etcd client", err);
        return -EINVAL;
    }
    if (setup_routes(a) < 0) {
        log_msg(LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    if (setup_snapshots(a, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "snapshots: %s", err);
        return -EINVAL;
    }
    if (setup_backup(a, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "backups: %s", err);
        return -EINVAL;
    }
    if (setup_maint(a) < 0) {
        log_msg(LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    if (setup_server(a, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "server: %s", err);
        return -EINVAL;
    }
    if (start_probes(a, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        return -EINVAL;
    }
    return 0;
}

/* The event loop until SIGTERM/SIGINT; returns the exit code. */
static int agent_run(struct agent *a)
{
    log_serving(a);
    int rc = server_run(a->srv);
    if (rc < 0) {
        log_msg(LOG_ERROR, "server: event loop failed: %s", strerror(-rc));
        return AGENT_EXIT_FAILED;
    }
    log_msg(LOG_INFO, "etcd-agent stopped");
    return AGENT_EXIT_OK;
}

/* The server is done (or never ran) before anything it calls into goes away. */
static void agent_teardown(struct agent *a)
{
    if (a->srv) {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL); /* no handler may touch g_server any more */
        g_server = NULL;
    }
    /* before the probes: it reads the cache they fill; one stuck in a long call (a Defragment)
     * keeps what it uses (cache, client TLS context, cluster endpoints) alive until the process
     * exits */
    a->keep_shared = a->maint && !maint_free(a->maint);
    probe_stop(a->probe);
    server_free(a->srv);
    backup_free(a->backup); /* its schedule thread uses the snapshot module */
    snapshot_free(a->snap);
    routes_free(a->routes);
    tls_ctx_free(a->server_tls);
    if (a->keep_shared)
        return;
    cache_free(a->cache);
    tls_ctx_free(a->client_tls);
}

int main(int argc, char **argv)
{
    struct agent a = {.fl = &g_flags};
    log_set_program(AGENT_PROG);
    int code = parse_flags(argc, argv);
    if (code < 0)
        code = agent_setup(&a) == 0 ? agent_run(&a) : AGENT_EXIT_FAILED;
    agent_teardown(&a);
    config_list_free(&g_flags.endpoints);
    config_list_free(&g_flags.backup_recipients);
    if (!a.keep_shared) { /* the maintenance thread borrows them too */
        config_list_free(&g_flags.cluster_endpoints);
        config_list_free(&g_flags.peer_agents);
    }
    return code;
}
