/* maint_plan.c - the coordinator's decisions over one round of observations (maint_plan.h).
 *
 * No I/O, no clock: maint.c observes the members, calls maint_plan_next, and carries the step
 * out. Every rule of docs/maintenance.md's "Safety rules" is one branch here. */
#include "maint_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ID_FMT "%" PRIx64

bool maint_plan_due(const struct maint_plan_member *m, const struct maint_plan_params *p,
                    bool nospace)
{
    if (!m->answered || m->db_size <= 0 || m->db_in_use < 0 || m->db_in_use > m->db_size)
        return false;
    int64_t free_bytes = m->db_size - m->db_in_use;
    if (nospace)
        return free_bytes >= MAINT_PLAN_NOSPACE_MIN_FREE;
    /* free * 100 >= threshold * db, without overflow for any db below 2^56 */
    return free_bytes >= p->min_free &&
           (double)free_bytes * 100.0 >= (double)p->threshold_pct * (double)m->db_size;
}

static bool healthy(const struct maint_plan_member *m)
{
    return m->answered && m->read_ok && m->leader != 0;
}

/* The caught-up healthy voter with the highest applied index, other than the leader. */
static bool leader_target(const struct maint_plan_facts *f, const struct maint_plan_member *self,
                          size_t *out)
{
    bool found = false;
    for (size_t i = 0; i < f->n; i++) {
        const struct maint_plan_member *m = &f->members[i];
        if (m == self || m->learner || !healthy(m))
            continue;
        if (m->applied_index + MAINT_PLAN_CAUGHT_UP_LAG < self->raft_index)
            continue;
        if (!found || m->applied_index > f->members[*out].applied_index) {
            *out = i;
            found = true;
        }
    }
    return found;
}

__attribute__((format(printf, 4, 5))) static void
decide(struct maint_plan_decision *d, enum maint_step step, const char *label, const char *fmt, ...)
{
    va_list ap;
    d->step = step;
    d->label = label;
    va_start(ap, fmt);
    (void)vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

void maint_plan_next(const struct maint_plan_facts *f, const struct maint_plan_params *p,
                     struct maint_plan_decision *out)
{
    memset(out, 0, sizeof(*out));
    const struct maint_plan_member *self = NULL;
    for (size_t i = 0; i < f->n; i++)
        if (f->members[i].id == f->self)
            self = &f->members[i];
    if (!self || !self->answered) {
        decide(out, MAINT_IDLE, NULL, "the local member does not answer");
        return;
    }
    if (self->learner || self->leader != self->id) {
        decide(out, MAINT_IDLE, NULL, "not the leader: the leader's agent coordinates");
        return;
    }

    /* Anything due at all? (Nothing due: idle, whatever the health.) */
    bool any_due = f->nospace;
    for (size_t i = 0; i < f->n && !any_due; i++)
        any_due = !f->members[i].learner && maint_plan_due(&f->members[i], p, false);
    if (!any_due) {
        decide(out, MAINT_IDLE, NULL, "nothing due");
        return;
    }

    size_t voters = 0, ok_voters = 0;
    const struct maint_plan_member *sick = NULL;
    for (size_t i = 0; i < f->n; i++) {
        const struct maint_plan_member *m = &f->members[i];
        if (m->learner)
            continue;
        voters++;
        if (healthy(m))
            ok_voters++;
        else if (!sick)
            sick = m;
    }
    if (ok_voters * 2 <= voters) {
        decide(out, MAINT_SKIP, "no_quorum", "%zu of %zu voters answer: no quorum", ok_voters,
               voters);
        return;
    }
    if (sick) {
        decide(out, MAINT_SKIP, "member_unavailable",
               "voter " ID_FMT " does not answer a serializable read (busy or down)", sick->id);
        return;
    }

    if (f->nospace && p->nospace_compact && self->revision > f->compacted) {
        decide(out, MAINT_COMPACT, NULL, "NOSPACE: compact to revision %" PRId64, self->revision);
        out->revision = self->revision;
        return;
    }

    /* Followers first, the one with the most free space first. */
    bool found = false;
    for (size_t i = 0; i < f->n; i++) {
        const struct maint_plan_member *m = &f->members[i];
        if (m == self || m->learner)
            continue;
        bool above = m->quota > 0 &&
                     (double)m->db_size * 100.0 >= (double)p->nospace_resume_pct * (double)m->quota;
        if (!maint_plan_due(m, p, f->nospace) && !(f->nospace && above && !(f->done && f->done[i])))
            continue;
        const struct maint_plan_member *b = found ? &f->members[out->target] : NULL;
        if (!b || m->db_size - m->db_in_use > b->db_size - b->db_in_use) {
            out->target = i;
            found = true;
        }
    }
    if (found) {
        const struct maint_plan_member *m = &f->members[out->target];
        size_t t = out->target;
        decide(out, MAINT_DEFRAG, NULL,
               "%sdefragment " ID_FMT ": %" PRId64 " of %" PRId64 " bytes free",
               f->nospace ? "NOSPACE: " : "", m->id, m->db_size - m->db_in_use, m->db_size);
        out->target = t;
        return;
    }
    if (maint_plan_due(self, p, f->nospace)) {
        size_t t = 0;
        if (!leader_target(f, self, &t)) {
            decide(out, MAINT_SKIP, "no_leader_target",
                   "the leader is due but no healthy caught-up voter can take over");
            return;
        }
        decide(out, MAINT_MOVE_LEADER, NULL,
               "the leader is due: hand leadership to " ID_FMT " first", f->members[t].id);
        out->target = t;
        return;
    }
    if (!f->nospace) {
        decide(out, MAINT_IDLE, NULL, "nothing due");
        return;
    }
    /* NOSPACE and every voter defragmented: disarm only with room below the resume mark. */
    for (size_t i = 0; i < f->n; i++) {
        const struct maint_plan_member *m = &f->members[i];
        if (m->learner)
            continue;
        if (m->quota <= 0) {
            decide(out, MAINT_HOLD, "quota_unknown",
                   "NOSPACE kept: the quota of member " ID_FMT " is unknown", m->id);
            return;
        }
        if ((double)m->db_size * 100.0 >= (double)p->nospace_resume_pct * (double)m->quota) {
            decide(out, MAINT_HOLD, "nospace_not_freed",
                   "NOSPACE kept: member " ID_FMT " db is %" PRId64 " bytes, %.1f%% of the "
                   "quota %" PRId64 " (resume below %u%%); free space (delete keys, compact) "
                   "or raise --quota-backend-bytes",
                   m->id, m->db_size, (double)m->db_size * 100.0 / (double)m->quota, m->quota,
                   p->nospace_resume_pct);
            return;
        }
    }
    decide(out, MAINT_DISARM, NULL, "NOSPACE: every member below %u%% of its quota: disarm",
           p->nospace_resume_pct);
}

int64_t maint_plan_hashkv_revision(const struct maint_plan_member *m, size_t n)
{
    int64_t r = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i].answered && m[i].revision > 0 && (r == 0 || m[i].revision < r))
            r = m[i].revision;
    return r;
}

enum maint_hash_verdict maint_plan_hash_compare(const struct maint_plan_hash *h, size_t n,
                                                size_t n_members, bool *divergent)
{
    for (size_t i = 0; i < n; i++)
        divergent[i] = false;
    /* the compact revision most answers share */
    int64_t crev = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].ok)
            continue;
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += h[j].ok && h[j].compact_revision == h[i].compact_revision;
        if (c > best) {
            best = c;
            crev = h[i].compact_revision;
        }
    }
    if (best < 2)
        return MAINT_HASH_UNKNOWN;
    /* the hash most of that group share */
    uint32_t hash = 0;
    size_t hbest = 0;
    bool differ = false;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].ok || h[i].compact_revision != crev)
            continue;
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += h[j].ok && h[j].compact_revision == crev && h[j].hash == h[i].hash;
        if (c < best)
            differ = true;
        if (c > hbest) {
            hbest = c;
            hash = h[i].hash;
        }
    }
    if (!differ)
        return MAINT_HASH_CONSISTENT;
    if (hbest * 2 <= n_members)
        return MAINT_HASH_INCONSISTENT;
    for (size_t i = 0; i < n; i++)
        divergent[i] = h[i].ok && h[i].compact_revision == crev && h[i].hash != hash;
    return MAINT_HASH_DIVERGENT;
}

const char *maint_plan_hash_verdict_name(enum maint_hash_verdict v)
{
    switch (v) {
    case MAINT_HASH_CONSISTENT:
        return "consistent";
    case MAINT_HASH_DIVERGENT:
        return "divergent member";
    case MAINT_HASH_INCONSISTENT:
        return "inconsistent cluster";
    default:
        return "unknown";
    }
}

enum maint_marker_action maint_plan_marker(const struct maint_plan_hash *h, size_t n,
                                           enum maint_hash_verdict v, const bool *divergent,
                                           uint64_t self, uint32_t *majority_hash)
{
    size_t me = n;

    for (size_t i = 0; i < n; i++)
        if (h[i].id == self && self != 0)
            me = i;
    if (me == n || !h[me].ok)
        return MAINT_MARKER_LEAVE;
    if (v == MAINT_HASH_DIVERGENT && divergent[me]) {
        for (size_t i = 0; i < n; i++)
            if (h[i].ok && !divergent[i] && h[i].compact_revision == h[me].compact_revision) {
                *majority_hash = h[i].hash;
                return MAINT_MARKER_WRITE;
            }
        return MAINT_MARKER_LEAVE;
    }
    if (v != MAINT_HASH_CONSISTENT && v != MAINT_HASH_DIVERGENT)
        return MAINT_MARKER_LEAVE;
    /* consistent only when compared: another unnamed member at our compact revision agrees */
    for (size_t i = 0; i < n; i++)
        if (i != me && h[i].ok && !divergent[i] &&
            h[i].compact_revision == h[me].compact_revision && h[i].hash == h[me].hash)
            return MAINT_MARKER_REMOVE;
    return MAINT_MARKER_LEAVE;
}

int maint_plan_parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000},
        {"KiB", 1024},
        {"MB", 1000 * 1000},
        {"MiB", 1024 * 1024},
        {"GB", 1000 * 1000 * 1000},
        {"GiB", 1024 * 1024 * 1024},
        {"TB", INT64_C(1000) * 1000 * 1000 * 1000},
        {"TiB", INT64_C(1024) * 1024 * 1024 * 1024},
    };
    *out = 0;
    if (!s || !*s)
        return -EINVAL;
    int64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -EINVAL;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strcmp(s + i, units[u].unit) != 0)
            continue;
        if (v > INT64_MAX / units[u].mult)
            return -EINVAL;
        *out = v * units[u].mult;
        return 0;
    }
    return -EINVAL;
}
