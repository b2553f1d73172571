/* fuzz_maint_peer.c - libFuzzer target for maint_peer_parse (the leader's agent's GET /hashkv
 * answer, read by the follower agents) and maint_peer_decide on what it accepted.
 * Invariants: an accepted verdict has non-zero IDs, at most n_members distinct members, a
 * NUL-terminated verdict; a refused one is all zero; the decision never writes a marker for a
 * verdict that is not the coordinator's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "maint_peer.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *text = fuzz_copy_exact(data, size);
    if (!text)
        return 0;
    struct maint_peer_verdict v;
    int rc = maint_peer_parse(text, size, &v);
    free(text);
    if (rc != 0) {
        if (v.member_id || v.n)
            abort();
        return 0;
    }
    if (!v.member_id || !v.cluster_id || v.n > v.n_members || v.n > MAINT_PLAN_MAX_MEMBERS ||
        memchr(v.verdict, '\0', sizeof(v.verdict)) == NULL)
        abort();
    for (size_t i = 0; i < v.n; i++)
        for (size_t j = 0; j < i; j++)
            if (v.h[i].id == v.h[j].id)
                abort();
    uint32_t maj = 0, own = 0;
    const char *why = NULL;
    uint64_t self = v.n ? v.h[v.n - 1].id : 1;
    enum maint_marker_action a =
        maint_peer_decide(&v, self, v.cluster_id, v.member_id, v.n_members, &maj, &own, &why);
    if (!why || (a == MAINT_MARKER_WRITE && !v.coordinator))
        abort();
    return 0;
}
