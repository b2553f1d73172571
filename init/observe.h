/* observe.h - reset-member's read-only look at the world: the data dir (datadir.c) and the
 * cluster (MemberList through any endpoint, then each started member's health).
 *
 * Unreachable is a fact, not an error. Turning the observations into decide_facts is here
 * too; the decision itself is decide.c's, acting on it act.c's. */
#ifndef ER_OBSERVE_H
#define ER_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "datadir.h"
#include "decide.h"
#include "divergent.h"
#include "etcd.h"
#include "grpc.h"
#include "tls.h"

#define OBSERVE_MAX_MEMBERS 16          /* members we look at; more is refused */
#define OBSERVE_CONNECT_TIMEOUT_MS 1000 /* per endpoint; our own member is down */
#define OBSERVE_CALL_TIMEOUT_MS 2000    /* one call, when the budget allows */
#define OBSERVE_HEALTH_KEY "health"     /* serializable range target, as HyperShift's Job */
/* Passes over the endpoints while a server answers with an error (e.g. a learner behind a
 * service: "rpc not supported for learner"); a new connection may land on another member. */
#define OBSERVE_LIST_ROUNDS 3
#define OBSERVE_ROUND_PAUSE_MS 200

struct observe_config {
    const char *data_dir;
    const char *divergent_marker; /* the agent's marker file (common/divergent.h) */
    const char *peer_url;
    const char *const *endpoints;
    size_t n_endpoints;
    struct tls_ctx *tls; /* borrowed */
    int timeout_ms;      /* budget of observe_cluster + observe_health together */
};

struct observe_health {
    bool probed;
    bool healthy;
    uint64_t leader;
    char error[160]; /* why not healthy */
};

struct observe {
    /* data dir */
    int data_rc; /* datadir_inspect's return */
    struct datadir_report data;
    int locked;       /* datadir_wal_locked: 1, 0 or negative errno */
    int divergent_rc; /* divergent_read: 0 (marker read), -ENOENT, -EINVAL, -errno */
    struct divergent_marker divergent;

    /* cluster */
    bool reachable;
    struct grpc_channel *ch; /* the channel that answered MemberList (owned; for act) */
    struct etcd_member_list list;
    char list_error[GRPC_MAX_STATUS_MESSAGE + 160]; /* why unreachable (last endpoint) */
    bool server_answered_error; /* some endpoint answered MemberList with an error status */
    struct decide_member dm[OBSERVE_MAX_MEMBERS];
    struct observe_health health[OBSERVE_MAX_MEMBERS];
    size_t n;
    bool too_many_members;
    bool health_probed;
    long long deadline_ms; /* monotonic, set by observe_cluster */
};

/* Inspect the data dir. Never fails: problems become facts (data_rc, verdict). */
void observe_data(const struct observe_config *c, struct observe *o);

/* MemberList through the endpoints in order (the first that answers wins). Returns 0, or
 * -ENOMEM / -EINVAL for a local failure; unreachable is o->reachable == false. */
int observe_cluster(const struct observe_config *c, struct observe *o);

/* Probe each started member that is not us (Status with a leader, then a serializable range),
 * concurrently, each bounded by what is left of the budget. */
void observe_health(const struct observe_config *c, struct observe *o);

/* Facts for decide(); points into o (keep o alive while using f). */
void observe_facts(const struct observe *o, bool learner, struct decide_facts *f);

/* Observations as JSON fields for the decision log line (new object). */
cJSON *observe_json(const struct observe *o);

void observe_free(struct observe *o);

#endif
