/* log.h - structured logging: one JSON object per line on stderr.
 *
 * Every line carries "time" (RFC 3339 UTC, ms), "level", "prog", "msg" and any fields the
 * caller adds. Lines are written with a single write(2) so concurrent threads never interleave
 * within a line. Formatting of the fields is cJSON's. */
#ifndef ER_LOG_H
#define ER_LOG_H

#include <cjson/cJSON.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Program name put into every line ("prog"); default "etcd-recovery". Not copied. */
void log_set_program(const char *prog);
/* Lines below this level are dropped. Default LOG_INFO; LOG_LEVEL (debug/info/warn/error) in
 * the env, read at the first line, changes it; a call here wins over LOG_LEVEL. */
void log_set_level(enum log_level level);
/* Redirect output to fd (tests); default 2. */
void log_set_fd(int fd);

/* Log msg with the members of `fields` (a cJSON object, may be NULL). Takes ownership of
 * `fields` and frees it. A field named time/level/prog/msg becomes "fields.<name>"; a
 * non-object `fields` is put under "fields". When the line cannot be built (allocation
 * failure) a minimal line with time, level, prog and msg is written instead. */
void log_event(enum log_level level, const char *msg, cJSON *fields);

/* printf-style message with no extra fields; cut at LOG_MAX_MESSAGE bytes (on a UTF-8
 * character boundary). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Render the line log_event would write into a malloc'd string (no newline; free with
 * cJSON_free); for tests and for programs that print the same object on stdout. Takes
 * ownership of fields. NULL on allocation failure. */
char *log_render(enum log_level level, const char *msg, cJSON *fields);

#endif
