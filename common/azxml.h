/* azxml.h - a bounded scanner for the one XML answer the Azure store reads: List Blobs
 * (<EnumerationResults> with <Blob><Name>, <Content-Length>, <Last-Modified> and <NextMarker>).
 * Not a general XML parser; HTTP and paging are store_azure.c's. */
#ifndef ER_AZXML_H
#define ER_AZXML_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bounds.h"

#define AZXML_MAX_NAME 1024  /* a blob name (Azure allows 1024 characters) */
#define AZXML_MAX_BLOBS 5000 /* blobs in one answer (the service's page maximum) */

struct azxml_blob {
    char name[AZXML_MAX_NAME * 4 + 1]; /* entity-decoded UTF-8 */
    uint64_t size;
    time_t mtime; /* from Last-Modified (RFC 1123) */
};

/* returns 0 to go on, or a nonzero value that stops the scan and is returned */
typedef int (*azxml_blob_fn)(void *arg, const struct azxml_blob *b);

/* Calls fn for each <Blob> of a List Blobs answer (xml need not be NUL-terminated) and copies
 * the <NextMarker> (entity-decoded; "" when the listing is complete) into marker. Returns 0,
 * fn's nonzero value, -EINVAL for an answer that is not a listing or has a malformed blob
 * (missing name or size, Encoded names, bad entities, bad date), -E2BIG over AZXML_MAX_BLOBS
 * blobs or a name or marker over its buffer. */
int azxml_list_blobs(const char *xml, size_t len, azxml_blob_fn fn, void *arg, char *marker,
                     size_t marker_len);

/* Parses "Thu, 03 Dec 2026 22:10:00 GMT". Returns 0 or -EINVAL. */
int azxml_parse_date(const char *s, size_t n, time_t *out);

#endif
