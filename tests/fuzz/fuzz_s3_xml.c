/* fuzz_s3_xml.c - libFuzzer target for common/s3xml.c, which reads S3's (untrusted) XML answers:
 * listings (objects, multipart uploads), errors and single values. Checks invariants of what it
 * returns (NUL-terminated, bounded lengths), not only the absence of crashes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_object(void *arg, const struct s3xml_object *o)
{
    (void)arg;
    if (strnlen(o->key, sizeof(o->key)) == sizeof(o->key) || o->key[0] == '\0')
        abort();
    return 0;
}

static int on_upload(void *arg, const struct s3xml_upload *u)
{
    (void)arg;
    if (strnlen(u->key, sizeof(u->key)) == sizeof(u->key) ||
        strnlen(u->upload_id, sizeof(u->upload_id)) == sizeof(u->upload_id))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml, next[64], next2[64], code[32], msg[128], v[16];
    bool truncated;
    int rc;

    if (size > STORE_MAX_XML)
        return 0;
    xml = fuzz_copy_exact(data, size); /* not NUL-terminated: the parser must respect len */
    if (!xml)
        return 0;
    rc = s3xml_list_objects(xml, size, on_object, NULL, &truncated, next, sizeof(next));
    if (rc == 0 && strnlen(next, sizeof(next)) == sizeof(next))
        abort();
    rc = s3xml_list_uploads(xml, size, on_upload, NULL, &truncated, next, sizeof(next), next2,
                            sizeof(next2));
    if (rc == 0 && (strnlen(next, sizeof(next)) == sizeof(next) ||
                    strnlen(next2, sizeof(next2)) == sizeof(next2)))
        abort();
    if (s3xml_error(xml, size, code, sizeof(code), msg, sizeof(msg)) == 0 &&
        (strnlen(code, sizeof(code)) == sizeof(code) || strnlen(msg, sizeof(msg)) == sizeof(msg)))
        abort();
    rc = s3xml_value(xml, size, NULL, "UploadId", v, sizeof(v));
    if (rc >= 0 && (size_t)rc != strlen(v))
        abort();
    free(xml);
    return 0;
}
