/* test_access: the access-log line of one request, as written to the file
 * (log_open to a temp file, access_log, log_access_flush, read it back):
 * the combined log format, then pid=, tid=, start=SEC.USEC and us=, with
 * peer-controlled text escaped so that it can never break the line or its
 * quoting. */
#include "access.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "forkd.h"
#include "http.h"
#include "log.h"

#define ACCESS_TEST_FIELDS 16

/* One directory for the suite, made and removed by the runner (unchecked
 * fixture) so that failing tests leave nothing behind. */
static char access_test_dir[64];

static void
access_test_make_dir(void)
{
    strcpy(access_test_dir, "/tmp/forkd-test-access-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(access_test_dir));
}

static void
access_test_remove_dir(void)
{
    test_rmdir(access_test_dir);
}

static const struct http_limits access_test_lim = {
    .line = 8190,
    .fields = ACCESS_TEST_FIELDS,
    .field_size = 8190,
    .head = 32768,
    .body = 0,
};

struct access_test {
    char path[128];
    char *buf; /* the parsed head, or NULL */
    struct http_header headers[ACCESS_TEST_FIELDS];
    struct http_head head;
};

/* Open the access log at a fresh file named after the test. */
static void
access_test_open(struct access_test *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->path, sizeof(t->path), "%s/%s.log", access_test_dir, name);
    (void)unlink(t->path); /* a file of an earlier run */
    ck_assert_int_eq(log_open(NULL, t->path, FORKD_LOG_INFO), 0);
    ck_assert(log_has_access());
}

/* Parse req (a whole head) into t->head, in a heap copy. */
static void
access_test_head(struct access_test *t, const char *req)
{
    struct http_scan s;
    size_t head_len = 0;
    int status = 0;

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(http_scan_head(&s, req, strlen(req), &access_test_lim,
                                    &head_len, &status),
                     HTTP_SCAN_DONE);
    t->buf = malloc(head_len);
    ck_assert_ptr_nonnull(t->buf);
    memcpy(t->buf, req, head_len);
    ck_assert_int_eq(http_parse_head(&t->head, t->buf, head_len, t->headers,
                                     &access_test_lim),
                     0);
}

/* The whole file (NUL-terminated, caller frees). */
static char *
access_test_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s = malloc(65536);
    size_t n;

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(s);
    n = fread(s, 1, 65535, f);
    fclose(f);
    s[n] = '\0';
    return s;
}

/* Flush the access log; the file must now hold exactly want. */
static void
access_test_expect(struct access_test *t, const char *want)
{
    char *got;

    log_access_flush();
    got = access_test_slurp(t->path);
    ck_assert_str_eq(got, want);
    free(got);
}

static void
access_test_done(struct access_test *t)
{
    log_close();
    free(t->buf);
    t->buf = NULL;
}

/* 1700000000 is 2023-11-14T22:13:20Z. */
#define ACCESS_TEST_START 1700000000123456ull

START_TEST(test_access_combined_line)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "192.0.2.7",
        .referer = "http://example.com/from?q=1",
        .user_agent = "curl/8.5.0",
        .status = 200,
        .body_bytes = 1234,
        .start_us = ACCESS_TEST_START,
        .dur_us = 789,
        .pid = 4242,
        .tid = 3,
    };

    access_test_open(&t, "combined");
    access_test_head(&t, "GET /a/b?x=1&y HTTP/1.1\r\n"
                         "Host: example.com\r\n"
                         "\r\n");
    e.head = &t.head;
    access_log(&e);
    access_test_expect(&t, "192.0.2.7 - - [14/Nov/2023:22:13:20 +0000] "
                           "\"GET /a/b?x=1&y HTTP/1.1\" 200 1234 "
                           "\"http://example.com/from?q=1\" \"curl/8.5.0\" "
                           "pid=4242 tid=3 start=1700000000.123456 us=789\n");
    access_test_done(&t);
}
END_TEST

/* Microseconds always have 6 digits; the epoch itself works. */
START_TEST(test_access_start_usec_padded)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "10.0.0.1",
        .status = 404,
        .start_us = 1700000000000042ull,
        .dur_us = 0,
        .pid = 1,
        .tid = 0,
    };

    access_test_open(&t, "usec");
    access_log(&e);
    e.start_us = 0;
    e.status = 500;
    e.body_bytes = UINT64_MAX;
    e.dur_us = 1000000;
    access_log(&e);
    access_test_expect(
        &t, "10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"-\" 404 0 \"-\" "
            "\"-\" pid=1 tid=0 start=1700000000.000042 us=0\n"
            "10.0.0.1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 500 "
            "18446744073709551615 \"-\" \"-\" pid=1 tid=0 start=0.000000 "
            "us=1000000\n");
    access_test_done(&t);
}
END_TEST

/* No request line (a 400 before one was parsed), no referer, no user
 * agent: "-" each; an empty header is "-" too. */
START_TEST(test_access_missing_fields)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "unix:",
        .head = NULL,
        .referer = NULL,
        .user_agent = NULL,
        .status = 400,
        .start_us = ACCESS_TEST_START,
        .dur_us = 12,
        .pid = 7,
        .tid = 1,
    };

    access_test_open(&t, "missing");
    access_log(&e);
    e.referer = "";
    e.user_agent = "";
    access_log(&e);
    access_test_expect(&t, "unix: - - [14/Nov/2023:22:13:20 +0000] \"-\" 400 0 "
                           "\"-\" \"-\" pid=7 tid=1 start=1700000000.123456 "
                           "us=12\n"
                           "unix: - - [14/Nov/2023:22:13:20 +0000] \"-\" 400 0 "
                           "\"-\" \"-\" pid=7 tid=1 start=1700000000.123456 "
                           "us=12\n");
    access_test_done(&t);
}
END_TEST

/* Quotes, backslashes, control bytes and bytes past ASCII from the peer
 * come out as \xHH: the line stays one line with balanced quotes. */
START_TEST(test_access_escapes)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "::1",
        .referer = "a\"b\\c",
        .user_agent = "x\ny\rz\t\x01\x1f\x7f\x80\xff\" end",
        .status = 200,
        .body_bytes = 5,
        .start_us = ACCESS_TEST_START,
        .dur_us = 1,
        .pid = 2,
        .tid = 0,
    };

    access_test_open(&t, "escapes");
    access_log(&e);
    access_test_expect(
        &t, "::1 - - [14/Nov/2023:22:13:20 +0000] \"-\" 200 5 "
            "\"a\\x22b\\x5Cc\" "
            "\"x\\x0Ay\\x0Dz\\x09\\x01\\x1F\\x7F\\x80\\xFF\\x22 end\" "
            "pid=2 tid=0 start=1700000000.123456 us=1\n");
    access_test_done(&t);
}
END_TEST

/* access_log_format = combined: the combined log format and nothing
 * after it. */
START_TEST(test_access_format_combined)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "192.0.2.7",
        .user_agent = "curl/8.5.0",
        .status = 200,
        .body_bytes = 14,
        .start_us = ACCESS_TEST_START,
        .dur_us = 789,
        .pid = 4242,
        .tid = 3,
        .format = ACCESS_COMBINED,
    };

    access_test_open(&t, "fmt-combined");
    access_test_head(&t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    e.head = &t.head;
    access_log(&e);
    access_test_expect(&t, "192.0.2.7 - - [14/Nov/2023:22:13:20 +0000] "
                           "\"GET / HTTP/1.1\" 200 14 \"-\" "
                           "\"curl/8.5.0\"\n");
    access_test_done(&t);
}
END_TEST

/* access_log_format = json: one object per line, every key, null for
 * what is missing, peer bytes as \u00XX so that the line is valid JSON. */
START_TEST(test_access_format_json)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "::1",
        .user_agent = "caf\xe9 \"q\" \\ \x01",
        .status = 201,
        .body_bytes = 7,
        .start_us = ACCESS_TEST_START,
        .dur_us = 55,
        .pid = 12,
        .tid = 13,
        .format = ACCESS_JSON,
        .request_id = "abc-1",
    };

    access_test_open(&t, "fmt-json");
    access_test_head(&t, "POST /p%20q?a=1&b HTTP/1.0\r\n\r\n");
    e.head = &t.head;
    access_log(&e);
    e.head = NULL;
    e.user_agent = NULL;
    e.request_id = NULL;
    e.status = 400;
    access_log(&e);
    access_test_expect(
        &t, "{\"time\":\"2023-11-14T22:13:20.123456Z\",\"remote\":\"::1\","
            "\"method\":\"POST\",\"path\":\"/p%20q\",\"query\":\"a=1&b\","
            "\"protocol\":\"HTTP/1.0\",\"status\":201,\"bytes\":7,"
            "\"duration_us\":55,\"pid\":12,\"tid\":13,"
            "\"user_agent\":\"caf\\u00e9 \\\"q\\\" \\\\ \\u0001\","
            "\"referer\":null,\"request_id\":\"abc-1\"}\n"
            "{\"time\":\"2023-11-14T22:13:20.123456Z\",\"remote\":\"::1\","
            "\"method\":null,\"path\":null,\"query\":null,"
            "\"protocol\":null,\"status\":400,\"bytes\":7,"
            "\"duration_us\":55,\"pid\":12,\"tid\":13,"
            "\"user_agent\":null,\"referer\":null,\"request_id\":null}\n");
    access_test_done(&t);
}
END_TEST

/* A long user agent is cut, never the line: still one line with every
 * field after it. */
START_TEST(test_access_long_fields)
{
    struct access_test t;
    char ua[4000], ref[4000], *got, *nl;
    struct access_entry e = {
        .remote_addr = "192.0.2.1",
        .status = 200,
        .start_us = ACCESS_TEST_START,
        .dur_us = 3,
        .pid = 9,
        .tid = 2,
    };

    memset(ua, 'u', sizeof(ua) - 1);
    ua[sizeof(ua) - 1] = '\0';
    memset(ref, '"', sizeof(ref) - 1); /* every byte escaped */
    ref[sizeof(ref) - 1] = '\0';
    e.user_agent = ua;
    e.referer = ref;
    access_test_open(&t, "long");
    access_log(&e);
    log_access_flush();
    got = access_test_slurp(t.path);
    nl = strchr(got, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_str_eq(nl + 1, ""); /* one line */
    ck_assert_uint_lt(strlen(got), 2048);
    ck_assert_ptr_nonnull(
        strstr(got, " pid=9 tid=2 start=1700000000.123456 us=3\n"));
    /* No escape is cut in half. */
    ck_assert_ptr_nonnull(strstr(got, "\\x22\" \"uuu"));
    ck_assert_ptr_nonnull(strstr(got, "uuu\" pid=9"));
    free(got);
    access_test_done(&t);
}
END_TEST

/* Lines are buffered until the thread flushes, and keep their order. */
START_TEST(test_access_buffered)
{
    struct access_test t;
    struct access_entry e = {
        .remote_addr = "192.0.2.1",
        .status = 204,
        .start_us = ACCESS_TEST_START,
        .pid = 1,
        .tid = 0,
    };
    char *got;

    access_test_open(&t, "buffered");
    access_test_head(&t, "HEAD /x HTTP/1.0\r\n\r\n");
    e.head = &t.head;
    access_log(&e);
    e.status = 304;
    access_log(&e);
    got = access_test_slurp(t.path);
    ck_assert_str_eq(got, ""); /* not yet */
    free(got);
    access_test_expect(&t, "192.0.2.1 - - [14/Nov/2023:22:13:20 +0000] "
                           "\"HEAD /x HTTP/1.0\" 204 0 \"-\" \"-\" pid=1 "
                           "tid=0 start=1700000000.123456 us=0\n"
                           "192.0.2.1 - - [14/Nov/2023:22:13:20 +0000] "
                           "\"HEAD /x HTTP/1.0\" 304 0 \"-\" \"-\" pid=1 "
                           "tid=0 start=1700000000.123456 us=0\n");
    access_test_done(&t);
}
END_TEST

/* Without an access log, access_log writes nothing anywhere. */
START_TEST(test_access_no_log)
{
    struct access_entry e = {
        .remote_addr = "192.0.2.1",
        .status = 200,
        .start_us = ACCESS_TEST_START,
    };

    ck_assert_int_eq(log_open(NULL, NULL, FORKD_LOG_INFO), 0);
    ck_assert(!log_has_access());
    access_log(&e);
    log_access_flush();
    log_close();
}
END_TEST

static Suite *
access_suite(void)
{
    Suite *s = suite_create("access");
    TCase *tc = tcase_create("access");

    tcase_add_unchecked_fixture(tc, access_test_make_dir,
                                access_test_remove_dir);
    tcase_add_test(tc, test_access_combined_line);
    tcase_add_test(tc, test_access_start_usec_padded);
    tcase_add_test(tc, test_access_missing_fields);
    tcase_add_test(tc, test_access_escapes);
    tcase_add_test(tc, test_access_format_combined);
    tcase_add_test(tc, test_access_format_json);
    tcase_add_test(tc, test_access_long_fields);
    tcase_add_test(tc, test_access_buffered);
    tcase_add_test(tc, test_access_no_log);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(access_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
