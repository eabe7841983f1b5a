/* test_environ: the CGI/WSGI variables of a request, on a struct forkd_req
 * set up by hand as a worker would: arena, connection, parsed head,
 * environ_setup. */
#include "environ.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cfg.h"
#include "conn.h"
#include "forkd.h"
#include "http.h"
#include "req.h"

#define ENVIRON_TEST_FIELDS 32

struct environ_test {
    struct forkd_req req;
    struct conn conn;
    struct cfg cfg;
    struct http_limits lim;
    struct http_header headers[ENVIRON_TEST_FIELDS];
    char *buf; /* the head, exactly its length */
};

/* Parse head into t->req and run environ_setup; returns its status. */
static int
environ_test_init(struct environ_test *t, const char *head)
{
    struct http_scan scan;
    size_t head_len = 0;
    int status = 0;

    memset(t, 0, sizeof(*t));
    ck_assert_int_eq(cfg_init(&t->cfg), 0);
    ck_assert_int_eq(arena_init(&t->req.arena, 4096), 0);
    t->lim.line = t->cfg.limit_request_line;
    t->lim.fields = ENVIRON_TEST_FIELDS;
    t->lim.field_size = t->cfg.limit_request_field_size;
    t->lim.head = t->cfg.limit_request_head;
    t->lim.body = t->cfg.limit_request_body;
    t->conn.fd = -1;
    strcpy(t->conn.remote_addr, "192.0.2.7");
    strcpy(t->conn.remote_port, "54321");
    t->conn.server_name = "10.0.0.1";
    t->conn.server_port = "8000";
    t->req.conn = &t->conn;
    t->req.cfg = &t->cfg;
    t->req.limits = &t->lim;
    t->req.headers = t->headers;

    memset(&scan, 0, sizeof(scan));
    ck_assert_int_eq(
        http_scan_head(&scan, head, strlen(head), &t->lim, &head_len, &status),
        HTTP_SCAN_DONE);
    t->buf = malloc(head_len);
    ck_assert_ptr_nonnull(t->buf);
    memcpy(t->buf, head, head_len);
    ck_assert_int_eq(
        http_parse_head(&t->req.head, t->buf, head_len, t->headers, &t->lim),
        0);
    return environ_setup(&t->req);
}

static void
environ_test_fini(struct environ_test *t)
{
    arena_fini(&t->req.arena);
    cfg_fini(&t->cfg);
    free(t->buf);
}

static void
environ_test_assert_env(struct forkd_req *req, const char *name,
                        const char *want)
{
    const char *got = forkd_getenv(req, name);

    if (want == NULL) {
        ck_assert_msg(got == NULL, "%s = \"%s\", expected none", name, got);
        return;
    }
    ck_assert_msg(got != NULL, "%s missing, expected \"%s\"", name, want);
    ck_assert_msg(strcmp(got, want) == 0, "%s = \"%s\", expected \"%s\"", name,
                  got, want);
}

/* The value of name in the iteration, or NULL; fails if it is there twice. */
static const char *
environ_test_iter_find(struct forkd_req *req, const char *name)
{
    const char *n, *v, *found = NULL;
    size_t iter = 0;
    int count = 0;

    while (forkd_environ_next(req, &iter, &n, &v)) {
        if (strcmp(n, name) == 0) {
            found = v;
            count++;
        }
    }
    ck_assert_msg(count <= 1, "%s iterated %d times", name, count);
    return found;
}

/* --- environ_decode_path ------------------------------------------------ */

static void
environ_test_decode(const char *path, const char *want, int want_status)
{
    struct arena a;
    int status = 0;
    char *got;

    ck_assert_int_eq(arena_init(&a, 256), 0);
    got = environ_decode_path(&a, path, strlen(path), &status);
    if (want == NULL) {
        ck_assert_msg(got == NULL, "\"%s\" decoded to \"%s\"", path, got);
        ck_assert_int_eq(status, want_status);
    } else {
        ck_assert_msg(got != NULL, "\"%s\" refused (%d)", path, status);
        ck_assert_str_eq(got, want);
    }
    arena_fini(&a);
}

START_TEST(test_environ_decode_path)
{
    environ_test_decode("/a%20b", "/a b", 0);
    environ_test_decode("%2F", "/", 0);
    environ_test_decode("/a%2fb", "/a/b", 0);
    environ_test_decode("%41%42c", "ABc", 0);
    environ_test_decode("/%e9t%C3%A9", "/\xe9t\xc3\xa9", 0);
    environ_test_decode("/a+b", "/a+b", 0); /* '+' is not a space in paths */
    environ_test_decode("/plain", "/plain", 0);
    environ_test_decode("", "", 0);
}
END_TEST

START_TEST(test_environ_decode_path_invalid)
{
    environ_test_decode("/a%00b", NULL, 400);
    environ_test_decode("%00", NULL, 400);
    environ_test_decode("/%4", NULL, 400);
    environ_test_decode("%4", NULL, 400);
    environ_test_decode("/%", NULL, 400);
    environ_test_decode("/%zz", NULL, 400);
    environ_test_decode("/%4g", NULL, 400);
    environ_test_decode("/%g4", NULL, 400);
    environ_test_decode("/% 4", NULL, 400);
}
END_TEST

START_TEST(test_environ_decode_path_len)
{
    struct arena a;
    int status = 0;
    char *got;

    /* Only path[0..len) counts: the rest may be anything. */
    ck_assert_int_eq(arena_init(&a, 256), 0);
    got = environ_decode_path(&a, "/ab%zz", 3, &status);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "/ab");
    /* An escape cut by len is invalid, not read past len. */
    got = environ_decode_path(&a, "/a%41", 4, &status);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(status, 400);
    arena_fini(&a);
}
END_TEST

/* --- the request variables ----------------------------------------------- */

START_TEST(test_environ_request_variables)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "GET /a%20b/c?x=%20&y=+ HTTP/1.1\r\n"
                                           "Host: example.com:8080\r\n"
                                           "User-Agent: test/1.0\r\n"
                                           "\r\n"),
                     0);
    environ_test_assert_env(&t.req, "REQUEST_METHOD", "GET");
    environ_test_assert_env(&t.req, "SCRIPT_NAME", "");
    environ_test_assert_env(&t.req, "PATH_INFO", "/a b/c");
    environ_test_assert_env(&t.req, "QUERY_STRING", "x=%20&y=+");
    environ_test_assert_env(&t.req, "REQUEST_URI", "/a%20b/c?x=%20&y=+");
    environ_test_assert_env(&t.req, "SERVER_PROTOCOL", "HTTP/1.1");
    environ_test_assert_env(&t.req, "SERVER_NAME", "example.com");
    environ_test_assert_env(&t.req, "SERVER_PORT", "8000");
    environ_test_assert_env(&t.req, "REMOTE_ADDR", "192.0.2.7");
    environ_test_assert_env(&t.req, "REMOTE_PORT", "54321");
    environ_test_assert_env(&t.req, "HTTP_HOST", "example.com:8080");
    environ_test_assert_env(&t.req, "HTTP_USER_AGENT", "test/1.0");
    environ_test_assert_env(&t.req, "wsgi.url_scheme", "http");
    environ_test_assert_env(&t.req, "wsgi.multithread", "false");
    environ_test_assert_env(&t.req, "wsgi.multiprocess", "false");
    environ_test_assert_env(&t.req, "CONTENT_TYPE", NULL);
    environ_test_assert_env(&t.req, "CONTENT_LENGTH", NULL);
    ck_assert_str_eq(t.req.path_info, "/a b/c");
    environ_test_fini(&t);
}
END_TEST

START_TEST(test_environ_multiprocess)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                     0);
    t.req.multiprocess = 1;
    environ_test_assert_env(&t.req, "wsgi.multiprocess", "true");
    environ_test_fini(&t);
}
END_TEST

START_TEST(test_environ_setup_bad_path)
{
    struct environ_test t;

    ck_assert_int_eq(
        environ_test_init(&t, "GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    environ_test_fini(&t);
    ck_assert_int_eq(
        environ_test_init(&t, "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    environ_test_fini(&t);
}
END_TEST

START_TEST(test_environ_unknown_names)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                     0);
    environ_test_assert_env(&t.req, "NOPE", NULL);
    environ_test_assert_env(&t.req, "request_method", NULL);
    environ_test_assert_env(&t.req, "HTTP_", NULL);
    environ_test_assert_env(&t.req, "HTTP_NOPE", NULL);
    environ_test_assert_env(&t.req, "HTTP_HOS", NULL);
    environ_test_assert_env(&t.req, "HTTP_HOSTX", NULL);
    ck_assert_ptr_null(forkd_getenv(&t.req, NULL));
    environ_test_fini(&t);
}
END_TEST

/* --- SERVER_NAME and SERVER_PORT ------------------------------------------ */

/* SERVER_NAME comes from Host (or an absolute-form target), else the
 * listener; SERVER_PORT is always the port the request came in on (RFC 3875
 * 4.1.15), here the connection's "8000", whatever Host claims. */
static void
environ_test_server(const char *head, const char *name)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, head), 0);
    environ_test_assert_env(&t.req, "SERVER_NAME", name);
    environ_test_assert_env(&t.req, "SERVER_PORT", "8000");
    environ_test_fini(&t);
}

START_TEST(test_environ_server_from_host)
{
    environ_test_server("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                        "example.com");
    environ_test_server("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
                        "example.com");
    environ_test_server("GET / HTTP/1.1\r\nHost: 192.0.2.1:81\r\n\r\n",
                        "192.0.2.1");
}
END_TEST

START_TEST(test_environ_server_ipv6_host)
{
    environ_test_server("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "[::1]");
    environ_test_server("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", "[::1]");
    environ_test_server("GET / HTTP/1.1\r\nHost: [2001:db8::7]:9\r\n\r\n",
                        "[2001:db8::7]");
}
END_TEST

START_TEST(test_environ_server_without_host)
{
    /* HTTP/1.0 without Host: the listening socket's name and port. */
    environ_test_server("GET / HTTP/1.0\r\n\r\n", "10.0.0.1");
}
END_TEST

START_TEST(test_environ_server_absolute_form)
{
    environ_test_server("GET http://target.example:9090/p HTTP/1.1\r\n"
                        "Host: header.example\r\n\r\n",
                        "target.example");
}
END_TEST

START_TEST(test_environ_server_port_is_listener)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\n"
                                           "Host: example.com:8080\r\n\r\n"),
                     0);
    t.conn.server_port = "4443";
    environ_test_assert_env(&t.req, "SERVER_PORT", "4443");
    environ_test_assert_env(&t.req, "HTTP_HOST", "example.com:8080");
    environ_test_fini(&t);
}
END_TEST

/* --- HTTP_ variables ------------------------------------------------------ */

START_TEST(test_environ_repeated_header_joined)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\n"
                                           "Host: a\r\n"
                                           "X-A: 1\r\n"
                                           "X-B: other\r\n"
                                           "x-a: 2\r\n"
                                           "\r\n"),
                     0);
    environ_test_assert_env(&t.req, "HTTP_X_A", "1, 2");
    environ_test_assert_env(&t.req, "HTTP_X_B", "other");
    ck_assert_str_eq(environ_test_iter_find(&t.req, "HTTP_X_A"), "1, 2");
    environ_test_fini(&t);

    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\n"
                                           "Host: a\r\n"
                                           "Accept: a/b\r\n"
                                           "Accept: c/d\r\n"
                                           "ACCEPT: e/f\r\n"
                                           "\r\n"),
                     0);
    environ_test_assert_env(&t.req, "HTTP_ACCEPT", "a/b, c/d, e/f");
    environ_test_fini(&t);
}
END_TEST

/* "X_A" would pass for "X-A" in the environ (spoofing a header a proxy
 * sets): such headers are left out. */
START_TEST(test_environ_underscore_header_dropped)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\n"
                                           "Host: a\r\n"
                                           "X_Forwarded_For: 6.6.6.6\r\n"
                                           "X-Forwarded-For: 192.0.2.1\r\n"
                                           "Only_Under: x\r\n"
                                           "\r\n"),
                     0);
    environ_test_assert_env(&t.req, "HTTP_X_FORWARDED_FOR", "192.0.2.1");
    environ_test_assert_env(&t.req, "HTTP_ONLY_UNDER", NULL);
    ck_assert_str_eq(environ_test_iter_find(&t.req, "HTTP_X_FORWARDED_FOR"),
                     "192.0.2.1");
    ck_assert_ptr_null(environ_test_iter_find(&t.req, "HTTP_ONLY_UNDER"));
    environ_test_fini(&t);
}
END_TEST

START_TEST(test_environ_content_headers)
{
    struct environ_test t;

    ck_assert_int_eq(environ_test_init(&t, "POST /p HTTP/1.1\r\n"
                                           "Host: a\r\n"
                                           "Content-Type: text/plain\r\n"
                                           "Content-Length: 3\r\n"
                                           "\r\n"),
                     0);
    environ_test_assert_env(&t.req, "CONTENT_TYPE", "text/plain");
    environ_test_assert_env(&t.req, "CONTENT_LENGTH", "3");
    environ_test_assert_env(&t.req, "HTTP_CONTENT_TYPE", NULL);
    environ_test_assert_env(&t.req, "HTTP_CONTENT_LENGTH", NULL);
    ck_assert_str_eq(environ_test_iter_find(&t.req, "CONTENT_TYPE"),
                     "text/plain");
    ck_assert_str_eq(environ_test_iter_find(&t.req, "CONTENT_LENGTH"), "3");
    ck_assert_ptr_null(environ_test_iter_find(&t.req, "HTTP_CONTENT_TYPE"));
    ck_assert_ptr_null(environ_test_iter_find(&t.req, "HTTP_CONTENT_LENGTH"));
    environ_test_fini(&t);

    /* Not sent: not there at all (not ""). */
    ck_assert_int_eq(environ_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                     0);
    ck_assert_ptr_null(environ_test_iter_find(&t.req, "CONTENT_TYPE"));
    ck_assert_ptr_null(environ_test_iter_find(&t.req, "CONTENT_LENGTH"));
    environ_test_fini(&t);
}
END_TEST

/* --- iteration ------------------------------------------------------------ */

START_TEST(test_environ_iteration_each_once)
{
    static const char *const want[] = {
        "REQUEST_METHOD",   "SCRIPT_NAME",      "PATH_INFO",
        "QUERY_STRING",     "REQUEST_URI",      "SERVER_PROTOCOL",
        "CONTENT_TYPE",     "CONTENT_LENGTH",   "SERVER_NAME",
        "SERVER_PORT",      "REMOTE_ADDR",      "REMOTE_PORT",
        "wsgi.url_scheme",  "wsgi.multithread", "wsgi.multiprocess",
        "HTTP_HOST",        "HTTP_X_A",         "HTTP_ACCEPT",
        "HTTP_X_LONG_NAME",
    };
    const size_t n_want = sizeof(want) / sizeof(want[0]);
    struct environ_test t;
    const char *names[64], *name, *value;
    size_t iter = 0, n = 0;

    ck_assert_int_eq(environ_test_init(&t, "PUT /x?q HTTP/1.1\r\n"
                                           "Host: h:1\r\n"
                                           "X-A: 1\r\n"
                                           "Accept: */*\r\n"
                                           "Content-Length: 0\r\n"
                                           "x-a: 2\r\n"
                                           "Content-Type: a/b\r\n"
                                           "X-Long-Name: v\r\n"
                                           "Bad_Name: v\r\n"
                                           "X-A: 3\r\n"
                                           "\r\n"),
                     0);
    while (n < 64 && forkd_environ_next(&t.req, &iter, &name, &value)) {
        ck_assert_ptr_nonnull(name);
        ck_assert_ptr_nonnull(value);
        /* The iteration agrees with forkd_getenv. */
        const char *direct = forkd_getenv(&t.req, name);
        ck_assert_msg(direct != NULL && strcmp(direct, value) == 0,
                      "%s: iterated \"%s\", getenv \"%s\"", name, value,
                      direct ? direct : "(null)");
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(strcmp(names[j], name) != 0, "%s twice", name);
        names[n++] = name;
    }
    ck_assert_uint_lt(n, 64);
    for (size_t i = 0; i < n_want; i++) {
        size_t j = 0;
        while (j < n && strcmp(names[j], want[i]) != 0)
            j++;
        ck_assert_msg(j < n, "%s not iterated", want[i]);
    }
    /* The server may add variables of its own (wsgi.*, forkd.*), but every
     * HTTP_ and CONTENT_ one is accounted for: none for Bad_Name, none for
     * the two CGI headers. */
    for (size_t j = 0; j < n; j++) {
        size_t i = 0;
        if (strncmp(names[j], "HTTP_", 5) != 0 &&
            strncmp(names[j], "CONTENT_", 8) != 0)
            continue;
        while (i < n_want && strcmp(names[j], want[i]) != 0)
            i++;
        ck_assert_msg(i < n_want, "unexpected %s", names[j]);
    }
    ck_assert_str_eq(environ_test_iter_find(&t.req, "HTTP_X_A"), "1, 2, 3");
    /* At the end it stays at the end. */
    ck_assert_int_eq(forkd_environ_next(&t.req, &iter, &name, &value), 0);
    ck_assert_int_eq(forkd_environ_next(&t.req, &iter, &name, &value), 0);
    /* A new iteration starts over. */
    iter = 0;
    ck_assert_int_eq(forkd_environ_next(&t.req, &iter, &name, &value), 1);
    environ_test_fini(&t);
}
END_TEST

/* A worker reuses the request: after environ_setup for the next request
 * (arena reset), the iteration is rebuilt for the new head. */
START_TEST(test_environ_rebuilt_per_request)
{
    struct environ_test t;
    struct http_scan scan;
    static const char next[] = "GET /second HTTP/1.1\r\nHost: b\r\n\r\n";
    char *buf2;
    size_t head_len = 0;
    int status = 0;

    ck_assert_int_eq(
        environ_test_init(&t,
                          "GET /first HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n"),
        0);
    ck_assert_str_eq(environ_test_iter_find(&t.req, "PATH_INFO"), "/first");
    ck_assert_str_eq(environ_test_iter_find(&t.req, "HTTP_X_A"), "1");

    arena_reset(&t.req.arena);
    memset(&scan, 0, sizeof(scan));
    ck_assert_int_eq(
        http_scan_head(&scan, next, strlen(next), &t.lim, &head_len, &status),
        HTTP_SCAN_DONE);
    buf2 = malloc(head_len);
    ck_assert_ptr_nonnull(buf2);
    memcpy(buf2, next, head_len);
    ck_assert_int_eq(
        http_parse_head(&t.req.head, buf2, head_len, t.headers, &t.lim), 0);
    ck_assert_int_eq(environ_setup(&t.req), 0);
    ck_assert_str_eq(environ_test_iter_find(&t.req, "PATH_INFO"), "/second");
    ck_assert_str_eq(environ_test_iter_find(&t.req, "HTTP_HOST"), "b");
    ck_assert_ptr_null(environ_test_iter_find(&t.req, "HTTP_X_A"));
    free(buf2);
    environ_test_fini(&t);
}
END_TEST

static Suite *
environ_suite(void)
{
    Suite *s = suite_create("environ");
    TCase *decode = tcase_create("decode");
    TCase *env = tcase_create("environ");

    tcase_add_test(decode, test_environ_decode_path);
    tcase_add_test(decode, test_environ_decode_path_invalid);
    tcase_add_test(decode, test_environ_decode_path_len);
    suite_add_tcase(s, decode);

    tcase_add_test(env, test_environ_request_variables);
    tcase_add_test(env, test_environ_multiprocess);
    tcase_add_test(env, test_environ_setup_bad_path);
    tcase_add_test(env, test_environ_unknown_names);
    tcase_add_test(env, test_environ_server_from_host);
    tcase_add_test(env, test_environ_server_ipv6_host);
    tcase_add_test(env, test_environ_server_without_host);
    tcase_add_test(env, test_environ_server_absolute_form);
    tcase_add_test(env, test_environ_server_port_is_listener);
    tcase_add_test(env, test_environ_repeated_header_joined);
    tcase_add_test(env, test_environ_underscore_header_dropped);
    tcase_add_test(env, test_environ_content_headers);
    tcase_add_test(env, test_environ_iteration_each_once);
    tcase_add_test(env, test_environ_rebuilt_per_request);
    suite_add_tcase(s, env);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(environ_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
