/* test_response: status and header checks, the Date cache, and the framing
 * of whole responses: a struct forkd_req set up by hand as a worker would,
 * its connection one end of a socketpair; the test reads what a client
 * would get from the other end.  The error log goes to a file so that the
 * tests can see which failures are logged (and that successes are not). */
#include "response.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "cfg.h"
#include "conn.h"
#include "environ.h"
#include "fixture.h"
#include "forkd.h"
#include "http.h"
#include "log.h"
#include "req.h"

#define RESP_TEST_FIELDS 32
#define RESP_TEST_OUT (256 * 1024)

/* One directory for the suite, made and removed by the runner (unchecked
 * fixture) so that failing tests leave nothing behind. */
static char resp_test_dir[64];

static void
resp_test_make_dir(void)
{
    strcpy(resp_test_dir, "/tmp/forkd-test-response-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(resp_test_dir));
}

static void
resp_test_remove_dir(void)
{
    test_rmdir(resp_test_dir);
}

struct resp_test {
    struct forkd_req req;
    struct conn conn;
    struct cfg cfg;
    struct http_limits lim;
    struct http_header headers[RESP_TEST_FIELDS];
    char *buf; /* the request head */
    char *body_buf;
    int peer; /* the client's end */
    char dir[64];
    char log_path[128];
    char file_path[128];
    /* What the client got, after resp_test_read. */
    char *out;
    size_t out_len;
    const char *body; /* in out, after the head */
    size_t body_len;
};

static void
resp_test_init(struct resp_test *t, const char *head)
{
    struct http_scan scan;
    size_t head_len = 0;
    int status = 0, sv[2];

    memset(t, 0, sizeof(*t));
    strcpy(t->dir, resp_test_dir);
    snprintf(t->log_path, sizeof(t->log_path), "%s/error.log", t->dir);
    (void)unlink(t->log_path); /* an earlier test's log */
    snprintf(t->file_path, sizeof(t->file_path), "%s/file", t->dir);
    (void)unlink(t->file_path);
    ck_assert_int_eq(log_open(t->log_path, NULL, FORKD_LOG_DEBUG), 0);

    ck_assert_int_eq(cfg_init(&t->cfg), 0);
    t->cfg.send_timeout_s = 5;
    ck_assert_int_eq(arena_init(&t->req.arena, 4096), 0);
    t->lim.line = t->cfg.limit_request_line;
    t->lim.fields = RESP_TEST_FIELDS;
    t->lim.field_size = t->cfg.limit_request_field_size;
    t->lim.head = t->cfg.limit_request_head;
    t->lim.body = t->cfg.limit_request_body;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t->conn.fd = sv[0];
    t->peer = sv[1];
    strcpy(t->conn.remote_addr, "unix:");
    t->conn.server_name = "localhost";
    t->conn.server_port = "";
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
    ck_assert_int_eq(environ_setup(&t->req), 0);

    t->body_buf = malloc(RESPONSE_BODY_BUF);
    ck_assert_ptr_nonnull(t->body_buf);
    t->req.body_buf = t->body_buf;
    response_init(&t->req.resp, t->body_buf);
    t->req.keep_alive = 1;
}

/* Close the server's end and read everything the client got; split it into
 * head and body. */
static void
resp_test_read(struct resp_test *t)
{
    const char *end;
    ssize_t n;

    close(t->conn.fd);
    t->conn.fd = -1;
    t->out = malloc(RESP_TEST_OUT + 1);
    ck_assert_ptr_nonnull(t->out);
    t->out_len = 0;
    while ((n = read(t->peer, t->out + t->out_len,
                     RESP_TEST_OUT - t->out_len)) > 0)
        t->out_len += (size_t)n;
    ck_assert_int_eq(n, 0);
    t->out[t->out_len] = '\0';
    end = strstr(t->out, "\r\n\r\n");
    ck_assert_msg(end != NULL, "no head in \"%.200s\"", t->out);
    t->body = end + 4;
    t->body_len = t->out_len - (size_t)(t->body - t->out);
}

static void
resp_test_fini(struct resp_test *t)
{
    if (t->conn.fd >= 0)
        close(t->conn.fd);
    close(t->peer);
    arena_fini(&t->req.arena);
    cfg_fini(&t->cfg);
    free(t->buf);
    free(t->body_buf);
    free(t->out);
    log_close();
}

/* The response's status line, in a static buffer. */
static const char *
resp_test_status_line(const struct resp_test *t)
{
    static char line[8192];
    size_t n = strcspn(t->out, "\r");

    ck_assert_uint_lt(n, sizeof(line));
    memcpy(line, t->out, n);
    line[n] = '\0';
    return line;
}

/* How many header lines are named name; the value of the last in value. */
static int
resp_test_header(const struct resp_test *t, const char *name, char *value,
                 size_t cap)
{
    const char *p = strstr(t->out, "\r\n") + 2;
    size_t name_len = strlen(name);
    int count = 0;

    while (p < t->body - 2) {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, name, name_len) == 0 && p[name_len] == ':') {
            const char *v = p + name_len + 1;
            while (*v == ' ')
                v++;
            if (value)
                snprintf(value, cap, "%.*s", (int)(eol - v), v);
            count++;
        }
        p = eol + 2;
    }
    return count;
}

static void
resp_test_assert_header(const struct resp_test *t, const char *name,
                        const char *want)
{
    char value[256];
    int n = resp_test_header(t, name, value, sizeof(value));

    ck_assert_msg(n == 1, "%d %s headers in \"%.300s\"", n, name, t->out);
    ck_assert_msg(strcmp(value, want) == 0, "%s: \"%s\", expected \"%s\"", name,
                  value, want);
}

static void
resp_test_assert_no_header(const struct resp_test *t, const char *name)
{
    ck_assert_msg(resp_test_header(t, name, NULL, 0) == 0,
                  "unexpected %s in \"%.300s\"", name, t->out);
}

/* Decode a chunked body into out; returns its length, or -1 if it is
 * malformed or has no last chunk (a truncated response). */
static ssize_t
resp_test_dechunk(const char *in, size_t len, char *out, size_t cap)
{
    size_t off = 0, got = 0;

    for (int guard = 0; guard < 10000; guard++) {
        char *end;
        unsigned long size;
        const char *crlf = memmem(in + off, len - off, "\r\n", 2);

        if (crlf == NULL)
            return -1;
        size = strtoul(in + off, &end, 16);
        if (end != crlf || end == in + off)
            return -1;
        off = (size_t)(crlf - in) + 2;
        if (size == 0)
            return off + 2 == len && memcmp(in + off, "\r\n", 2) == 0
                       ? (ssize_t)got
                       : -1;
        if (len - off < size + 2 || got + size > cap ||
            memcmp(in + off + size, "\r\n", 2) != 0)
            return -1;
        memcpy(out + got, in + off, size);
        got += size;
        off += size + 2;
    }
    return -1;
}

/* The error log's contents (static buffer). */
static const char *
resp_test_log(const struct resp_test *t)
{
    static char log[8192];
    int fd = open(t->log_path, O_RDONLY);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    n = read(fd, log, sizeof(log) - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    log[n] = '\0';
    return log;
}

static void
resp_test_assert_500(const struct resp_test *t)
{
    ck_assert_str_eq(resp_test_status_line(t),
                     "HTTP/1.1 500 Internal Server Error");
    resp_test_assert_header(t, "Connection", "close");
    resp_test_assert_header(t, "Content-Length", "22");
    ck_assert_uint_eq(t->body_len, 22);
    ck_assert_int_eq(memcmp(t->body, "Internal Server Error\n", 22), 0);
    /* A handler's fault is logged, naming the request. */
    ck_assert_msg(strstr(resp_test_log(t), "error: handler: ") != NULL,
                  "not logged: \"%s\"", resp_test_log(t));
}

static char *
resp_test_pattern(size_t n)
{
    char *p = malloc(n);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 26) % 26);
    return p;
}

static const struct forkd_header resp_test_text[] = {
    {"Content-Type", "text/plain"}};

/* --- response_parse_status, response_check_header ------------------------ */

START_TEST(test_response_parse_status)
{
    ck_assert_int_eq(response_parse_status("200 OK"), 200);
    ck_assert_int_eq(response_parse_status("404 Not Found"), 404);
    ck_assert_int_eq(response_parse_status("599 Whatever it is"), 599);
    ck_assert_int_eq(response_parse_status("204 "), 204); /* empty reason */
    ck_assert_int_eq(response_parse_status("200 Tab\tand caf\xc3\xa9"), 200);
    /* Three digits, SP, reason: nothing else. */
    ck_assert_int_eq(response_parse_status("200"), -1);
    ck_assert_int_eq(response_parse_status("200OK"), -1);
    ck_assert_int_eq(response_parse_status("99 X"), -1);
    ck_assert_int_eq(response_parse_status("199 X"), -1);
    ck_assert_int_eq(response_parse_status("600 X"), -1);
    ck_assert_int_eq(response_parse_status("20x OK"), -1);
    ck_assert_int_eq(response_parse_status("2000 OK"), -1);
    ck_assert_int_eq(response_parse_status(" 200 OK"), -1);
    ck_assert_int_eq(response_parse_status(""), -1);
    ck_assert_int_eq(response_parse_status(NULL), -1);
    /* No controls in the reason: it would split the status line. */
    ck_assert_int_eq(response_parse_status("200 OK\r\n"), -1);
    ck_assert_int_eq(response_parse_status("200 OK\r\nX-Injected: 1"), -1);
    ck_assert_int_eq(response_parse_status("200 O\nK"), -1);
    ck_assert_int_eq(response_parse_status("200 O\x01K"), -1);
    ck_assert_int_eq(response_parse_status("200 O\x7fK"), -1);
}
END_TEST

START_TEST(test_response_check_header)
{
    ck_assert_int_eq(response_check_header("Content-Type", "text/plain"), 0);
    ck_assert_int_eq(response_check_header("X-Empty", ""), 0);
    ck_assert_int_eq(response_check_header("X-Tab", "a\tb"), 0);
    ck_assert_int_eq(response_check_header("Set-Cookie", "a=b; Path=/"), 0);
    ck_assert_int_eq(response_check_header("X-8bit", "caf\xc3\xa9"), 0);
    /* Names are tokens. */
    ck_assert_int_eq(response_check_header("Bad Name", "v"), -1);
    ck_assert_int_eq(response_check_header("", "v"), -1);
    ck_assert_int_eq(response_check_header("X:Y", "v"), -1);
    ck_assert_int_eq(response_check_header("X\r\nY", "v"), -1);
    ck_assert_int_eq(response_check_header(NULL, "v"), -1);
    ck_assert_int_eq(response_check_header("X", NULL), -1);
    /* No controls in values (header injection). */
    ck_assert_int_eq(response_check_header("X", "a\r\nSet-Cookie: x"), -1);
    ck_assert_int_eq(response_check_header("X", "a\rb"), -1);
    ck_assert_int_eq(response_check_header("X", "a\nb"), -1);
    ck_assert_int_eq(response_check_header("X", "a\x01"), -1);
    ck_assert_int_eq(response_check_header("X", "a\x7f"), -1);
}
END_TEST

START_TEST(test_response_check_header_hop_by_hop)
{
    static const char *const names[] = {
        "Connection",
        "connection",
        "CONNECTION",
        "Keep-Alive",
        "keep-alive",
        "Transfer-Encoding",
        "transfer-encoding",
        "Upgrade",
        "TE",
        "te",
        "Trailer",
        "Proxy-Authorization",
        "proxy-authenticate",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(response_check_header(names[i], "x") == -1, "%s accepted",
                      names[i]);
    /* Lookalikes are fine. */
    ck_assert_int_eq(response_check_header("Connections", "x"), 0);
    ck_assert_int_eq(response_check_header("X-Upgrade", "x"), 0);
    ck_assert_int_eq(response_check_header("Tea", "x"), 0);
}
END_TEST

START_TEST(test_response_date)
{
    const char *d = response_date();
    struct tm tm;
    time_t when, now = time(NULL);
    char *end;

    ck_assert_uint_eq(strlen(d), 29);
    ck_assert_str_eq(d + 25, " GMT");
    memset(&tm, 0, sizeof(tm));
    end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ck_assert_msg(end != NULL && *end == '\0', "\"%s\" not an IMF-fixdate", d);
    when = timegm(&tm);
    ck_assert_msg(when >= now - 2 && when <= now + 2, "\"%s\" is not now", d);
    /* Cached: the same string within the second, and stable contents. */
    ck_assert_uint_eq(strlen(response_date()), 29);
}
END_TEST

START_TEST(test_response_reason)
{
    ck_assert_str_eq(response_reason(200), "OK");
    ck_assert_str_eq(response_reason(400), "Bad Request");
    ck_assert_str_eq(response_reason(404), "Not Found");
    ck_assert_str_eq(response_reason(408), "Request Timeout");
    ck_assert_str_eq(response_reason(413), "Content Too Large");
    ck_assert_str_eq(response_reason(414), "URI Too Long");
    ck_assert_str_eq(response_reason(417), "Expectation Failed");
    ck_assert_str_eq(response_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(response_reason(500), "Internal Server Error");
    ck_assert_str_eq(response_reason(501), "Not Implemented");
    ck_assert_str_eq(response_reason(503), "Service Unavailable");
    ck_assert_str_eq(response_reason(505), "HTTP Version Not Supported");
    ck_assert_ptr_nonnull(response_reason(299));
    ck_assert_uint_gt(strlen(response_reason(299)), 0);
}
END_TEST

/* --- framing ------------------------------------------------------------- */

START_TEST(test_response_small_body_length)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", resp_test_text, 1),
                     0);
    ck_assert_int_eq(forkd_write(&t.req, "hello", 5), 5);
    ck_assert_int_eq(forkd_write(&t.req, " world", 6), 6);
    ck_assert_int_eq(forkd_write(&t.req, "", 0), 0);
    ck_assert_int_eq(response_finish(&t.req, 0), 0); /* keep-alive */
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 200 OK");
    resp_test_assert_header(&t, "Content-Type", "text/plain");
    resp_test_assert_header(&t, "Content-Length", "11");
    resp_test_assert_header(&t, "Server", "forkd");
    ck_assert_int_eq(resp_test_header(&t, "Date", NULL, 0), 1);
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    resp_test_assert_no_header(&t, "Connection");
    ck_assert_uint_eq(t.body_len, 11);
    ck_assert_int_eq(memcmp(t.body, "hello world", 11), 0);
    ck_assert_uint_eq(t.req.resp.status, 200);
    ck_assert_uint_eq(t.req.resp.bytes_out, t.out_len);
    ck_assert_str_eq(resp_test_log(&t), ""); /* nothing to complain about */
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_empty_body)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Content-Length", "0");
    ck_assert_uint_eq(t.body_len, 0);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_handler_length)
{
    static const struct forkd_header h[] = {{"Content-Length", "5"},
                                            {"X-Other", "y"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 2), 0);
    ck_assert_int_eq(forkd_write(&t.req, "hel", 3), 3);
    ck_assert_int_eq(forkd_write(&t.req, "lo", 2), 2);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Content-Length", "5"); /* once */
    resp_test_assert_header(&t, "X-Other", "y");
    ck_assert_uint_eq(t.body_len, 5);
    ck_assert_int_eq(memcmp(t.body, "hello", 5), 0);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_handler_server_date)
{
    static const struct forkd_header h[] = {
        {"Server", "mine"}, {"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 2), 0);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Server", "mine");
    resp_test_assert_header(&t, "Date", "Sun, 06 Nov 1994 08:49:37 GMT");
    resp_test_fini(&t);
}
END_TEST

/* Exactly the buffer: still sent whole with a Content-Length. */
START_TEST(test_response_body_fills_buffer)
{
    struct resp_test t;
    char *data = resp_test_pattern(RESPONSE_BODY_BUF);
    char want[32];

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, data, RESPONSE_BODY_BUF),
                     RESPONSE_BODY_BUF);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    snprintf(want, sizeof(want), "%d", RESPONSE_BODY_BUF);
    resp_test_assert_header(&t, "Content-Length", want);
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    ck_assert_uint_eq(t.body_len, RESPONSE_BODY_BUF);
    ck_assert_int_eq(memcmp(t.body, data, RESPONSE_BODY_BUF), 0);
    free(data);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_chunked_http11)
{
    struct resp_test t;
    size_t n1 = 10000, n2 = 20000, n3 = 5, total = n1 + n2 + n3;
    char *data = resp_test_pattern(total), *got = malloc(total);
    ssize_t len;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", resp_test_text, 1),
                     0);
    ck_assert_int_eq(forkd_write(&t.req, data, n1), (ssize_t)n1);
    ck_assert_int_eq(forkd_write(&t.req, data + n1, n2), (ssize_t)n2);
    ck_assert_int_eq(t.req.resp.head_sent, 1); /* it did not fit */
    ck_assert_int_eq(forkd_write(&t.req, data + n1 + n2, n3), (ssize_t)n3);
    ck_assert_int_eq(response_finish(&t.req, 0), 0); /* still keep-alive */
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 200 OK");
    resp_test_assert_header(&t, "Transfer-Encoding", "chunked");
    resp_test_assert_no_header(&t, "Content-Length");
    resp_test_assert_no_header(&t, "Connection");
    len = resp_test_dechunk(t.body, t.body_len, got, total);
    ck_assert_int_eq(len, (ssize_t)total);
    ck_assert_int_eq(memcmp(got, data, total), 0);
    ck_assert_uint_eq(t.req.resp.bytes_out, t.out_len);
    free(data);
    free(got);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_close_delimited_http10)
{
    struct resp_test t;
    size_t total = 20000;
    char *data = resp_test_pattern(total);

    resp_test_init(&t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", resp_test_text, 1),
                     0);
    ck_assert_int_eq(forkd_write(&t.req, data, total), (ssize_t)total);
    /* No length and no chunked in HTTP/1.0: the close ends the body. */
    ck_assert_int_eq(response_finish(&t.req, 0), -1);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 200 OK");
    resp_test_assert_header(&t, "Connection", "close");
    resp_test_assert_no_header(&t, "Content-Length");
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    ck_assert_uint_eq(t.body_len, total);
    ck_assert_int_eq(memcmp(t.body, data, total), 0);
    free(data);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_http10_keep_alive)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, "hi", 2), 2);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Connection", "keep-alive");
    resp_test_assert_header(&t, "Content-Length", "2");
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_not_keep_alive)
{
    struct resp_test t;

    resp_test_init(&t,
                   "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    t.req.keep_alive = 0;
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, "hi", 2), 2);
    ck_assert_int_eq(response_finish(&t.req, 0), -1);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Connection", "close");
    resp_test_assert_header(&t, "Content-Length", "2");
    ck_assert_uint_eq(t.body_len, 2);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_head_method)
{
    struct resp_test t;
    char *data = resp_test_pattern(30000);

    resp_test_init(&t, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", resp_test_text, 1),
                     0);
    /* The handler writes as for GET; nothing goes out but the length. */
    ck_assert_int_eq(forkd_write(&t.req, data, 30000), 30000);
    ck_assert_int_eq(forkd_write(&t.req, "hello", 5), 5);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Content-Length", "30005");
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    ck_assert_uint_eq(t.body_len, 0);
    free(data);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_head_handler_length)
{
    static const struct forkd_header h[] = {{"Content-Length", "1234"}};
    struct resp_test t;

    resp_test_init(&t, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 1), 0);
    ck_assert_int_eq(response_finish(&t.req, 0), 0); /* no body: fine */
    resp_test_read(&t);
    resp_test_assert_header(&t, "Content-Length", "1234");
    ck_assert_uint_eq(t.body_len, 0);
    resp_test_fini(&t);
}
END_TEST

static void
resp_test_no_body_status(const char *status)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, status, NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, "dropped", 7), 7);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    ck_assert_uint_eq(strncmp(resp_test_status_line(&t) + 9, status, 3), 0);
    resp_test_assert_no_header(&t, "Content-Length");
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    ck_assert_uint_eq(t.body_len, 0);
    resp_test_fini(&t);
}

START_TEST(test_response_204_no_body)
{
    resp_test_no_body_status("204 No Content");
    resp_test_no_body_status("304 Not Modified");
}
END_TEST

START_TEST(test_response_start_twice)
{
    static const struct forkd_header first[] = {{"X-First", "1"},
                                                {"Content-Length", "99"}};
    static const struct forkd_header second[] = {{"X-Second", "2"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "404 Not Found", first, 2),
                     0);
    ck_assert_int_eq(forkd_start_response(&t.req, "503 Busy", second, 1), 0);
    ck_assert_int_eq(forkd_write(&t.req, "later", 5), 5);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 503 Busy");
    resp_test_assert_no_header(&t, "X-First");
    resp_test_assert_header(&t, "X-Second", "2");
    resp_test_assert_header(&t, "Content-Length", "5");
    ck_assert_int_eq(memcmp(t.body, "later", 5), 0);
    ck_assert_int_eq(t.req.resp.status, 503);
    resp_test_fini(&t);
}
END_TEST

/* After the head went out, start_response cannot change it. */
START_TEST(test_response_start_after_head_sent)
{
    struct resp_test t;
    char *data = resp_test_pattern(20000);

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, data, 20000), 20000);
    ck_assert_int_eq(forkd_start_response(&t.req, "500 Oops", NULL, 0), -1);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 200 OK");
    free(data);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_write_before_start)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_write(&t.req, "x", 1), -1);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    ck_assert_ptr_nonnull(strstr(resp_test_log(&t), "start_response"));
    ck_assert_int_eq(t.req.resp.status, 500);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_no_start_response)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(response_finish(&t.req, 0), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_invalid_header)
{
    static const struct forkd_header bad[] = {{"Content-Type", "text/plain"},
                                              {"Bad Name", "v"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", bad, 2), -1);
    ck_assert_int_eq(forkd_write(&t.req, "x", 1), -1);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    ck_assert_ptr_nonnull(strstr(resp_test_log(&t), "Bad Name"));
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_hop_by_hop_header)
{
    static const struct forkd_header bad[] = {{"Connection", "close"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", bad, 1), -1);
    ck_assert_int_eq(response_finish(&t.req, 0), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_invalid_status)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(
        forkd_start_response(&t.req, "200 OK\r\nX-Injected: 1", NULL, 0), -1);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    resp_test_assert_no_header(&t, "X-Injected");
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_bad_content_length)
{
    static const struct forkd_header bad[] = {{"Content-Length", "5x"}};
    static const struct forkd_header two[] = {{"Content-Length", "5"},
                                              {"content-length", "5"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", bad, 1), -1);
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", two, 2), -1);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    resp_test_fini(&t);
}
END_TEST

/* The handler fails after part of a streamed body went out: the client
 * must see a truncated response (no last chunk), and the connection goes. */
START_TEST(test_response_error_after_streamed_body)
{
    struct resp_test t;
    char *data = resp_test_pattern(20000), *got = malloc(20000);

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, data, 20000), 20000);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 200 OK");
    resp_test_assert_header(&t, "Transfer-Encoding", "chunked");
    ck_assert_int_eq(resp_test_dechunk(t.body, t.body_len, got, 20000), -1);
    ck_assert_ptr_null(memmem(t.body, t.body_len, "0\r\n\r\n", 5));
    ck_assert_ptr_nonnull(strstr(resp_test_log(&t), "error: handler: "));
    free(data);
    free(got);
    resp_test_fini(&t);
}
END_TEST

/* A handler that failed before anything went out gets a 500, even if it
 * had buffered a body. */
START_TEST(test_response_error_before_body_sent)
{
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, "partial", 7), 7);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    resp_test_fini(&t);
}
END_TEST

/* A body the client got wrong (forkd_read failed): its status, not 500. */
START_TEST(test_response_body_status)
{
    struct resp_test t;

    resp_test_init(&t,
                   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n");
    t.req.body_status = 413;
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t),
                     "HTTP/1.1 413 Content Too Large");
    resp_test_assert_header(&t, "Connection", "close");
    /* The client's fault: not logged as a handler error. */
    ck_assert_ptr_null(strstr(resp_test_log(&t), "handler"));
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_error_page_for_head)
{
    struct resp_test t;

    resp_test_init(&t, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t),
                     "HTTP/1.1 500 Internal Server Error");
    resp_test_assert_header(&t, "Content-Length", "22");
    ck_assert_uint_eq(t.body_len, 0);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_length_short_buffered)
{
    static const struct forkd_header h[] = {{"Content-Length", "10"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 1), 0);
    ck_assert_int_eq(forkd_write(&t.req, "12345", 5), 5);
    ck_assert_int_eq(response_finish(&t.req, 0), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t); /* nothing was sent yet */
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_length_short_streamed)
{
    static const struct forkd_header h[] = {{"Content-Length", "30000"}};
    struct resp_test t;
    char *data = resp_test_pattern(20000);

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 1), 0);
    ck_assert_int_eq(forkd_write(&t.req, data, 20000), 20000);
    ck_assert_int_eq(response_finish(&t.req, 0), -1); /* close: truncated */
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 200 OK");
    resp_test_assert_header(&t, "Content-Length", "30000");
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    ck_assert_uint_eq(t.body_len, 20000);
    ck_assert_int_eq(memcmp(t.body, data, 20000), 0);
    free(data);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_length_exceeded)
{
    static const struct forkd_header h[] = {{"Content-Length", "5"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 1), 0);
    ck_assert_int_eq(forkd_write(&t.req, "123", 3), 3);
    ck_assert_int_eq(forkd_write(&t.req, "456", 3), -1);
    ck_assert_int_eq(response_finish(&t.req, -1), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    resp_test_fini(&t);
}
END_TEST

/* Issue 11 finding 2: a second start_response used to keep the count of
 * the bytes buffered for the first, so "length - count" wrapped and a
 * body far longer than the new Content-Length went out behind it. */
START_TEST(test_response_restart_after_buffered_body)
{
    static const struct forkd_header h[] = {{"Content-Length", "10"}};
    struct resp_test t;
    char *a = resp_test_pattern(16000);
    char b[1000];

    memset(b, 'B', sizeof(b));
    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, a, 16000), 16000);
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 1), 0);
    ck_assert_int_eq(forkd_write(&t.req, b, sizeof(b)), -1);
    ck_assert_int_eq(response_finish(&t.req, 0), -1);
    resp_test_read(&t);
    resp_test_assert_500(&t);
    free(a);
    resp_test_fini(&t);
}
END_TEST

/* The replacement response (WSGI's exc_info) starts from nothing. */
START_TEST(test_response_restart_discards_buffered_body)
{
    static const struct forkd_header h[] = {{"Content-Length", "5"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, "partial output", 14), 14);
    ck_assert_int_eq(
        forkd_start_response(&t.req, "500 Internal Server Error", h, 1), 0);
    ck_assert_int_eq(forkd_write(&t.req, "oops\n", 5), 5);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t),
                     "HTTP/1.1 500 Internal Server Error");
    resp_test_assert_header(&t, "Content-Length", "5");
    ck_assert_uint_eq(t.body_len, 5);
    ck_assert_int_eq(memcmp(t.body, "oops\n", 5), 0);
    resp_test_fini(&t);
}
END_TEST

/* RFC 9110 8.6: no Content-Length in a 204, whatever the handler says. */
START_TEST(test_response_204_drops_length)
{
    static const struct forkd_header h[] = {{"Content-Length", "5"},
                                            {"X-Kept", "1"}};
    struct resp_test t;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "204 No Content", h, 2), 0);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    ck_assert_str_eq(resp_test_status_line(&t), "HTTP/1.1 204 No Content");
    resp_test_assert_no_header(&t, "Content-Length");
    resp_test_assert_header(&t, "X-Kept", "1");
    ck_assert_uint_eq(t.body_len, 0);
    resp_test_fini(&t);
}
END_TEST

/* Many or long headers do not fit the head's stack buffer. */
START_TEST(test_response_many_headers)
{
    struct forkd_header h[60];
    char names[60][16], values[60][48];
    struct resp_test t;

    for (int i = 0; i < 60; i++) {
        snprintf(names[i], sizeof(names[i]), "X-H%02d", i);
        memset(values[i], 'a' + i % 26, sizeof(values[i]) - 1);
        values[i][sizeof(values[i]) - 1] = '\0';
        h[i].name = names[i];
        h[i].value = values[i];
    }
    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 60), 0);
    ck_assert_int_eq(forkd_write(&t.req, "body", 4), 4);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    for (int i = 0; i < 60; i++)
        resp_test_assert_header(&t, names[i], values[i]);
    resp_test_assert_header(&t, "Content-Length", "4");
    ck_assert_int_eq(memcmp(t.body, "body", 4), 0);
    resp_test_fini(&t);
}
END_TEST

/* The status is the handler's string, of any length the checks allow; the
 * head must be built without overflowing its buffer (ASan watches). */
START_TEST(test_response_long_reason)
{
    static char status[4100];
    char want[4200];
    struct resp_test t;
    int rc;

    memcpy(status, "200 ", 4);
    memset(status + 4, 'r', sizeof(status) - 5);
    status[sizeof(status) - 1] = '\0';
    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    rc = forkd_start_response(&t.req, status, NULL, 0);
    if (rc == 0)
        ck_assert_int_eq(forkd_write(&t.req, "ok", 2), 2);
    int fin = response_finish(&t.req, rc);
    resp_test_read(&t);
    if (rc == 0) {
        /* Accepted: then sent as given. */
        ck_assert_int_eq(fin, 0);
        snprintf(want, sizeof(want), "HTTP/1.1 %s", status);
        ck_assert_str_eq(resp_test_status_line(&t), want);
        resp_test_assert_header(&t, "Content-Length", "2");
    } else {
        /* Or refused as any bad status is. */
        resp_test_assert_500(&t);
    }
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_sendfile_chunked)
{
    struct resp_test t;
    char *got = malloc(20000);
    char *data = resp_test_pattern(20000);
    int fd;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    fd = open(t.file_path, O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, 20000), 20000);
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", NULL, 0), 0);
    ck_assert_int_eq(forkd_write(&t.req, data, 100), 100); /* buffered */
    ck_assert_int_eq(forkd_sendfile(&t.req, fd, 100, 19900), 19900);
    close(fd);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Transfer-Encoding", "chunked");
    ck_assert_int_eq(resp_test_dechunk(t.body, t.body_len, got, 20000), 20000);
    ck_assert_int_eq(memcmp(got, data, 20000), 0);
    /* The access log's byte count is what the client got. */
    ck_assert_uint_eq(t.req.resp.bytes_out, t.out_len);
    free(data);
    free(got);
    resp_test_fini(&t);
}
END_TEST

START_TEST(test_response_sendfile_length)
{
    static const struct forkd_header h[] = {{"Content-Length", "5000"}};
    struct resp_test t;
    char *data = resp_test_pattern(5000);
    int fd;

    resp_test_init(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    fd = open(t.file_path, O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, 5000), 5000);
    ck_assert_int_eq(forkd_start_response(&t.req, "200 OK", h, 1), 0);
    ck_assert_int_eq(forkd_sendfile(&t.req, fd, 0, 5000), 5000);
    close(fd);
    ck_assert_int_eq(response_finish(&t.req, 0), 0);
    resp_test_read(&t);
    resp_test_assert_header(&t, "Content-Length", "5000");
    resp_test_assert_no_header(&t, "Transfer-Encoding");
    ck_assert_uint_eq(t.body_len, 5000);
    ck_assert_int_eq(memcmp(t.body, data, 5000), 0);
    ck_assert_uint_eq(t.req.resp.bytes_out, t.out_len);
    free(data);
    resp_test_fini(&t);
}
END_TEST

static Suite *
response_suite(void)
{
    Suite *s = suite_create("response");
    TCase *checks = tcase_create("checks");
    TCase *framing = tcase_create("framing");

    tcase_add_test(checks, test_response_parse_status);
    tcase_add_test(checks, test_response_check_header);
    tcase_add_test(checks, test_response_check_header_hop_by_hop);
    tcase_add_test(checks, test_response_date);
    tcase_add_test(checks, test_response_reason);
    suite_add_tcase(s, checks);

    tcase_add_unchecked_fixture(framing, resp_test_make_dir,
                                resp_test_remove_dir);
    tcase_add_test(framing, test_response_small_body_length);
    tcase_add_test(framing, test_response_empty_body);
    tcase_add_test(framing, test_response_handler_length);
    tcase_add_test(framing, test_response_handler_server_date);
    tcase_add_test(framing, test_response_body_fills_buffer);
    tcase_add_test(framing, test_response_chunked_http11);
    tcase_add_test(framing, test_response_close_delimited_http10);
    tcase_add_test(framing, test_response_http10_keep_alive);
    tcase_add_test(framing, test_response_not_keep_alive);
    tcase_add_test(framing, test_response_head_method);
    tcase_add_test(framing, test_response_head_handler_length);
    tcase_add_test(framing, test_response_204_no_body);
    tcase_add_test(framing, test_response_start_twice);
    tcase_add_test(framing, test_response_start_after_head_sent);
    tcase_add_test(framing, test_response_write_before_start);
    tcase_add_test(framing, test_response_no_start_response);
    tcase_add_test(framing, test_response_invalid_header);
    tcase_add_test(framing, test_response_hop_by_hop_header);
    tcase_add_test(framing, test_response_invalid_status);
    tcase_add_test(framing, test_response_bad_content_length);
    tcase_add_test(framing, test_response_error_after_streamed_body);
    tcase_add_test(framing, test_response_error_before_body_sent);
    tcase_add_test(framing, test_response_body_status);
    tcase_add_test(framing, test_response_error_page_for_head);
    tcase_add_test(framing, test_response_length_short_buffered);
    tcase_add_test(framing, test_response_length_short_streamed);
    tcase_add_test(framing, test_response_length_exceeded);
    tcase_add_test(framing, test_response_restart_after_buffered_body);
    tcase_add_test(framing, test_response_restart_discards_buffered_body);
    tcase_add_test(framing, test_response_204_drops_length);
    tcase_add_test(framing, test_response_many_headers);
    tcase_add_test(framing, test_response_long_reason);
    tcase_add_test(framing, test_response_sendfile_chunked);
    tcase_add_test(framing, test_response_sendfile_length);
    suite_add_tcase(s, framing);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(response_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
