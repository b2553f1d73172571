/* fuzz_azxml.c - libFuzzer target for common/azxml.c (the List Blobs answer of Azure Blob
 * Storage) and its RFC 1123 date parser: every blob reported has a non-empty NUL-terminated name
 * within bounds, the marker is NUL-terminated, a refused answer reports no marker. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "azxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_cb(void *arg, const struct azxml_blob *b)
{
    size_t *n = arg;
    size_t l = strnlen(b->name, sizeof b->name);

    if (l == 0 || l >= sizeof b->name)
        abort();
    (*n)++;
    return *n == 3000 ? 7 : 0; /* a callback's stop is returned as is */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char marker[256];
    size_t n = 0;
    time_t t;
    int rc = azxml_list_blobs((const char *)data, size, check_cb, &n, marker, sizeof marker);

    if (strnlen(marker, sizeof marker) >= sizeof marker)
        abort();
    if (rc != 0 && marker[0] != '\0')
        abort();
    if (n > AZXML_MAX_BLOBS || (rc == 7 && n != 3000))
        abort();
    (void)azxml_parse_date((const char *)data, size, &t);
    return 0;
}
