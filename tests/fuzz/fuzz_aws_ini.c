/* fuzz_aws_ini.c - libFuzzer target for common/aws_creds.c's bounded INI parser (the AWS
 * credentials and config files) and its ISO 8601 expiry parser: every callback must see a
 * non-empty section, a non-empty lower-case key within bounds, no newline in names; errors are
 * one line. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws_creds.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_cb(void *ctx, const char *section, const char *key, const char *subkey,
                    const char *value)
{
    size_t *calls = ctx;

    (*calls)++;
    if (section[0] == '\0' || key[0] == '\0' || strlen(section) >= AWS_CREDS_MAX_KEY ||
        strlen(key) >= AWS_CREDS_MAX_KEY || strlen(value) >= AWS_CREDS_MAX_VALUE ||
        strchr(section, '\n') != NULL || strchr(key, '\n') != NULL)
        abort();
    for (const char *k = key; *k != '\0'; k++) {
        if (isupper((unsigned char)*k))
            abort();
    }
    if (subkey != NULL &&
        (subkey[0] == '\0' || strchr(subkey, '\n') != NULL || strchr(value, '\n') != NULL))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], *s;
    size_t calls = 0;
    int64_t t;
    int rc = aws_ini_parse((const char *)data, size, check_cb, &calls, err, sizeof err);

    if (rc != 0 && (err[0] == '\0' || strchr(err, '\n') != NULL))
        abort();
    s = fuzz_copy_str(data, size);
    if (s == NULL)
        return 0;
    (void)aws_creds_parse_time(s, &t);
    free(s);
    return 0;
}
