/* main.c - reset-member: the init container that decides how etcd starts (issue 3).
 *
 * Flags and env (config.c) -> observe (observe.c) -> decide (decide.c) -> act (act.c) ->
 * one JSON result line on stdout and one JSON log line on stderr. Exit 0: etcd may start;
 * 3: refuse (nothing touched); 2: usage; 1: acting failed part way (rerun continues). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "act.h"
#include "array.h"
#include "clock.h"
#include "config.h"
#include "decide.h"
#include "divergent.h"
#include "exec.h"
#include "log.h"
#include "observe.h"
#include "restore.h"
#include "tls.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_REFUSE 3

#define DEFAULT_STATE_FILE "/etc/etcd/clusterstate/state"
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CLIENT_PORT "2379"   /* etcd's client port, for endpoints derived from peers */
#define DEFAULT_TOKEN "etcd-cluster" /* etcd's default --initial-cluster-token */
#define DEFAULT_RESTORE_TIMEOUT_MS (30 * 60 * 1000)
#define DEFAULT_KEEP_BACKUPS 1

static const char summary[] =
    "Decide how this etcd member starts: bootstrap, join, readd, keep, reset or refuse.\n"
    "Prints one JSON line {action,state,member_id,reason}; writes the state file.\n"
    "Exit 0: etcd may start; 3: refused (nothing touched); 2: usage; 1: acting failed.\n"
    "Without --endpoints, the other members' client URLs are derived from --initial-cluster\n"
    "(their peer URL's host with port " DEFAULT_CLIENT_PORT ").\n"
    "With --restore-from, the --restore-member restores the snapshot as a one-member cluster and\n"
    "every other member rejoins it with MemberAdd (see README, Runbook).\n"
#ifdef RESET_MEMBER_TEST_HOOKS
    "Test hook (this test build only): " ACT_CRASH_ENV "=remove|add|move|env|state|prune\n"
    "(restore: fetch|restore|restore-move|swap|marker|env|state; peers: peer-marker) SIGKILLs\n"
    "the process right after that step.\n"
#endif
    "reset-member exec [--env-file F] -- /path/to/etcd: the etcd container's start command\n"
    "(see reset-member exec --help).";

struct opts {
    struct config_string name, data_dir, peer_url, initial_cluster, cacert, cert, key, state_file,
        env_file, restore_from, restore_member, token, restore_identity, divergent_marker;
    struct config_list endpoints;
    bool learner, dry_run;
    uint64_t keep_backups, timeout_ms, restore_timeout_ms, restore_bump_revision;
};

/* The options with their defaults; the table points into it. */
static struct opts g_opts = {
    .state_file = {.value = DEFAULT_STATE_FILE},
    .token = {.value = DEFAULT_TOKEN},
    .learner = true,
    .keep_backups = DEFAULT_KEEP_BACKUPS,
    .timeout_ms = DEFAULT_TIMEOUT_MS,
    .restore_timeout_ms = DEFAULT_RESTORE_TIMEOUT_MS,
    .restore_bump_revision = RESTORE_DEFAULT_BUMP_REVISION,
};

static const struct config_option g_table[] = {
    {.name = "name",
     .env = {"ETCD_NAME"},
     .type = CONFIG_STRING,
     .target = &g_opts.name,
     .help = "this member's name",
     .arg_name = "NAME"},
    {.name = "data-dir",
     .env = {"ETCD_DATA_DIR"},
     .type = CONFIG_STRING,
     .target = &g_opts.data_dir,
     .help = "etcd data dir",
     .arg_name = "DIR"},
    {.name = "peer-url",
     .env = {"ETCD_INITIAL_ADVERTISE_PEER_URLS"},
     .type = CONFIG_STRING,
     .target = &g_opts.peer_url,
     .help = "this member's peer URL, exactly as advertised",
     .arg_name = "URL"},
    {.name = "initial-cluster",
     .env = {"ETCD_INITIAL_CLUSTER"},
     .type = CONFIG_STRING,
     .target = &g_opts.initial_cluster,
     .help = "name=peerURL,... (bootstrap, env file, derived endpoints)",
     .arg_name = "LIST"},
    {.name = "endpoints",
     .env = {"ETCDCTL_ENDPOINTS"},
     .type = CONFIG_LIST,
     .target = &g_opts.endpoints,
     .help = "client URLs to ask for the member list",
     .arg_name = "URLS"},
    {.name = "cacert",
     .env = {"ETCDCTL_CACERT"},
     .type = CONFIG_STRING,
     .target = &g_opts.cacert,
     .help = "CA bundle",
     .arg_name = "FILE"},
    {.name = "cert",
     .env = {"ETCDCTL_CERT"},
     .type = CONFIG_STRING,
     .target = &g_opts.cert,
     .help = "client certificate",
     .arg_name = "FILE"},
    {.name = "key",
     .env = {"ETCDCTL_KEY"},
     .type = CONFIG_STRING,
     .target = &g_opts.key,
     .help = "client key",
     .arg_name = "FILE"},
    {.name = "state-file",
     .env = {NULL},
     .type = CONFIG_STRING,
     .target = &g_opts.state_file,
     .help = "where to write new|existing",
     .arg_name = "FILE"},
    {.name = "env-file",
     .env = {NULL},
     .type = CONFIG_STRING,
     .target = &g_opts.env_file,
     .help = "also write ETCD_INITIAL_CLUSTER_STATE and ETCD_INITIAL_CLUSTER here",
     .arg_name = "FILE"},
    {.name = "learner",
     .env = {NULL},
     .type = CONFIG_BOOL,
     .target = &g_opts.learner,
     .help = "add this member as a learner (--no-learner: as a voter)"},
    {.name = "keep-backups",
     .env = {NULL},
     .type = CONFIG_UINT,
     .target = &g_opts.keep_backups,
     .max = RM_MAX_KEEP_BACKUPS,
     .help = "moved-aside data dirs to keep",
     .arg_name = "N"},
    {.name = "timeout",
     .env = {NULL},
     .type = CONFIG_DURATION,
     .target = &g_opts.timeout_ms,
     .min = RM_MIN_TIMEOUT_MS,
     .max = RM_MAX_TIMEOUT_MS,
     .help = "budget for observing the cluster; deadline of each membership call",
     .arg_name = "DURATION"},
    {.name = "dry-run",
     .env = {NULL},
     .type = CONFIG_BOOL,
     .target = &g_opts.dry_run,
     .help = "decide and print, change nothing"},
    {.name = "restore-from",
     .env = {"ETCD_RESTORE_FROM"},
     .type = CONFIG_STRING,
     .target = &g_opts.restore_from,
     .help =
         "quorum-loss restore: snapshot file, http(s) URL, or backup store: s3://BUCKET/PREFIX/ "
         "or file:///DIR/ (the newest complete backup) or the URL of one object (same value "
         "on every member)",
     .arg_name = "PATH|URL"},
    {.name = "restore-identity",
     .env = {"ETCD_RESTORE_IDENTITY_FILE"},
     .type = CONFIG_STRING,
     .target = &g_opts.restore_identity,
     .help = "age identity file to decrypt a .age backup object (mounted from a Secret)",
     .arg_name = "FILE"},
    {.name = "divergent-marker",
     .env = {"ETCD_DIVERGENT_MARKER"},
     .type = CONFIG_STRING,
     .target = &g_opts.divergent_marker,
     .help = "the agent's divergent marker (default <data-dir>.divergent; on the data volume)",
     .arg_name = "FILE"},
    {.name = "restore-bump-revision",
     .env = {"ETCD_RESTORE_BUMP_REVISION"},
     .type = CONFIG_UINT,
     .target = &g_opts.restore_bump_revision,
     .max = RM_MAX_BUMP_REVISION,
     .help = "restore with --bump-revision N --mark-compacted when the restore tool has them "
             "(etcdutl 3.5+; else a warning), so watchers re-list; 0: off",
     .arg_name = "N"},
    {.name = "restore-member",
     .env = {"ETCD_RESTORE_MEMBER"},
     .type = CONFIG_STRING,
     .target = &g_opts.restore_member,
     .help =
         "the member that restores (default: first name in --initial-cluster); the others rejoin",
     .arg_name = "NAME"},
    {.name = "initial-cluster-token",
     .env = {"ETCD_INITIAL_CLUSTER_TOKEN"},
     .type = CONFIG_STRING,
     .target = &g_opts.token,
     .help = "cluster token; a restore uses <token>-restored-<sha256 prefix>",
     .arg_name = "TOKEN"},
    {.name = "restore-timeout",
     .env = {NULL},
     .type = CONFIG_DURATION,
     .target = &g_opts.restore_timeout_ms,
     .min = RM_MIN_TIMEOUT_MS,
     .max = RM_MAX_RESTORE_TIMEOUT_MS,
     .help = "bound of the snapshot download, and of the restore tool",
     .arg_name = "DURATION"},
};

/* Derive https://<host>:2379 for every --initial-cluster member other than us. */
static int derive_endpoints(const struct opts *o, struct config_list *eps, char *err,
                            size_t err_len)
{
    struct config_list names = {0}, urls = {0};
    char why[256];
    int rc =
        config_parse_initial_cluster_err(o->initial_cluster.value, &names, &urls, why, sizeof(why));

    if (rc != 0) {
        snprintf(err, err_len, "--initial-cluster: %s", why);
        goto out;
    }
    for (size_t i = 0; i < urls.n; i++) {
        const char *u = urls.items[i], *host = strstr(u, "://"), *end;
        char buf[RM_MAX_URL];
        int n;

        if (strcmp(names.items[i], o->name.value) == 0)
            continue;
        host = host ? host + 3 : u;
        if (*host == '[') {
            end = strchr(host, ']');
            end = end ? end + 1 : host + strlen(host);
        } else {
            end = host + strcspn(host, ":/");
        }
        n = snprintf(buf, sizeof(buf), "https://%.*s:%s", (int)(end - host), host,
                     DEFAULT_CLIENT_PORT);
        if (n < 0 || (size_t)n >= sizeof(buf) || eps->n == CONFIG_MAX_LIST) {
            snprintf(err, err_len, "--initial-cluster: entry %s too long or too many", u);
            rc = -EINVAL;
            goto out;
        }
        eps->items[eps->n] = strdup(buf);
        if (!eps->items[eps->n]) {
            rc = -ENOMEM;
            snprintf(err, err_len, "out of memory");
            goto out;
        }
        eps->n++;
    }
    if (eps->n == 0) {
        snprintf(err, err_len, "no --endpoints and no other member in --initial-cluster");
        rc = -EINVAL;
    }
out:
    config_list_free(&names);
    config_list_free(&urls);
    return rc;
}

static int check_required(const struct opts *o, char *err, size_t err_len)
{
    const struct {
        const struct config_string *v;
        const char *flag;
    } req[] = {{&o->name, "--name"},
               {&o->data_dir, "--data-dir"},
               {&o->peer_url, "--peer-url"},
               {&o->cacert, "--cacert"},
               {&o->state_file, "--state-file"}};

    for (size_t i = 0; i < ARRAY_SIZE(req); i++) {
        if (req[i].v->value[0] == '\0') {
            snprintf(err, err_len, "%s is required", req[i].flag);
            return -EINVAL;
        }
    }
    if (strchr(o->peer_url.value, ',')) {
        snprintf(err, err_len, "--peer-url: exactly one peer URL is supported");
        return -EINVAL;
    }
    if ((o->cert.value[0] == '\0') != (o->key.value[0] == '\0')) {
        snprintf(err, err_len, "--cert and --key go together");
        return -EINVAL;
    }
    return 0;
}

static void emit(const struct decide_decision *d, uint64_t member_id, const char *reason,
                 cJSON *log_fields, bool failed)
{
    cJSON *out = cJSON_CreateObject();
    char hex[17] = "";
    char *s;

    if (member_id)
        etcd_id_hex(member_id, hex);
    if (out) {
        cJSON_AddStringToObject(out, "action", decide_action_name(d->action));
        cJSON_AddStringToObject(out, "state", decide_state_name(d->state));
        cJSON_AddStringToObject(out, "member_id", hex);
        cJSON_AddStringToObject(out, "reason", reason);
        s = cJSON_PrintUnformatted(out);
        if (s) {
            printf("%s\n", s);
            fflush(stdout);
            free(s);
        }
        cJSON_Delete(out);
    }
    if (log_fields) {
        cJSON_AddStringToObject(log_fields, "action", decide_action_name(d->action));
        cJSON_AddStringToObject(log_fields, "state", decide_state_name(d->state));
        cJSON_AddStringToObject(log_fields, "member_id", hex);
        cJSON_AddStringToObject(log_fields, "reason", reason);
    }
    log_event(failed || d->action == DECIDE_REFUSE ? LOG_WARN : LOG_INFO, "reset-member",
              log_fields);
}

/* Are we the member that restores? --restore-member, default the first --initial-cluster name. */
static int restore_role(const struct opts *o, bool *restorer, char *err, size_t err_len)
{
    struct config_list names = {0}, urls = {0};
    char why[256];
    int rc = 0;

    if (o->restore_member.value[0] && o->initial_cluster.value[0] == '\0') {
        *restorer = strcmp(o->restore_member.value, o->name.value) == 0;
        return 0;
    }
    rc =
        config_parse_initial_cluster_err(o->initial_cluster.value, &names, &urls, why, sizeof(why));
    if (rc == 0 && o->restore_member.value[0]) {
        /* a name nobody has would leave every member waiting for a restore that never comes */
        bool known = false;
        for (size_t i = 0; i < names.n; i++)
            known = known || strcmp(names.items[i], o->restore_member.value) == 0;
        if (!known) {
            snprintf(err, err_len, "--restore-member %.200s is not in --initial-cluster",
                     o->restore_member.value);
            rc = -EINVAL;
        } else {
            *restorer = strcmp(o->restore_member.value, o->name.value) == 0;
        }
    } else if (rc != 0 || names.n == 0) {
        snprintf(err, err_len, "--restore-from needs --restore-member or --initial-cluster%s%s",
                 rc ? ": " : "", rc ? why : "");
        rc = -EINVAL;
    } else {
        *restorer = strcmp(names.items[0], o->name.value) == 0;
    }
    config_list_free(&names);
    config_list_free(&urls);
    return rc;
}

/* The revision bump in the restore's log object: "bump" (applied|unsupported|off), the
 * "bump_revision" asked for and the "bump_flags" the tool got for it. */
static void add_bump(cJSON *j, uint64_t asked, enum restore_bump b)
{
    cJSON *flags = cJSON_AddArrayToObject(j, "bump_flags");
    char num[24];

    cJSON_AddStringToObject(j, "bump", restore_bump_name(b));
    cJSON_AddNumberToObject(j, "bump_revision", (double)asked);
    if (flags && b == RESTORE_BUMP_APPLIED) {
        snprintf(num, sizeof(num), "%" PRIu64, asked);
        cJSON_AddItemToArray(flags, cJSON_CreateString("--bump-revision"));
        cJSON_AddItemToArray(flags, cJSON_CreateString(num));
        cJSON_AddItemToArray(flags, cJSON_CreateString("--mark-compacted"));
    }
}

/* The restorer's DECIDE_RESTORE (restore.c); returns the exit code. A source that is not a
 * snapshot is a refusal (exit 3, nothing touched). */
static int do_restore(const struct opts *o, const struct decide_decision *d, cJSON *fields,
                      int64_t t0_ns)
{
    struct restore_config rc = {.name = o->name.value,
                                .peer_url = o->peer_url.value,
                                .data_dir = o->data_dir.value,
                                .state_file = o->state_file.value,
                                .env_file = o->env_file.value[0] ? o->env_file.value : NULL,
                                .source = o->restore_from.value,
                                .identity_file =
                                    o->restore_identity.value[0] ? o->restore_identity.value : NULL,
                                .token = o->token.value,
                                .cacert = o->cacert.value,
                                .cert = o->cert.value,
                                .key = o->key.value,
                                .timeout_ms = (int)o->restore_timeout_ms,
                                .bump_revision = o->restore_bump_revision,
                                .now = time(NULL)};
    struct restore_result r;
    struct decide_decision out = *d;
    char err[1024], reason[DECIDE_REASON_MAX + 1100], hex[17];
    int e;

    e = o->dry_run ? restore_check(&rc, &r, err, sizeof(err))
                   : restore_run(&rc, &r, err, sizeof(err));
    if (fields) {
        cJSON *j = cJSON_GetObjectItem(fields, "restore");
        if (!j)
            j = cJSON_AddObjectToObject(fields, "restore");
        if (j) {
            if (r.snap.sha256[0]) {
                cJSON_AddStringToObject(j, "sha256", r.snap.sha256);
                cJSON_AddNumberToObject(j, "bytes", (double)r.snap.size);
            }
            if (r.token[0])
                cJSON_AddStringToObject(j, "token", r.token);
            if (r.cluster_id)
                cJSON_AddStringToObject(j, "cluster_id", etcd_id_hex(r.cluster_id, hex));
            if (r.tool[0]) {
                cJSON_AddStringToObject(j, "tool", r.tool);
                add_bump(j, o->restore_bump_revision, r.bump);
            }
            if (r.object[0]) {
                cJSON_AddStringToObject(j, "object", r.object);
                cJSON_AddStringToObject(j, "object_sha256", r.object_sha256);
            }
            if (r.moved_to[0])
                cJSON_AddStringToObject(j, "moved_to", r.moved_to);
            cJSON_AddNumberToObject(j, "fetch_ms", r.fetch_ms);
            cJSON_AddNumberToObject(j, "validate_ms", r.validate_ms);
            cJSON_AddNumberToObject(j, "restore_ms", r.restore_ms);
        }
        cJSON_AddNumberToObject(fields, "took_ms", (double)(clock_mono_ns() - t0_ns) / 1e6);
    }
    if (e != 0 && r.not_snapshot) {
        out.action = DECIDE_REFUSE;
        out.state = DECIDE_STATE_NONE;
        snprintf(reason, sizeof(reason), "restore refused, nothing touched: %s", err);
        emit(&out, 0, reason, fields, false);
        return EXIT_REFUSE;
    }
    if (e != 0) {
        snprintf(reason, sizeof(reason), "%s; failed at step %s: %s", d->reason,
                 r.failed_step ? r.failed_step : "?", err);
        if (fields)
            cJSON_AddStringToObject(fields, "failed_step", r.failed_step ? r.failed_step : "");
        emit(&out, 0, reason, fields, true);
        return EXIT_FAILED;
    }
    snprintf(reason, sizeof(reason), "%s%s", d->reason,
             o->dry_run ? (restore_is_url(o->restore_from.value) ? " (dry run: URL not fetched)"
                                                                 : " (dry run: snapshot valid)")
                        : "");
    emit(&out, r.member_id, reason, fields, false);
    return EXIT_OK;
}

/* Options, environment and the rules between them into *o (g_opts); *restorer set for
 * --restore-from. Returns -1 to go on, or the exit code (help, version, usage error). */
static int parse_options(int argc, char **argv, struct opts *o, bool *restorer)
{
    char err[512];
    int rc = config_parse(g_table, ARRAY_SIZE(g_table), argc, argv, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        config_usage(stdout, "reset-member", summary, g_table, ARRAY_SIZE(g_table));
        return EXIT_OK;
    }
    if (rc == CONFIG_VERSION) {
        printf("reset-member %s\n", ETCD_RECOVERY_VERSION);
        return EXIT_OK;
    }
    if (rc == CONFIG_OK)
        rc = check_required(o, err, sizeof(err));
    if (rc == CONFIG_OK) {
        /* "/var/lib/data/" must move aside as "/var/lib/data.reset-...", not into itself */
        size_t len = strlen(o->data_dir.value);
        while (len > 1 && o->data_dir.value[len - 1] == '/')
            o->data_dir.value[--len] = '\0';
        if (!o->divergent_marker.value[0] &&
            divergent_path(o->data_dir.value, o->divergent_marker.value,
                           sizeof o->divergent_marker.value) != 0) {
            snprintf(err, sizeof(err), "--data-dir is too long");
            rc = CONFIG_ERROR;
        }
    }
    if (rc == CONFIG_OK && o->restore_from.value[0])
        rc = restore_role(o, restorer, err, sizeof(err));
    if (rc == CONFIG_OK && o->endpoints.n == 0)
        rc = derive_endpoints(o, &o->endpoints, err, sizeof(err));
    if (rc == CONFIG_OK)
        return -1;
    fprintf(stderr, "reset-member: %s\n", err);
    config_usage(stderr, "reset-member", summary, g_table, ARRAY_SIZE(g_table));
    return EXIT_USAGE;
}

/* observe -> decide (-> probe health only if the decision needs it -> decide again).
 * Returns 0, or the exit code when the cluster cannot be observed. */
static int observe_and_decide(const struct opts *o, bool restorer, const struct observe_config *oc,
                              struct observe *obs, struct decide_facts *facts,
                              struct decide_decision *d)
{
    observe_data(oc, obs);
    if (observe_cluster(oc, obs) != 0) {
        fprintf(stderr, "reset-member: %s\n", obs->list_error);
        return EXIT_USAGE;
    }
    observe_facts(obs, o->learner, facts);
    restore_facts(o->data_dir.value, o->restore_from.value, restorer, facts);
    decide(facts, d);
    if (d->needs_health) {
        observe_health(oc, obs);
        observe_facts(obs, o->learner, facts);
        restore_facts(o->data_dir.value, o->restore_from.value, restorer, facts);
        decide(facts, d);
    }
    return 0;
}

/* The fields of the decision's JSON line (observations, summary, restore); NULL when out of
 * memory (the line is then printed without them). */
static cJSON *decision_fields(const struct opts *o, bool restorer, const struct observe *obs,
                              const struct decide_facts *facts)
{
    cJSON *fields = observe_json(obs);
    if (!fields)
        return NULL;
    struct decide_summary s;
    decide_summarize(facts, &s);
    cJSON_AddNumberToObject(fields, "voters", (double)s.voters);
    cJSON_AddNumberToObject(fields, "healthy_voters_other", (double)s.healthy_voters_other);
    if (facts->health_probed)
        cJSON_AddBoolToObject(fields, "quorum", s.quorum);
    cJSON_AddBoolToObject(fields, "dry_run", o->dry_run);
    if (facts->divergent_marker) {
        cJSON *dv = cJSON_GetObjectItem(cJSON_GetObjectItem(fields, "data"), "divergent");
        const char *why = decide_divergent_ignored(facts);
        if (dv)
            cJSON_AddBoolToObject(dv, "applies", why == NULL);
        if (dv && why)
            cJSON_AddStringToObject(dv, "ignored", why);
        if (why)
            log_msg(LOG_WARN, "%s (%s)", why, o->data_dir.value);
    }
    if (facts->restore_requested) {
        cJSON *r = cJSON_AddObjectToObject(fields, "restore");
        char hex[17];
        if (r) {
            cJSON_AddStringToObject(r, "from", o->restore_from.value);
            cJSON_AddStringToObject(r, "role", restorer ? "restorer" : "peer");
            cJSON_AddBoolToObject(r, "marker", facts->restore_done);
            if (facts->restore_cluster_id)
                cJSON_AddStringToObject(r, "marker_cluster_id",
                                        etcd_id_hex(facts->restore_cluster_id, hex));
        }
    }
    return fields;
}

/* A marker placed apart from the data dir (--divergent-marker) lives in a directory the agent
 * mounts writable as a subPath of the data volume. The kubelet would create a missing subPath
 * directory owned by root, where the non-root agent cannot write: create it here first, as the
 * pod's user. Not fatal: without it only the marker is lost, and the agent says so. */
static void prepare_marker_dir(const struct opts *o)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(o->divergent_marker.value, '/');
    if (!o->divergent_marker.set || o->dry_run || !slash || slash == o->divergent_marker.value)
        return;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - o->divergent_marker.value),
             o->divergent_marker.value);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        log_msg(LOG_WARN, "divergent marker: cannot create %s: %s", dir, strerror(errno));
}

/* The divergent marker goes with the data it describes: into the moved-aside copy (pruned
 * with it), so the new data dir starts without it and nothing is lost. Not fatal. */
static void keep_divergent_marker(const char *marker, const char *moved_to, cJSON *fields)
{
    char to[PATH_MAX];
    int n = snprintf(to, sizeof(to), "%s/%s", moved_to, DIVERGENT_MOVED_NAME);
    int dfd;

    if (n < 0 || (size_t)n >= sizeof(to) || rename(marker, to) != 0) {
        log_msg(LOG_WARN, "divergent marker: could not move it into %s: %s", moved_to,
                strerror(errno));
        return;
    }
    dfd = open(moved_to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    if (fields)
        cJSON_AddStringToObject(fields, "divergent_marker_moved_to", to);
}

/* Carry out a join/readd/reset/bootstrap/keep decision and print its line (fields consumed).
 * Returns the exit code. */
static int act_on(const struct opts *o, bool restorer, const struct observe *obs,
                  const struct decide_facts *facts, const struct decide_decision *d, cJSON *fields,
                  int64_t t0_ns)
{
    struct act_result res;
    char err[512];
    struct act_config ac = {.name = o->name.value,
                            .peer_url = o->peer_url.value,
                            .data_dir = o->data_dir.value,
                            .state_file = o->state_file.value,
                            .env_file = o->env_file.value[0] ? o->env_file.value : NULL,
                            .initial_cluster = o->initial_cluster.value,
                            .keep_backups = o->keep_backups,
                            .call_timeout_ms = (int)o->timeout_ms,
                            .now = time(NULL)};
    int rc = act_run(&ac, d, obs->ch, obs->reachable ? &obs->list : NULL, &res, err, sizeof(err));
    if (rc == 0 && res.moved_to[0] && decide_divergent_applies(facts))
        keep_divergent_marker(o->divergent_marker.value, res.moved_to, fields);
    if (fields) {
        if (res.moved_to[0])
            cJSON_AddStringToObject(fields, "moved_to", res.moved_to);
        cJSON_AddNumberToObject(fields, "pruned", (double)res.pruned);
        cJSON_AddNumberToObject(fields, "took_ms", (double)(clock_mono_ns() - t0_ns) / 1e6);
    }
    if (rc != 0) {
        char reason[DECIDE_REASON_MAX + 600];
        snprintf(reason, sizeof(reason), "%s; failed at step %s: %s", d->reason,
                 res.failed_step ? res.failed_step : "?", err);
        if (fields)
            cJSON_AddStringToObject(fields, "failed_step", res.failed_step ? res.failed_step : "");
        emit(d, res.member_id, reason, fields, true);
        return EXIT_FAILED;
    }
    if (facts->restore_requested && !restorer && !facts->restore_done && obs->reachable &&
        (d->action == DECIDE_JOIN || d->action == DECIDE_READD || d->action == DECIDE_RESET)) {
        /* we are in the restored cluster now: later runs take the normal table, even when
         * the cluster is unreachable (a full outage must not wait for itself) */
        if (restore_peer_done(o->data_dir.value, o->restore_from.value, facts->cluster_id, err,
                              sizeof(err)) != 0)
            log_msg(LOG_WARN, "restore marker: %s (a rerun joins again)", err);
    }
    emit(d, res.member_id, d->reason, fields, false);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct opts *o = &g_opts;
    char err[512];
    struct tls_ctx *tls = NULL;
    struct observe obs;
    struct decide_facts facts;
    struct decide_decision d;
    bool restorer = false;
    int code;

    /* the etcd container's start command on shell-less images (exec.c) */
    if (argc > 1 && strcmp(argv[1], "exec") == 0)
        return exec_main(argc - 1, argv + 1);
    int64_t t0_ns = clock_mono_ns();
    memset(&obs, 0, sizeof(obs));
    log_set_program("reset-member");
    code = parse_options(argc, argv, o, &restorer);
    if (code >= 0)
        goto out;

    tls_init(false); /* a one-shot process: OpenSSL's exit-time cleanup is wasted work */
    tls = tls_client_new(&(struct tls_files){.ca_file = o->cacert.value,
                                             .cert_file = o->cert.value[0] ? o->cert.value : NULL,
                                             .key_file = o->key.value[0] ? o->key.value : NULL},
                         err, sizeof(err));
    if (!tls) {
        fprintf(stderr, "reset-member: tls: %s\n", err);
        code = EXIT_USAGE;
        goto out;
    }
    struct observe_config oc = {.data_dir = o->data_dir.value,
                                .divergent_marker = o->divergent_marker.value,
                                .peer_url = o->peer_url.value,
                                .endpoints = (const char *const *)o->endpoints.items,
                                .n_endpoints = o->endpoints.n,
                                .tls = tls,
                                .timeout_ms = (int)o->timeout_ms};
    prepare_marker_dir(o);
    code = observe_and_decide(o, restorer, &oc, &obs, &facts, &d);
    if (code != 0)
        goto out;
    cJSON *fields = decision_fields(o, restorer, &obs, &facts);
    if (d.action == DECIDE_RESTORE) {
        code = do_restore(o, &d, fields, t0_ns);
    } else if (d.action == DECIDE_REFUSE || o->dry_run) {
        emit(&d, d.member_id, d.reason, fields, false);
        code = d.action == DECIDE_REFUSE ? EXIT_REFUSE : EXIT_OK;
    } else {
        code = act_on(o, restorer, &obs, &facts, &d, fields, t0_ns);
    }
out:
    observe_free(&obs);
    tls_ctx_free(tls);
    config_list_free(&o->endpoints);
    return code;
}
