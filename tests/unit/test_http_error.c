/* test_http_error.c - the agent's one JSON error body (http_error_body, http_response_error in
 * agent/http_util.c): its exact shape, escaping, truncation at a character, a buffer too small,
 * and that every rendering parses as JSON with the same error and status. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "http.h"

/* Render, check it parses, that "error" equals want_msg and "status" equals status. */
static void check_parses(const char *body, int status, const char *want_msg)
{
    size_t n = strlen(body);
    assert_true(n > 0);
    assert_int_equal(body[n - 1], '\n');
    cJSON *o = cJSON_Parse(body);
    assert_non_null(o);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "status");
    assert_true(cJSON_IsString(e));
    assert_true(cJSON_IsNumber(s));
    assert_int_equal(s->valueint, status);
    if (want_msg)
        assert_string_equal(e->valuestring, want_msg);
    assert_int_equal(cJSON_GetArraySize(o), 2);
    cJSON_Delete(o);
}

static void test_shape(void **state)
{
    (void)state;
    char b[HTTP_ERROR_BODY_MAX];
    size_t n = http_error_body(b, sizeof b, 404, "not found");
    assert_string_equal(b, "{\"error\":\"not found\",\"status\":404}\n");
    assert_int_equal(n, strlen(b));
    check_parses(b, 404, "not found");
    http_error_body(b, sizeof b, 500, NULL);
    assert_string_equal(b, "{\"error\":\"\",\"status\":500}\n");
}

static void test_escaping(void **state)
{
    (void)state;
    char b[HTTP_ERROR_BODY_MAX];
    http_error_body(b, sizeof b, 400, "bad \"x\" \\ y\n\t\x01");
    assert_string_equal(b, "{\"error\":\"bad \\\"x\\\" \\\\ y\\u000a\\u0009\\u0001\","
                           "\"status\":400}\n");
    check_parses(b, 400, "bad \"x\" \\ y\n\t\x01");
    /* bytes outside ASCII (here invalid UTF-8) become '?', never invalid JSON */
    http_error_body(b, sizeof b, 400, "name \xff\xc3 (\x7f");
    check_parses(b, 400, "name ?? (?");
}

static void test_truncation(void **state)
{
    (void)state;
    char msg[2000];
    memset(msg, '"', sizeof msg - 1); /* every character needs an escape */
    msg[sizeof msg - 1] = '\0';
    char b[HTTP_ERROR_BODY_MAX];
    size_t n = http_error_body(b, sizeof b, 503, msg);
    assert_true(n < sizeof b);
    assert_int_equal(n, strlen(b));
    check_parses(b, 503, NULL);
    /* every size from too small to enough: either empty or a whole, parseable object */
    for (size_t len = 0; len < 64; len++) {
        char s[64];
        memset(s, 'z', sizeof s);
        n = http_error_body(s, len, 429, "a\"b\\c\x02 too many");
        if (len == 0) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_true(n < len);
        assert_int_equal(s[n], '\0');
        if (n > 0)
            check_parses(s, 429, NULL);
        else
            assert_int_equal(s[0], '\0');
    }
}

static void test_response(void **state)
{
    (void)state;
    struct http_response r;
    memset(&r, 0, sizeof r);
    assert_int_equal(http_response_error(&r, 405, "method not allowed"), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(r.body);
    char *body = strndup(r.body, r.body_len);
    check_parses(body, 405, "method not allowed");
    free(body);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
