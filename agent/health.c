/* health.c - readiness and liveness checks over a cache snapshot.
 *
 * Only decides; the HTTP bodies are routes.c's, the gauges metrics.c's. */
#include "health.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "etcd.h"

static struct health_check *add_check(struct health_report *r, const char *name)
{
    struct health_check *c = &r->checks[r->n_checks++];
    c->name = name;
    c->ok = true;
    c->reason[0] = '\0';
    return c;
}

__attribute__((format(printf, 2, 3))) static void fail(struct health_check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* A truncated reason is still a reason. */
    (void)vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    c->ok = false;
}

void health_ready(const struct cache_snapshot *s, int64_t now_ms, const struct health_params *p,
                  struct health_report *out)
{
    memset(out, 0, sizeof(*out));
    const struct cache_local *l = &s->local;
    bool seen = l->probed_at_ms != 0;
    out->age_ms = seen ? now_ms - l->probed_at_ms : -1;

    struct health_check *c = add_check(out, "status");
    if (!seen)
        fail(c, "no observation yet");
    else if ((uint64_t)out->age_ms > p->stale_ms)
        fail(c, "observation is stale (%" PRId64 " ms old)", out->age_ms);
    else if (!l->status_ok)
        fail(c, "%s", l->status_error);

    c = add_check(out, "serializable_read");
    if (!seen)
        fail(c, "no observation yet");
    else if (!l->range_ok)
        fail(c, "%s", l->range_error);

    c = add_check(out, "leader");
    if (!seen || !l->status_ok)
        fail(c, "unknown: no status");
    else if (l->status.leader == 0)
        fail(c, "no leader");

    c = add_check(out, "learner");
    if (!seen || !l->status_ok)
        fail(c, "unknown: no status");
    else if (l->status.is_learner)
        fail(c, "member is a learner");

    c = add_check(out, "alarm");
    if (!seen)
        fail(c, "no observation yet");
    else if (!l->alarms_ok)
        fail(c, "%s", l->alarm_error);
    else if (l->n_alarms > 0)
        fail(c, "%s on member %" PRIx64 "%s", etcd_alarm_name(l->alarms[0].type),
             l->alarms[0].member_id, l->n_alarms > 1 ? " and more" : "");

    /* A defrag blocks the member's reads: say so rather than only "deadline exceeded". */
    if (s->maint.defragmenting) {
        c = add_check(out, "defrag");
        fail(c, "defragmenting (for %" PRId64 " ms)", now_ms - s->maint.defrag_since_ms);
    }

    out->ok = true;
    for (size_t i = 0; i < out->n_checks; i++)
        out->ok = out->ok && out->checks[i].ok;
}

void health_live(const struct cache_snapshot *s, int64_t now_ms, int64_t start_ms,
                 const struct health_params *p, struct health_report *out)
{
    memset(out, 0, sizeof(*out));
    const struct cache_local *l = &s->local;
    out->age_ms = l->probed_at_ms != 0 ? now_ms - l->probed_at_ms : -1;

    add_check(out, "agent"); /* we are answering */

    struct health_check *c = add_check(out, "local_member");
    /* Until the member first answers, the window counts from our own start: etcd may come up
     * after the agent. Quorum plays no part: Status and serializable reads are local. */
    int64_t since = l->answered_at_ms != 0 ? l->answered_at_ms : start_ms;
    uint64_t limit = p->interval_ms * p->livez_intervals;
    /* During a defrag the coordinator started, the member may be silent up to the
     * --defrag-timeout: the kubelet must not restart etcd in the middle of one. */
    const struct cache_maint *mt = &s->maint;
    if (mt->defragmenting && now_ms - mt->defrag_since_ms <= (int64_t)mt->defrag_timeout_ms) {
        uint64_t until = (uint64_t)(mt->defrag_since_ms - since) + mt->defrag_timeout_ms;
        if (mt->defrag_since_ms >= since && until > limit)
            limit = until;
    }
    int64_t silent = now_ms - since;
    if (silent > 0 && (uint64_t)silent > limit) {
        if (l->answered_at_ms == 0)
            fail(c, "no answer since the agent started %" PRId64 " ms ago (limit %" PRIu64 " ms)",
                 silent, limit);
        else
            fail(c, "no answer for %" PRId64 " ms (limit %" PRIu64 " ms)", silent, limit);
    }
    out->ok = out->checks[0].ok && out->checks[1].ok;
}

int64_t health_backup_age_ms(const struct cache_backup *b, int64_t now_wall_ms)
{
    if (!b->enabled || b->last_good_wall_ms <= 0)
        return -1;
    return now_wall_ms > b->last_good_wall_ms ? now_wall_ms - b->last_good_wall_ms : 0;
}

void health_backup_note(const struct cache_backup *b, int64_t now_wall_ms, char *out, size_t len)
{
    out[0] = '\0';
    if (!b->enabled || !b->interval_ms)
        return;
    int64_t late = 2 * (int64_t)b->interval_ms;
    int64_t age = health_backup_age_ms(b, now_wall_ms);
    if (age < 0 && now_wall_ms - b->started_wall_ms > late)
        snprintf(out, len, "no good backup in %s since the agent started", b->store);
    else if (age > late)
        snprintf(out, len, "newest good backup is %" PRId64 "s old (interval %" PRIu64 "s)",
                 age / 1000, b->interval_ms / 1000);
}
