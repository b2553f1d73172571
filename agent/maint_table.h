/* maint_table.h - the /members table as text: what `etcdctl endpoint health --cluster -w table`
 * prints (endpoint, health, took, error) plus learner, db size, leader, hashkv and verdict.
 *
 * Pure rendering of a cache snapshot (routes.c serves it for `Accept: text/plain` or
 * `?format=table`); the JSON form stays routes.c's. */
#ifndef ER_AGENT_MAINT_TABLE_H
#define ER_AGENT_MAINT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#include "cache.h"

/* Renders into a malloc'd NUL-terminated buffer. leader: the cluster's leader ID (0 none).
 * Returns 0, -ENOMEM or -E2BIG. */
int maint_table_render(const struct cache_snapshot *s, uint64_t leader, char **out, size_t *len);

#endif
