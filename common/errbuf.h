/* errbuf.h - the one way to fill a caller's error buffer (`char *err, size_t err_len`): printf
 * formatted, cut to the buffer, on one printable line (quoted input and a server's answer cannot
 * split a log line). Callers own the buffer; NULL or 0 bytes means "no message wanted". */
#ifndef ETCD_RECOVERY_ERRBUF_H
#define ETCD_RECOVERY_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* Fills err and returns rc, so a failure path is `return errbuf_fail(err, len, -EINVAL, ...)`. */
int errbuf_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int errbuf_vfail(char *err, size_t err_len, int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* Fills err; for functions that report failure by other means (NULL, false). */
void errbuf_set(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
