/* log.c - structured logging: builds one JSON object per line with cJSON and writes it with a
 * single write(2). What to log and which fields to attach is the callers' business; reading
 * flags for the level is config's (LOG_LEVEL from the environment is read here). */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "hex.h"

#define LOG_DEFAULT_PROGRAM "etcd-recovery"

static _Atomic(const char *) log_program = LOG_DEFAULT_PROGRAM;
static atomic_int log_level = LOG_INFO;
static atomic_int log_fd = 2;
/* Set once log_set_level was called: an explicit level beats LOG_LEVEL. */
static atomic_bool log_level_explicit = false;
static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

static const char *level_name(enum log_level level)
{
    if ((int)level < LOG_DEBUG || level > LOG_ERROR)
        return "error";
    return log_level_names[level];
}

static void log_read_env(void)
{
    const char *v = getenv("LOG_LEVEL");
    int level = -1;

    if (v == NULL || atomic_load(&log_level_explicit))
        return;
    if (strcasecmp(v, "debug") == 0)
        level = LOG_DEBUG;
    else if (strcasecmp(v, "info") == 0)
        level = LOG_INFO;
    else if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0)
        level = LOG_WARN;
    else if (strcasecmp(v, "error") == 0)
        level = LOG_ERROR;
    if (level >= 0)
        atomic_store(&log_level, level);
}

void log_set_program(const char *prog)
{
    atomic_store(&log_program, prog != NULL ? prog : LOG_DEFAULT_PROGRAM);
}

void log_set_level(enum log_level level)
{
    /* Run the env reader first so that it can never overwrite this later. */
    atomic_store(&log_level_explicit, true);
    pthread_once(&log_env_once, log_read_env);
    if ((int)level < LOG_DEBUG)
        level = LOG_DEBUG;
    if (level > LOG_ERROR)
        level = LOG_ERROR;
    atomic_store(&log_level, (int)level);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

static void format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(buf, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || n >= len) {
        snprintf(buf, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(buf + n, len - n, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
}

/* Caller fields named like ours would make duplicate keys; they get a "fields." prefix. */
static bool reserved_key(const char *key)
{
    return strcmp(key, "time") == 0 || strcmp(key, "level") == 0 || strcmp(key, "prog") == 0 ||
           strcmp(key, "msg") == 0;
}

static bool move_fields(cJSON *obj, cJSON *fields)
{
    char key[128];

    if (!cJSON_IsObject(fields)) {
        cJSON *copy = cJSON_Duplicate(fields, true);

        if (copy == NULL)
            return false;
        if (!cJSON_AddItemToObject(obj, "fields", copy)) {
            cJSON_Delete(copy);
            return false;
        }
        return true;
    }
    while (fields->child != NULL) {
        cJSON *item = cJSON_DetachItemViaPointer(fields, fields->child);
        const char *name = item->string != NULL ? item->string : "";
        bool ok;

        if (reserved_key(name)) {
            snprintf(key, sizeof key, "fields.%s", name);
            name = key;
        }
        /* cJSON copies the key before freeing the item's old one. */
        ok = cJSON_AddItemToObject(obj, name, item);
        if (!ok) {
            cJSON_Delete(item);
            return false;
        }
    }
    return true;
}

char *log_render(enum log_level level, const char *msg, cJSON *fields)
{
    char tbuf[LOG_TIME_LEN];
    cJSON *obj = NULL;
    char *out = NULL;

    format_time(tbuf, sizeof tbuf);
    obj = cJSON_CreateObject();
    if (obj == NULL)
        goto out;
    if (cJSON_AddStringToObject(obj, "time", tbuf) == NULL ||
        cJSON_AddStringToObject(obj, "level", level_name(level)) == NULL ||
        cJSON_AddStringToObject(obj, "prog", atomic_load(&log_program)) == NULL ||
        cJSON_AddStringToObject(obj, "msg", msg != NULL ? msg : "") == NULL)
        goto out;
    if (fields != NULL && !move_fields(obj, fields))
        goto out;
    out = cJSON_PrintUnformatted(obj);
out:
    cJSON_Delete(obj);
    cJSON_Delete(fields);
    return out;
}

/* A cut message must not end inside a UTF-8 sequence (the line would be invalid JSON text). */
static void utf8_trim(char *buf)
{
    size_t len = strlen(buf), i = len;

    while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && ((unsigned char)buf[i - 1] & 0x80) != 0) {
        unsigned char lead = (unsigned char)buf[i - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;

        if (len - (i - 1) < need)
            buf[i - 1] = '\0';
    }
}

/* Append s to buf as the inside of a JSON string, escaping what JSON requires. */
static size_t json_escape(char *buf, size_t pos, size_t cap, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t n = 0;

        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c < 0x20) {
            esc[n++] = '\\';
            esc[n++] = 'u';
            esc[n++] = '0';
            esc[n++] = '0';
            esc[n++] = hex_digits[c >> 4];
            esc[n++] = hex_digits[c & 0xf];
        } else {
            esc[n++] = (char)c;
        }
        if (pos + n >= cap) {
            buf[pos] = '\0';
            utf8_trim(buf);
            return strlen(buf);
        }
        memcpy(buf + pos, esc, n);
        pos += n;
    }
    buf[pos] = '\0';
    return pos;
}

static size_t append(char *buf, size_t pos, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (pos + n >= cap)
        n = cap - pos - 1;
    memcpy(buf + pos, s, n);
    buf[pos + n] = '\0';
    return pos + n;
}

/* The line we still manage to write when cJSON or malloc fail: no fields, msg possibly cut. */
static size_t fallback_line(char *buf, size_t cap, enum log_level level, const char *msg)
{
    char tbuf[LOG_TIME_LEN];
    size_t pos = 0;

    format_time(tbuf, sizeof tbuf);
    /* Reserve room for the closing "\"}\n" so the line is always valid JSON. */
    pos = append(buf, pos, cap - 4, "{\"time\":\"");
    pos = append(buf, pos, cap - 4, tbuf);
    pos = append(buf, pos, cap - 4, "\",\"level\":\"");
    pos = append(buf, pos, cap - 4, level_name(level));
    pos = append(buf, pos, cap - 4, "\",\"prog\":\"");
    pos = json_escape(buf, pos, cap - 4, atomic_load(&log_program));
    pos = append(buf, pos, cap - 4, "\",\"msg\":\"");
    pos = json_escape(buf, pos, cap - 4, msg);
    return append(buf, pos, cap, "\"}\n");
}

static void write_line(const char *buf, size_t len)
{
    int fd = atomic_load(&log_fd);

    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to report it */
        buf += n;
        len -= (size_t)n;
    }
}

static bool enabled(enum log_level level)
{
    pthread_once(&log_env_once, log_read_env);
    return (int)level >= atomic_load(&log_level);
}

void log_event(enum log_level level, const char *msg, cJSON *fields)
{
    char fb[LOG_FALLBACK_LINE];
    char *line, *withnl;
    size_t len;

    if (!enabled(level)) {
        cJSON_Delete(fields);
        return;
    }
    line = log_render(level, msg, fields);
    if (line == NULL) {
        len = fallback_line(fb, sizeof fb, level, msg);
        write_line(fb, len);
        return;
    }
    /* One write(2) needs the newline in the same buffer. Allocation goes through cJSON's hooks
     * like everything else here, so a test can make any of them fail. */
    len = strlen(line);
    withnl = cJSON_malloc(len + 1);
    if (withnl == NULL) {
        cJSON_free(line);
        len = fallback_line(fb, sizeof fb, level, msg);
        write_line(fb, len);
        return;
    }
    memcpy(withnl, line, len);
    withnl[len] = '\n';
    cJSON_free(line);
    write_line(withnl, len + 1);
    cJSON_free(withnl);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char buf[LOG_MAX_MESSAGE];
    va_list ap;
    int n;

    if (!enabled(level))
        return;
    if (fmt == NULL) {
        buf[0] = '\0';
    } else {
        va_start(ap, fmt);
        /* A longer message is cut; the line stays well-formed. */
        n = vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (n < 0)
            buf[0] = '\0';
        else if ((size_t)n >= sizeof buf)
            utf8_trim(buf);
    }
    log_event(level, buf, NULL);
}
