/* test_azxml.c - the List Blobs scanner on answers as Azurite and Azure write them (entities,
 * markers, empty listings) and on malformed ones (missing fields, Encoded names, bad entities,
 * bad dates, too long names), and the RFC 1123 date parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "array.h"
#include "azxml.h"

struct seen {
    char names[8][64];
    uint64_t sizes[8];
    time_t mtimes[8];
    size_t n;
};

static int seen_cb(void *arg, const struct azxml_blob *b)
{
    struct seen *s = arg;
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof s->names[0], "%.63s", b->name);
        s->sizes[s->n] = b->size;
        s->mtimes[s->n] = b->mtime;
    }
    s->n++;
    return 0;
}

#define HEAD "<?xml version=\"1.0\"?><EnumerationResults ContainerName=\"c\"><Blobs>"
#define BLOB(name, len)                                                                            \
    "<Blob><Name>" name "</Name><Properties><Last-Modified>Thu, 03 Dec 2026 22:10:00 "             \
    "GMT</Last-Modified><Content-Length>" len "</Content-Length></Properties></Blob>"

static void test_good(void **state)
{
    const char *xml = HEAD BLOB("p/a &amp; &lt;b&gt; &quot;&apos;", "40000000")
        BLOB("p/&#x263A;&#65;", "0") "</Blobs><NextMarker>2!104!MDAw&amp;</NextMarker>"
                                     "</EnumerationResults>";
    struct seen s = {0};
    char marker[64];

    (void)state;
    assert_int_equal(azxml_list_blobs(xml, strlen(xml), seen_cb, &s, marker, sizeof marker), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], "p/a & <b> \"'");
    assert_int_equal(s.sizes[0], 40000000);
    assert_int_equal(s.mtimes[0], 1796335800);
    assert_string_equal(s.names[1], "p/\xe2\x98\xba"
                                    "A");
    assert_string_equal(marker, "2!104!MDAw&");
}

static void test_empty_and_last_page(void **state)
{
    const char *a = "<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>";
    const char *b = HEAD BLOB("x", "1") "</Blobs><NextMarker></NextMarker></EnumerationResults>";
    struct seen s = {0};
    char marker[64] = "junk";

    (void)state;
    assert_int_equal(azxml_list_blobs(a, strlen(a), seen_cb, &s, marker, sizeof marker), 0);
    assert_int_equal(s.n, 0);
    assert_string_equal(marker, "");
    assert_int_equal(azxml_list_blobs(b, strlen(b), seen_cb, &s, marker, sizeof marker), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(marker, "");
}

static void test_bad(void **state)
{
    static const char *const bad[] = {
        "<Error><Code>AuthenticationFailed</Code></Error>",
        HEAD "<Blob><Name>x</Name><Properties><Content-Length>1</Content-Length></Properties>"
             "</Blob></Blobs></EnumerationResults>", /* no Last-Modified */
        HEAD "<Blob><Name>x</Name><Properties><Last-Modified>Thu, 03 Dec 2026 22:10:00 GMT"
             "</Last-Modified></Properties></Blob></Blobs></EnumerationResults>", /* no size */
        HEAD "<Blob><Name Encoded=\"true\">%00</Name></Blob></Blobs></EnumerationResults>",
        HEAD BLOB("a &bogus; b", "1") "</Blobs></EnumerationResults>",
        HEAD BLOB("a &#0; b", "1") "</Blobs></EnumerationResults>",
        HEAD BLOB("a &#xD800; b", "1") "</Blobs></EnumerationResults>",
        HEAD BLOB("<![CDATA[x]]>", "1") "</Blobs></EnumerationResults>",
        HEAD BLOB("x", "-1") "</Blobs></EnumerationResults>",
        HEAD BLOB("x", "99999999999999999999999") "</Blobs></EnumerationResults>",
        HEAD "<Blob><Name>x</Name>", /* truncated */
    };
    char marker[64];

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct seen s = {0};
        int rc = azxml_list_blobs(bad[i], strlen(bad[i]), seen_cb, &s, marker, sizeof marker);
        if (rc != -EINVAL)
            fail_msg("bad answer %zu: rc %d", i, rc);
        assert_string_equal(marker, "");
    }
}

static void test_bounds(void **state)
{
    static char xml[200000];
    char marker[8];
    struct seen s = {0};
    size_t o;

    (void)state;
    /* a marker longer than its buffer */
    o = (size_t)snprintf(xml, sizeof xml,
                         HEAD "</Blobs><NextMarker>0123456789</NextMarker></EnumerationResults>");
    assert_int_equal(azxml_list_blobs(xml, o, seen_cb, &s, marker, sizeof marker), -E2BIG);
    /* a name over AZXML_MAX_NAME * 4 bytes */
    o = (size_t)snprintf(xml, sizeof xml, HEAD "<Blob><Name>");
    memset(xml + o, 'n', AZXML_MAX_NAME * 4 + 1);
    o += AZXML_MAX_NAME * 4 + 1;
    o += (size_t)snprintf(xml + o, sizeof xml - o,
                          "</Name><Properties><Last-Modified>Thu, 03 Dec 2026 22:10:00 GMT"
                          "</Last-Modified><Content-Length>1</Content-Length></Properties>"
                          "</Blob></Blobs></EnumerationResults>");
    assert_int_equal(azxml_list_blobs(xml, o, seen_cb, &s, marker, sizeof marker), -E2BIG);
}

static void test_dates(void **state)
{
    time_t t;

    (void)state;
    assert_int_equal(azxml_parse_date("Thu, 03 Dec 2026 22:10:00 GMT", 29, &t), 0);
    assert_int_equal(t, 1796335800);
    assert_int_equal(azxml_parse_date("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(azxml_parse_date("Thu, 03 Dex 2026 22:10:00 GMT", 29, &t), -EINVAL);
    assert_int_equal(azxml_parse_date("Thu, 03 Dec 2026 24:10:00 GMT", 29, &t), -EINVAL);
    assert_int_equal(azxml_parse_date("Thu, 03 Dec 2026 22:10:00 UTC", 29, &t), -EINVAL);
    assert_int_equal(azxml_parse_date("Thu, 3 Dec 2026 22:10:00 GMT", 28, &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),  cmocka_unit_test(test_empty_and_last_page),
        cmocka_unit_test(test_bad),   cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_dates),
    };
    return cmocka_run_group_tests_name("azxml", tests, NULL, NULL);
}
