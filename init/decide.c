/* decide.c - the decision table of reset-member (issue 3) as a pure function.
 *
 * Facts come from observe.c; act.c carries the decision out. Anything the table does not
 * cover is a refusal with a reason: a wrong guess here destroys data or splits a cluster. */
#include "decide.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* etcd allows at most one learner at a time ("too many learner members in cluster"). */
#define DECIDE_MAX_LEARNERS 1

static void set(struct decide_decision *d, enum decide_action a, enum decide_state s,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set(struct decide_decision *d, enum decide_action a, enum decide_state s,
                const char *fmt, ...)
{
    va_list ap;

    d->action = a;
    d->state = s;
    va_start(ap, fmt);
    /* a truncated reason is still a reason */
    (void)vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

static void refuse(struct decide_decision *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refuse(struct decide_decision *d, const char *fmt, ...)
{
    va_list ap;

    memset(d, 0, sizeof(*d));
    d->action = DECIDE_REFUSE;
    d->state = DECIDE_STATE_NONE;
    va_start(ap, fmt);
    (void)vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

void decide_summarize(const struct decide_facts *f, struct decide_summary *s)
{
    memset(s, 0, sizeof(*s));
    if (!f->reachable)
        return;
    for (size_t i = 0; i < f->n_members; i++) {
        const struct decide_member *m = &f->members[i];
        bool by_id = f->ids_known && m->id == f->data_member_id;
        bool self = by_id || m->peer_url_ours;

        if (by_id) {
            s->self_by_id++;
            s->by_id = m;
        }
        if (m->peer_url_ours) {
            s->self_by_url++;
            if (!s->by_url)
                s->by_url = m;
        }
        if (m->learner) {
            if (!self)
                s->learners_other++;
            continue;
        }
        s->voters++;
        if (!self && m->healthy)
            s->healthy_voters_other++;
    }
    s->quorum = s->healthy_voters_other > s->voters / 2;
}

static bool any_started(const struct decide_facts *f)
{
    for (size_t i = 0; i < f->n_members; i++)
        if (f->members[i].started)
            return true;
    return false;
}

/* The decision needs the members' health but it was not probed: ask for it. */
static bool need_health(const struct decide_facts *f, struct decide_decision *d)
{
    if (f->health_probed)
        return false;
    refuse(d, "member health not probed");
    d->needs_health = true;
    return true;
}

static bool no_quorum(const struct decide_summary *s, struct decide_decision *d, const char *what)
{
    if (s->quorum)
        return false;
    refuse(d, "%s, but the other members have no quorum (%zu healthy of %zu voters)", what,
           s->healthy_voters_other, s->voters);
    return true;
}

/* Fill in "remove `removed` (may be NULL), then add ourselves" after checking that etcd will
 * accept the add and that the cluster stays available once it is made. Returns false (with a
 * refusal) if not. */
static bool plan_add(const struct decide_facts *f, const struct decide_summary *s,
                     const struct decide_member *removed, struct decide_decision *d)
{
    if (f->learner) {
        if (s->learners_other >= DECIDE_MAX_LEARNERS) {
            refuse(d,
                   "another learner is in the cluster and etcd allows %d: retry once it is "
                   "promoted, or use --no-learner",
                   DECIDE_MAX_LEARNERS);
            return false;
        }
    } else {
        /* a voter that is added but not yet started counts towards the quorum size */
        size_t after = s->voters - (removed && !removed->learner ? 1 : 0) + 1;
        if (s->healthy_voters_other <= after / 2) {
            refuse(d,
                   "adding a voter would leave %zu healthy of %zu voters until it starts: "
                   "use --learner",
                   s->healthy_voters_other, after);
            return false;
        }
    }
    if (removed) {
        d->remove = true;
        d->remove_id = removed->id;
    }
    d->add_self = true;
    d->add_learner = f->learner;
    return true;
}

static void decide_empty(const struct decide_facts *f, const struct decide_summary *s,
                         struct decide_decision *d)
{
    if (!f->reachable && f->answered_error) {
        refuse(d, "no data and a member answered with an error: a cluster exists, not "
                  "bootstrapping a new one beside it");
        return;
    }
    if (!f->reachable) {
        set(d, DECIDE_BOOTSTRAP, DECIDE_STATE_NEW,
            "no data and the cluster is unreachable: fresh bootstrap");
        return;
    }
    if (!any_started(f)) {
        set(d, DECIDE_BOOTSTRAP, DECIDE_STATE_NEW,
            "no data and no member has started yet: fresh bootstrap");
        return;
    }
    if (s->self_by_url > 1) {
        refuse(d, "our peer URL is listed %zu times", s->self_by_url);
        return;
    }
    if (s->by_url && !s->by_url->started) {
        d->member_id = s->by_url->id;
        set(d, DECIDE_JOIN, DECIDE_STATE_EXISTING,
            "no data; our peer URL is listed as member %" PRIx64 " that never started: join",
            s->by_url->id);
        return;
    }
    if (need_health(f, d))
        return;
    if (s->by_url) {
        if (no_quorum(s, d, "no data and our old identity is a started member"))
            return;
        if (!plan_add(f, s, s->by_url, d))
            return;
        set(d, DECIDE_READD, DECIDE_STATE_EXISTING,
            "no data; our old identity %" PRIx64 " is listed: remove it and add ourselves",
            s->by_url->id);
        return;
    }
    if (no_quorum(s, d, "no data and we are not a member"))
        return;
    if (!plan_add(f, s, NULL, d))
        return;
    set(d, DECIDE_READD, DECIDE_STATE_EXISTING, "no data and we are not a member: add ourselves");
}

/* Our data's ID is not in the list (removed, or a reset was interrupted after the
 * membership change): shared by valid and corrupt data. `own` is our listed entry to remove
 * (corrupt data only), may be NULL. */
static void plan_reset(const struct decide_facts *f, const struct decide_summary *s,
                       const struct decide_member *own, const char *why, struct decide_decision *d)
{
    if (need_health(f, d))
        return;
    if (no_quorum(s, d, why))
        return;
    d->move_aside = true;
    if (!own && s->by_url && !s->by_url->started) {
        /* added by an earlier, interrupted run or by an operator: become that member */
        d->member_id = s->by_url->id;
        set(d, DECIDE_RESET, DECIDE_STATE_EXISTING,
            "%s; our peer URL is listed as unstarted member %" PRIx64
            ": move the data aside and join as it",
            why, s->by_url->id);
        return;
    }
    if (!plan_add(f, s, own, d))
        return;
    d->move_aside = true;
    if (own)
        set(d, DECIDE_RESET, DECIDE_STATE_EXISTING,
            "%s: remove member %" PRIx64 ", move the data aside, add ourselves", why, own->id);
    else
        set(d, DECIDE_RESET, DECIDE_STATE_EXISTING, "%s: move the data aside, add ourselves", why);
}

const char *decide_divergent_ignored(const struct decide_facts *f)
{
    if (!f->divergent_marker)
        return NULL;
    if (f->data != DECIDE_DATA_VALID || !f->ids_known)
        return "divergent marker ignored: the data is not valid data with known IDs";
    if (f->divergent_member_id != f->data_member_id)
        return "divergent marker ignored: it names another member than our data's";
    if (f->divergent_cluster_id != f->data_cluster_id)
        return "divergent marker ignored: it names another cluster than our data's";
    return NULL;
}

bool decide_divergent_applies(const struct decide_facts *f)
{
    return f->divergent_marker && !decide_divergent_ignored(f);
}

static void decide_corrupt(const struct decide_facts *f, const struct decide_summary *s,
                           const char *what, struct decide_decision *d);

static void decide_valid(const struct decide_facts *f, const struct decide_summary *s,
                         struct decide_decision *d)
{
    if (!f->ids_known) {
        refuse(d, "data is valid but its member and cluster IDs are unknown");
        return;
    }
    if (decide_divergent_applies(f)) {
        /* valid-looking but not the cluster's data: a fresh copy from the leader, like
         * corrupt data, and only while the others have quorum */
        decide_corrupt(f, s, "HashKV named our data divergent", d);
        return;
    }
    if (!f->reachable) {
        d->member_id = f->data_member_id;
        set(d, DECIDE_KEEP, DECIDE_STATE_EXISTING,
            "%s; cluster unreachable: etcd will wait for its peers",
            f->torn_tail ? "torn WAL tail (etcd repairs it on start)" : "data valid");
        return;
    }
    if (f->cluster_id != f->data_cluster_id) {
        refuse(d,
               "data belongs to cluster %" PRIx64 " but the endpoints answer for cluster %" PRIx64
               ": wrong volume, not touching it",
               f->data_cluster_id, f->cluster_id);
        return;
    }
    if (s->self_by_url > 1) {
        refuse(d, "our peer URL is listed %zu times", s->self_by_url);
        return;
    }
    if (s->by_id) {
        if (s->by_url && s->by_url != s->by_id) {
            refuse(d,
                   "our data is member %" PRIx64 " but our peer URL is listed as member %" PRIx64,
                   f->data_member_id, s->by_url->id);
            return;
        }
        if (f->torn_tail) {
            if (need_health(f, d))
                return;
            if (s->quorum) {
                /* etcd would repair the tail, but a fresh copy from the leader is cheap and
                 * certain while the others have quorum */
                plan_reset(f, s, s->by_id, "torn WAL tail and quorum without us", d);
                return;
            }
            d->member_id = f->data_member_id;
            set(d, DECIDE_KEEP, DECIDE_STATE_EXISTING,
                "torn WAL tail and no quorum without us: etcd repairs the tail on start");
            return;
        }
        d->member_id = f->data_member_id;
        set(d, DECIDE_KEEP, DECIDE_STATE_EXISTING, "data valid and member %" PRIx64 " is listed",
            f->data_member_id);
        return;
    }
    if (s->by_url && s->by_url->started) {
        refuse(d,
               "our data is member %" PRIx64 ", which is not listed, and our peer URL belongs to "
               "started member %" PRIx64,
               f->data_member_id, s->by_url->id);
        return;
    }
    plan_reset(f, s, NULL, "our member ID is not in the cluster (removed)", d);
}

static void decide_corrupt(const struct decide_facts *f, const struct decide_summary *s,
                           const char *what, struct decide_decision *d)
{
    const struct decide_member *own = s->by_id;

    if (!f->reachable) {
        refuse(d, "%s and the cluster is unreachable: it may be the last copy", what);
        return;
    }
    if (f->ids_known && f->cluster_id != f->data_cluster_id) {
        refuse(d,
               "%s: data of cluster %" PRIx64 " but the endpoints answer for cluster %" PRIx64
               ": wrong volume, not touching it",
               what, f->data_cluster_id, f->cluster_id);
        return;
    }
    if (s->self_by_url > 1) {
        refuse(d, "our peer URL is listed %zu times", s->self_by_url);
        return;
    }
    if (own && s->by_url && s->by_url != own) {
        refuse(d, "our data is member %" PRIx64 " but our peer URL is listed as member %" PRIx64,
               f->data_member_id, s->by_url->id);
        return;
    }
    if (!own && s->by_url && s->by_url->started) {
        if (f->ids_known) {
            refuse(d,
                   "our data is member %" PRIx64 ", which is not listed, and our peer URL "
                   "belongs to started member %" PRIx64,
                   f->data_member_id, s->by_url->id);
            return;
        }
        own = s->by_url; /* IDs unreadable: the started entry with our URL is our old self */
    }
    plan_reset(f, s, own, what, d);
}

/* A restore request (issue 6) decides before the normal table: a membership change before
 * the restore would give the restorer a new ID and a WAL mismatch. Returns false when the
 * normal table applies (no request, request done, or a peer whose data is not from the lost
 * cluster). The peers never bootstrap: empty members started `new` beside the restored one
 * would join it with an empty keyspace (etcd-facts.md, Membership); they are added with
 * MemberAdd and start `existing`, so the leader sends them its snapshot. */
static bool decide_restore(const struct decide_facts *f, const struct decide_summary *s,
                           struct decide_decision *d)
{
    bool done = f->restore_done && f->restore_cluster_id != 0 &&
                ((f->data != DECIDE_DATA_EMPTY && f->ids_known &&
                  f->data_cluster_id == f->restore_cluster_id) ||
                 (f->reachable && f->cluster_id == f->restore_cluster_id));

    if (!f->restore_requested || done)
        return false;
    if (f->restore_restorer) {
        if (f->data == DECIDE_DATA_UNREADABLE) {
            refuse(d, "restore requested but the data dir cannot be inspected: not touching it");
            return true;
        }
        if (f->reachable) {
            if (need_health(f, d))
                return true;
            if (s->quorum) {
                refuse(d,
                       "restore requested but cluster %" PRIx64 " answers with quorum (%zu healthy "
                       "of %zu voters): restoring beside it would split it; stop it or drop "
                       "--restore-from",
                       f->cluster_id, s->healthy_voters_other, s->voters);
                return true;
            }
        }
        set(d, DECIDE_RESTORE, DECIDE_STATE_NEW,
            "restore requested and no cluster with quorum answers: restore the snapshot as a "
            "one-member cluster, move the data aside");
        return true;
    }
    if (!f->reachable) {
        refuse(d, "restore requested: waiting for the restored cluster to answer (a peer never "
                  "bootstraps or starts on old data beside it); retry");
        return true;
    }
    if (f->data != DECIDE_DATA_EMPTY && f->data != DECIDE_DATA_UNREADABLE && f->ids_known &&
        f->data_cluster_id != f->cluster_id) {
        if (s->self_by_url > 1 || (s->by_url && s->by_url->started)) {
            refuse(d,
                   "restore requested; our data is from cluster %" PRIx64
                   " but our peer URL is already a started member of cluster %" PRIx64,
                   f->data_cluster_id, f->cluster_id);
            return true;
        }
        char why[DECIDE_REASON_MAX / 2];
        (void)snprintf(why, sizeof(why),
                       "restore requested: our data is from lost cluster %" PRIx64
                       ", the restored cluster is %" PRIx64,
                       f->data_cluster_id, f->cluster_id);
        plan_reset(f, s, NULL, why, d);
        return true;
    }
    return false;
}

void decide(const struct decide_facts *f, struct decide_decision *d)
{
    struct decide_summary s;

    memset(d, 0, sizeof(*d));
    decide_summarize(f, &s);
    if (f->data_locked) {
        refuse(d, "a process (etcd?) holds the WAL locks of the data dir");
        return;
    }
    if (decide_restore(f, &s, d))
        return;
    switch (f->data) {
    case DECIDE_DATA_EMPTY:
        decide_empty(f, &s, d);
        return;
    case DECIDE_DATA_VALID:
        decide_valid(f, &s, d);
        return;
    case DECIDE_DATA_CORRUPT:
        decide_corrupt(f, &s, "data corrupt", d);
        return;
    case DECIDE_DATA_UNREADABLE:
        refuse(d, "the data dir cannot be inspected: not touching it");
        return;
    }
    refuse(d, "unknown data verdict %d", (int)f->data);
}

const char *decide_action_name(enum decide_action a)
{
    switch (a) {
    case DECIDE_BOOTSTRAP:
        return "bootstrap";
    case DECIDE_JOIN:
        return "join";
    case DECIDE_READD:
        return "readd";
    case DECIDE_KEEP:
        return "keep";
    case DECIDE_RESET:
        return "reset";
    case DECIDE_REFUSE:
        return "refuse";
    case DECIDE_RESTORE:
        return "restore";
    }
    return "unknown";
}

const char *decide_state_name(enum decide_state s)
{
    switch (s) {
    case DECIDE_STATE_NEW:
        return "new";
    case DECIDE_STATE_EXISTING:
        return "existing";
    case DECIDE_STATE_NONE:
        break;
    }
    return "";
}

const char *decide_data_name(enum decide_data v)
{
    switch (v) {
    case DECIDE_DATA_EMPTY:
        return "empty";
    case DECIDE_DATA_VALID:
        return "valid";
    case DECIDE_DATA_CORRUPT:
        return "corrupt";
    case DECIDE_DATA_UNREADABLE:
        return "unreadable";
    }
    return "unknown";
}
