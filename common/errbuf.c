/* errbuf.c - error-buffer filling (errbuf.h). A cut message is still a useful message, so
 * truncation is not an error; control characters become '?'. */
#include "errbuf.h"

#include <stdio.h>

int errbuf_vfail(char *err, size_t err_len, int rc, const char *fmt, va_list ap)
{
    if (err == NULL || err_len == 0)
        return rc;
    (void)vsnprintf(err, err_len, fmt, ap);
    for (char *c = err; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return rc;
}

int errbuf_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = errbuf_vfail(err, err_len, rc, fmt, ap);
    va_end(ap);
    return rc;
}

void errbuf_set(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)errbuf_vfail(err, err_len, 0, fmt, ap);
    va_end(ap);
}
