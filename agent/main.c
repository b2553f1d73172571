/* main.c - etcd-agent: flags, wiring of cache, probes, routes and the HTTP server, signals.
 *
 * The sidecar's parts live elsewhere: probe.c asks etcd, routes.c answers HTTP from the cache,
 * server.c owns sockets and protocols. SIGTERM/SIGINT stop the server gracefully (in-flight
 * responses get AGENT_STOP_GRACE_MS), then the probes; the exit code is 0. */
#include <errno.h>
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
#include "log.h"
#include "maint.h"
#include "probe.h"
#include "routes.h"
#include "server.h"
#include "snapshot.h"
#include "tls.h"

#ifndef ETCD_RECOVERY_VERSION
#define ETCD_RECOVERY_VERSION "0.0.0"
#endif

#define AGENT_DEFAULT_ENDPOINT "https://127.0.0.1:2379"
#define AGENT_DEFAULT_LISTEN "127.0.0.1:9980"

static struct server *g_server; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    /* server_stop_graceful is async-signal-safe (an eventfd write). */
    if (g_server)
        server_stop_graceful(g_server, AGENT_STOP_GRACE_MS);
}

struct flags {
    struct config_list endpoints, cluster_endpoints;
    struct config_string cacert, cert, key;
    struct config_string listen, tls_listen, tls_cert, tls_key, tls_client_ca;
    uint64_t probe_interval_ms, livez_intervals;
    struct config_string name, data_dir;
    /* snapshots (snapshot.c) */
    struct config_string snapshot_dir, spool_dir;
    uint64_t snapshot_concurrency, snapshot_interval_ms, snapshot_keep;
    bool allow_insecure_snapshot, io_uring;
    /* day-2 maintenance (maint.c) */
    uint64_t defrag_interval_ms, defrag_settle_ms, defrag_timeout_ms, hashkv_interval_ms;
    uint64_t defrag_threshold, nospace_resume;
    struct config_string defrag_min_free;
    bool nospace_compact;
};

static const char summary[] =
    "etcd sidecar: cached health probes (/livez /readyz /healthz), the cluster table "
    "(/members), /status and Prometheus /metrics; promotes its member when it is a learner.";

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

int main(int argc, char **argv)
{
    static struct flags fl;
    fl.probe_interval_ms = 1000;
    fl.livez_intervals = 30;
    fl.snapshot_concurrency = 1;
    fl.io_uring = true;
    fl.defrag_interval_ms = 10 * 60 * 1000;
    fl.defrag_settle_ms = 30 * 1000;
    fl.defrag_timeout_ms = 10 * 60 * 1000;
    fl.hashkv_interval_ms = 60 * 60 * 1000;
    fl.defrag_threshold = 45;
    fl.nospace_resume = 80;
    (void)snprintf(fl.defrag_min_free.value, sizeof(fl.defrag_min_free.value), "100MB");
    (void)snprintf(fl.listen.value, sizeof(fl.listen.value), "%s", AGENT_DEFAULT_LISTEN);

    const struct config_option opts[] = {
        {"endpoints",
         {"ETCDCTL_ENDPOINTS"},
         CONFIG_LIST,
         &fl.endpoints,
         0,
         0,
         "the local etcd member's client URLs; unset: " AGENT_DEFAULT_ENDPOINT,
         "URLS"},
        {"cluster-endpoints",
         {"ETCD_AGENT_CLUSTER_ENDPOINTS"},
         CONFIG_LIST,
         &fl.cluster_endpoints,
         0,
         0,
         "client URLs for the cluster table and promotion; unset: MemberList's client URLs "
         "(set it when the member starts as a learner)",
         "URLS"},
        {"cacert",
         {"ETCDCTL_CACERT"},
         CONFIG_STRING,
         &fl.cacert,
         0,
         0,
         "CA bundle that signed etcd's certificates (required)",
         "FILE"},
        {"cert",
         {"ETCDCTL_CERT"},
         CONFIG_STRING,
         &fl.cert,
         0,
         0,
         "client certificate for etcd",
         "FILE"},
        {"key", {"ETCDCTL_KEY"}, CONFIG_STRING, &fl.key, 0, 0, "client key for etcd", "FILE"},
        {"listen",
         {"ETCD_AGENT_LISTEN"},
         CONFIG_STRING,
         &fl.listen,
         0,
         0,
         "plain HTTP listener (HTTP/1.1 and h2c) for probes and metrics",
         "ADDR:PORT"},
        {"tls-listen",
         {"ETCD_AGENT_TLS_LISTEN"},
         CONFIG_STRING,
         &fl.tls_listen,
         0,
         0,
         "HTTPS listener (h2 via ALPN); needs --tls-cert and --tls-key",
         "ADDR:PORT"},
        {"tls-cert",
         {"ETCD_AGENT_TLS_CERT"},
         CONFIG_STRING,
         &fl.tls_cert,
         0,
         0,
         "server certificate for --tls-listen",
         "FILE"},
        {"tls-key",
         {"ETCD_AGENT_TLS_KEY"},
         CONFIG_STRING,
         &fl.tls_key,
         0,
         0,
         "server key for --tls-listen",
         "FILE"},
        {"tls-client-ca",
         {"ETCD_AGENT_TLS_CLIENT_CA"},
         CONFIG_STRING,
         &fl.tls_client_ca,
         0,
         0,
         "require client certificates signed by this CA on --tls-listen",
         "FILE"},
        {"probe-interval",
         {"ETCD_AGENT_PROBE_INTERVAL"},
         CONFIG_DURATION,
         &fl.probe_interval_ms,
         AGENT_MIN_INTERVAL_MS,
         AGENT_MAX_INTERVAL_MS,
         "how often the local member is probed",
         "DURATION"},
        {"livez-intervals",
         {"ETCD_AGENT_LIVEZ_INTERVALS"},
         CONFIG_UINT,
         &fl.livez_intervals,
         1,
         AGENT_MAX_LIVEZ_INTERVALS,
         "/livez fails after this many probe intervals without an answer",
         "N"},
        {"name", {"ETCD_NAME"}, CONFIG_STRING, &fl.name, 0, 0, "the member's name (shown)", "NAME"},
        {"data-dir",
         {"ETCD_DATA_DIR"},
         CONFIG_STRING,
         &fl.data_dir,
         0,
         0,
         "the member's data dir (snapshots from disk; the divergent marker beside it)",
         "DIR"},
        {"snapshot-dir",
         {"ETCD_AGENT_SNAPSHOT_DIR"},
         CONFIG_STRING,
         &fl.snapshot_dir,
         0,
         0,
         "keep snapshots here: POST /snapshots, GET /snapshots[/NAME], schedule",
         "DIR"},
        {"spool-dir",
         {"ETCD_AGENT_SPOOL_DIR"},
         CONFIG_STRING,
         &fl.spool_dir,
         0,
         0,
         "where a snapshot spills when its client is slow (default: --snapshot-dir, else /tmp)",
         "DIR"},
        {"snapshot-concurrency",
         {"ETCD_AGENT_SNAPSHOT_CONCURRENCY"},
         CONFIG_UINT,
         &fl.snapshot_concurrency,
         1,
         SNAPSHOT_MAX_CONCURRENCY,
         "etcd snapshots at once; more requests get 429",
         "N"},
        {"snapshot-interval",
         {"ETCD_AGENT_SNAPSHOT_INTERVAL"},
         CONFIG_DURATION,
         &fl.snapshot_interval_ms,
         0,
         UINT64_C(7) * 24 * 3600 * 1000,
         "take a snapshot into --snapshot-dir this often (0: never)",
         "DURATION"},
        {"snapshot-keep",
         {"ETCD_AGENT_SNAPSHOT_KEEP"},
         CONFIG_UINT,
         &fl.snapshot_keep,
         0,
         SNAPSHOT_MAX_KEEP,
         "keep the newest N saved snapshots (0: all)",
         "N"},
        {"allow-insecure-snapshot",
         {"ETCD_AGENT_ALLOW_INSECURE_SNAPSHOT"},
         CONFIG_BOOL,
         &fl.allow_insecure_snapshot,
         0,
         0,
         "serve snapshot routes on the plain listener too (they hold every secret)",
         NULL},
        {"io-uring",
         {"ETCD_AGENT_IO_URING"},
         CONFIG_BOOL,
         &fl.io_uring,
         0,
         0,
         "file I/O through io_uring (--no-io-uring: pread/pwrite)",
         NULL},
        /* ---- day-2 maintenance (maint.c, docs/maintenance.md) ---- */
        {"defrag-interval",
         {"ETCD_AGENT_DEFRAG_INTERVAL"},
         CONFIG_DURATION,
         &fl.defrag_interval_ms,
         0,
         AGENT_MAX_MAINT_MS,
         "the leader's agent looks for members due for a defrag this often (0: never)",
         "DURATION"},
        {"defrag-settle",
         {"ETCD_AGENT_DEFRAG_SETTLE"},
         CONFIG_DURATION,
         &fl.defrag_settle_ms,
         0,
         AGENT_MAX_MAINT_MS,
         "pause after each maintenance step (defrag, leader move)",
         "DURATION"},
        {"defrag-timeout",
         {"ETCD_AGENT_DEFRAG_TIMEOUT"},
         CONFIG_DURATION,
         &fl.defrag_timeout_ms,
         1000,
         AGENT_MAX_MAINT_MS,
         "deadline of one Defragment; /livez stays 200 this long during one",
         "DURATION"},
        {"defrag-min-free",
         {"ETCD_AGENT_DEFRAG_MIN_FREE"},
         CONFIG_STRING,
         &fl.defrag_min_free,
         0,
         0,
         "a member is due when at least this much of its db is free (bytes, 100MB, 1GiB)",
         "SIZE"},
        {"defrag-threshold",
         {"ETCD_AGENT_DEFRAG_THRESHOLD"},
         CONFIG_UINT,
         &fl.defrag_threshold,
         0,
         100,
         "... and at least this percentage of its db is free",
         "PERCENT"},
        {"hashkv-interval",
         {"ETCD_AGENT_HASHKV_INTERVAL"},
         CONFIG_DURATION,
         &fl.hashkv_interval_ms,
         0,
         AGENT_MAX_MAINT_MS,
         "compare every member's HashKV this often (0: never)",
         "DURATION"},
        {"nospace-resume",
         {"ETCD_AGENT_NOSPACE_RESUME"},
         CONFIG_UINT,
         &fl.nospace_resume,
         1,
         100,
         "disarm NOSPACE when every member's db is below this percentage of its quota",
         "PERCENT"},
        {"nospace-compact",
         {"ETCD_AGENT_NOSPACE_COMPACT"},
         CONFIG_BOOL,
         &fl.nospace_compact,
         0,
         0,
         "under NOSPACE, compact to the current revision before defragmenting",
         NULL},
    };
    const size_t n_opts = ARRAY_SIZE(opts);
    const char *prog = "etcd-agent";
    int exit_code = 1;
    struct tls_ctx *client_tls = NULL, *server_tls = NULL;
    struct cache *cache = NULL;
    struct routes *routes = NULL;
    struct snapshot *snap = NULL;
    struct probe *probe = NULL;
    struct maint *maint = NULL;
    struct server *srv = NULL;
    char err[512];

    log_set_program(prog);
    int rc = config_parse(opts, n_opts, argc, argv, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        config_usage(stdout, prog, summary, opts, n_opts);
        exit_code = 0;
        goto out;
    }
    if (rc == CONFIG_VERSION) {
        printf("%s %s\n", prog, ETCD_RECOVERY_VERSION);
        exit_code = 0;
        goto out;
    }
    if (rc == CONFIG_OK && !fl.cacert.value[0])
        (void)snprintf(err, sizeof(err), "--cacert (or ETCDCTL_CACERT) is required"), rc = -1;
    bool have_cert = fl.cert.value[0] != '\0', have_key = fl.key.value[0] != '\0';
    if (rc == CONFIG_OK && have_cert != have_key)
        (void)snprintf(err, sizeof(err), "--cert and --key go together"), rc = -1;
    if (rc == CONFIG_OK && fl.tls_listen.value[0] &&
        (!fl.tls_cert.value[0] || !fl.tls_key.value[0]))
        (void)snprintf(err, sizeof(err), "--tls-listen needs --tls-cert and --tls-key"), rc = -1;
    int64_t min_free = 0;
    if (rc == CONFIG_OK && maint_plan_parse_size(fl.defrag_min_free.value, &min_free) < 0)
        (void)snprintf(err, sizeof(err), "--defrag-min-free: not a size: %.64s",
                       fl.defrag_min_free.value),
            rc = -1;
    if (rc == CONFIG_OK && !fl.listen.value[0] && !fl.tls_listen.value[0])
        (void)snprintf(err, sizeof(err), "one of --listen and --tls-listen is required"), rc = -1;
    if (rc != CONFIG_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        config_usage(stderr, prog, summary, opts, n_opts);
        exit_code = 2;
        goto out;
    }

    struct tls_files cf = {.ca_file = fl.cacert.value,
                           .cert_file = fl.cert.value[0] ? fl.cert.value : NULL,
                           .key_file = fl.key.value[0] ? fl.key.value : NULL};
    client_tls = tls_client_new(&cf, err, sizeof(err));
    if (!client_tls) {
        log_msg(LOG_ERROR, "etcd client TLS: %s", err);
        goto out;
    }
    if (fl.tls_listen.value[0]) {
        struct tls_files sf = {.ca_file = fl.tls_client_ca.value[0] ? fl.tls_client_ca.value : NULL,
                               .cert_file = fl.tls_cert.value,
                               .key_file = fl.tls_key.value};
        server_tls = tls_server_new(&sf, err, sizeof(err));
        if (!server_tls) {
            log_msg(LOG_ERROR, "server TLS: %s", err);
            goto out;
        }
    }

    cache = cache_new(clock_mono_ms());
    int timeout = probe_call_timeout_ms(fl.probe_interval_ms);
    struct routes_config rc_cfg = {
        .cache = cache,
        .health = {.interval_ms = fl.probe_interval_ms,
                   .livez_intervals = fl.livez_intervals,
                   /* A round takes at most three call timeouts; allow two late rounds. */
                   .stale_ms = 2 * fl.probe_interval_ms + 3 * (uint64_t)timeout},
        .version = ETCD_RECOVERY_VERSION,
        .name = fl.name.value,
    };
    routes = cache ? routes_new(&rc_cfg) : NULL;
    if (!routes) {
        log_msg(LOG_ERROR, "out of memory");
        goto out;
    }

    struct maint_config mc = {
        .cache = cache,
        .tls = client_tls,
        .cluster_endpoints = (const char *const *)fl.cluster_endpoints.items,
        .n_cluster_endpoints = fl.cluster_endpoints.n,
        .defrag_interval_ms = fl.defrag_interval_ms,
        .defrag_settle_ms = fl.defrag_settle_ms,
        .defrag_timeout_ms = fl.defrag_timeout_ms,
        .hashkv_interval_ms = fl.hashkv_interval_ms,
        .data_dir = fl.data_dir.value[0] ? fl.data_dir.value : NULL,
        .plan = {.min_free = min_free,
                 .threshold_pct = (unsigned)fl.defrag_threshold,
                 .nospace_resume_pct = (unsigned)fl.nospace_resume,
                 .nospace_compact = fl.nospace_compact},
    };
    maint = maint_new(&mc);
    if (!maint || routes_add_metrics(routes, &(struct metrics_source){maint_metrics, maint}) < 0) {
        log_msg(LOG_ERROR, "out of memory");
        goto out;
    }

    static const char *const snap_default_eps[] = {AGENT_DEFAULT_ENDPOINT};
    struct snapshot_config snc = {
        .endpoints = fl.endpoints.n ? (const char *const *)fl.endpoints.items : snap_default_eps,
        .n_endpoints = fl.endpoints.n ? fl.endpoints.n : 1,
        .tls = client_tls,
        .snapshot_dir = fl.snapshot_dir.value,
        .spool_dir = fl.spool_dir.value,
        .data_dir = fl.data_dir.value,
        .concurrency = (unsigned)fl.snapshot_concurrency,
        .allow_insecure = fl.allow_insecure_snapshot,
        .no_io_uring = !fl.io_uring,
        .interval_ms = fl.snapshot_interval_ms,
        .keep = (unsigned)fl.snapshot_keep,
    };
    snap = snapshot_new(&snc, err, sizeof(err));
    if (!snap || snapshot_add_routes(snap, routes) < 0) {
        log_msg(LOG_ERROR, "snapshots: %s", err);
        goto out;
    }

    struct server_config sc = {
        .listen = fl.listen.value[0] ? fl.listen.value : NULL,
        .tls_listen = fl.tls_listen.value[0] ? fl.tls_listen.value : NULL,
        .tls = server_tls,
        .handler = routes_handle,
        .handler_arg = routes,
        .on_done = routes_on_done,
        .done_arg = routes,
    };
    srv = server_new(&sc, err, sizeof(err));
    if (!srv) {
        log_msg(LOG_ERROR, "server: %s", err);
        goto out;
    }

    static const char *const default_eps[] = {AGENT_DEFAULT_ENDPOINT};
    struct probe_config pc = {
        .endpoints = fl.endpoints.n ? (const char *const *)fl.endpoints.items : default_eps,
        .n_endpoints = fl.endpoints.n ? fl.endpoints.n : 1,
        .cluster_endpoints = (const char *const *)fl.cluster_endpoints.items,
        .n_cluster_endpoints = fl.cluster_endpoints.n,
        .tls = client_tls,
        .interval_ms = fl.probe_interval_ms,
    };
    /* The probe threads inherit a mask without SIGTERM/SIGINT: the handler runs on this
     * thread only, never concurrently with the teardown on another. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    probe = probe_start(&pc, cache, err, sizeof(err));
    g_server = srv;
    rc = setup_signals();
    pthread_sigmask(SIG_UNBLOCK, &stop_sigs, NULL);
    if (!probe) {
        log_msg(LOG_ERROR, "%s", err);
        goto out;
    }
    rc = maint_start(maint);
    if (rc < 0) {
        log_msg(LOG_ERROR, "maintenance thread: %s", strerror(-rc));
        goto out;
    }
    if (rc < 0) {
        log_msg(LOG_ERROR, "sigaction: %s", strerror(-rc));
        goto out;
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "version", ETCD_RECOVERY_VERSION);
    cJSON_AddStringToObject(f, "endpoint", pc.endpoints[0]);
    if (sc.listen)
        cJSON_AddNumberToObject(f, "http_port", server_port(srv, false));
    if (sc.tls_listen)
        cJSON_AddNumberToObject(f, "https_port", server_port(srv, true));
    cJSON_AddNumberToObject(f, "probe_interval_ms", (double)fl.probe_interval_ms);
    log_event(LOG_INFO, "etcd-agent serving", f);

    rc = server_run(srv);
    if (rc < 0) {
        log_msg(LOG_ERROR, "server: event loop failed: %s", strerror(-rc));
        goto out;
    }
    log_msg(LOG_INFO, "etcd-agent stopped");
    exit_code = 0;
out:
    /* The server is done (or never ran) before anything it calls into goes away. */
    if (srv) {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL); /* no handler may touch g_server any more */
        g_server = NULL;
    }
    /* before the probes: it reads the cache they fill; one stuck in a long call (a Defragment)
     * keeps what it uses (cache, client TLS context, cluster endpoints) alive until the process
     * exits */
    bool keep_cache = !maint_free(maint);
    probe_stop(probe);
    server_free(srv);
    snapshot_free(snap);
    routes_free(routes);
    if (!keep_cache)
        cache_free(cache);
    tls_ctx_free(server_tls);
    if (!keep_cache)
        tls_ctx_free(client_tls);
    config_list_free(&fl.endpoints);
    if (!keep_cache) /* the maintenance thread borrows it too */
        config_list_free(&fl.cluster_endpoints);
    return exit_code;
}
