#include "response.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cfg.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "req.h"

#define RESPONSE_HEAD_MAX 1024  /* the head without the handler's fields */
#define RESPONSE_REASON_MAX 256 /* of the status a handler gives */

/* Hop-by-hop fields (RFC 9110 7.6.1, PEP 3333): the server's business. */
static const struct {
    const char *name;
    size_t len;
} response_hop_by_hop[] = {
    {"connection", 10},
    {"keep-alive", 10},
    {"proxy-authenticate", 18},
    {"proxy-authorization", 19},
    {"te", 2},
    {"trailer", 7},
    {"trailers", 8},
    {"transfer-encoding", 17},
    {"upgrade", 7},
};

void
response_init(struct response *r, char *body_buf)
{
    memset(r, 0, sizeof(*r));
    r->body = body_buf;
}

const char *
response_date(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t last = -1;
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != last) {
        gmtime_r(&ts.tv_sec, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = ts.tv_sec;
    }
    return buf;
}

const char *
response_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

int
response_parse_status(const char *s)
{
    int code;

    if (s == NULL || !(s[0] >= '2' && s[0] <= '5') || s[1] < '0' ||
        s[1] > '9' || s[2] < '0' || s[2] > '9' || s[3] != ' ')
        return -1;
    code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    /* The reason must fit the head's fixed part (RESPONSE_HEAD_MAX). */
    if (strlen(s) > RESPONSE_REASON_MAX)
        return -1;
    for (s += 4; *s; s++)
        if (!(*s == '\t' || (unsigned char)*s >= 0x20) || *s == 0x7f)
            return -1;
    return code;
}

int
response_check_header(const char *name, const char *value)
{
    if (name == NULL || value == NULL || name[0] == '\0')
        return -1;
    size_t len = 0;

    for (const char *p = name; *p; p++, len++)
        if (!http_is_tchar((unsigned char)*p))
            return -1;
    for (const char *p = value; *p; p++)
        if ((*p != '\t' && (unsigned char)*p < 0x20) || *p == 0x7f)
            return -1;
    for (size_t i = 0;
         i < sizeof(response_hop_by_hop) / sizeof(response_hop_by_hop[0]); i++)
        if (response_hop_by_hop[i].len == len &&
            strcasecmp(name, response_hop_by_hop[i].name) == 0)
            return -1;
    return 0;
}

static void
response_fail(struct forkd_req *req, const char *what)
{
    req->resp.failed = 1;
    log_error("handler: %s %s: %s", req->head.method, req->head.target, what);
}

/* Digits only, as http_parse_head wants of requests. */
static int
response_parse_length(const char *v, uint64_t *out)
{
    char *end;

    if (*v < '0' || *v > '9' || strlen(v) > 18)
        return -1;
    *out = strtoull(v, &end, 10);
    return *end == '\0' ? 0 : -1;
}

/* A Content-Length the head must not carry: a 204 has no content to
 * measure (RFC 9110 8.6).  A 304's may stay: it is the length a 200 would
 * have had, and a 304 ends at its head whatever it says. */
static int
response_drops_length(int code, const char *name, size_t len)
{
    return code == 204 && len == 14 && strcasecmp(name, "content-length") == 0;
}

static int
response_store_fields(struct forkd_req *req, int code,
                      const struct forkd_header *hs, size_t n)
{
    struct response *r = &req->resp;
    size_t total = 0;
    char *p;

    for (size_t i = 0; i < n; i++) {
        if (response_check_header(hs[i].name, hs[i].value) < 0) {
            log_error("handler: %s %s: invalid or hop-by-hop header \"%s\"",
                      req->head.method, req->head.target,
                      hs[i].name ? hs[i].name : "(null)");
            return -1;
        }
        total += strlen(hs[i].name) + strlen(hs[i].value) + 4;
    }
    if ((p = arena_alloc(&req->arena, total + 1)) == NULL)
        return -1;
    r->fields = p;
    r->fields_len = total;
    r->has_length = r->has_date = r->has_server = 0;
    /* memcpy, not sprintf: this runs for every header of every response. */
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(hs[i].name), vl = strlen(hs[i].value);
        if (response_drops_length(code, hs[i].name, nl))
            continue;
        memcpy(p, hs[i].name, nl);
        memcpy(p + nl, ": ", 2);
        memcpy(p + nl + 2, hs[i].value, vl);
        memcpy(p + nl + 2 + vl, "\r\n", 2);
        p += nl + vl + 4;
        if (nl == 14 && strcasecmp(hs[i].name, "content-length") == 0) {
            if (r->has_length ||
                response_parse_length(hs[i].value, &r->length) < 0)
                return -1;
            r->has_length = 1;
        }
        r->has_date |= nl == 4 && strcasecmp(hs[i].name, "date") == 0;
        r->has_server |= nl == 6 && strcasecmp(hs[i].name, "server") == 0;
    }
    *p = '\0';
    r->fields_len = (size_t)(p - r->fields);
    return 0;
}

int
forkd_start_response(struct forkd_req *req, const char *status,
                     const struct forkd_header *headers, size_t n)
{
    struct response *r = &req->resp;
    int code = response_parse_status(status);

    if (r->head_sent) {
        response_fail(req, "start_response after the head was sent");
        return -1;
    }
    if (code < 0) {
        response_fail(req, "invalid status");
        return -1;
    }
    if ((n > 0 && headers == NULL) ||
        response_store_fields(req, code, headers, n) < 0 ||
        (r->reason = arena_strndup(&req->arena, status, strlen(status))) ==
            NULL) {
        response_fail(req, "invalid headers");
        return -1;
    }
    r->status = code;
    r->failed = 0;
    /* A replaced response (WSGI's exc_info) starts from nothing: body
     * bytes buffered for the old one would neither match the new head's
     * Content-Length nor belong to it. */
    r->body_len = 0;
    r->body_count = 0;
    r->no_body =
        code == 204 || code == 304 || strcmp(req->head.method, "HEAD") == 0;
    return 0;
}

/* "Content-Length: N\r\n" at p; returns the end. */
static char *
response_put_length(char *p, uint64_t n)
{
    char digits[24];
    size_t k = sizeof(digits);

    do
        digits[--k] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    p = stpcpy(p, "Content-Length: ");
    memcpy(p, digits + k, sizeof(digits) - k);
    p += sizeof(digits) - k;
    return stpcpy(p, "\r\n");
}

/* Write the head into buf (at least RESPONSE_HEAD_MAX + fields_len). */
static size_t
response_format_head(struct forkd_req *req, char *buf, int length_known,
                     uint64_t length)
{
    struct response *r = &req->resp;
    char *p = buf;

    p = stpcpy(p, "HTTP/1.1 ");
    p = stpcpy(p, r->reason);
    p = stpcpy(p, "\r\n");
    memcpy(p, r->fields, r->fields_len);
    p += r->fields_len;
    if (!r->has_server)
        p = stpcpy(p, "Server: forkd\r\n");
    if (!r->has_date) {
        p = stpcpy(p, "Date: ");
        p = stpcpy(p, response_date());
        p = stpcpy(p, "\r\n");
    }
    if (r->status == 204 || r->status == 304)
        ; /* no framing: these never have a body */
    else if (length_known && !r->has_length)
        p = response_put_length(p, length);
    else if (r->chunked)
        p = stpcpy(p, "Transfer-Encoding: chunked\r\n");
    if (!req->keep_alive)
        p = stpcpy(p, "Connection: close\r\n");
    else if (req->head.minor == 0)
        p = stpcpy(p, "Connection: keep-alive\r\n");
    p = stpcpy(p, "\r\n");
    return (size_t)(p - buf);
}

/* Send the head with the buffered body and data[0..n), framed.  final: the
 * body is complete (so its length is known). */
static int
response_flush(struct forkd_req *req, const void *data, size_t n, int final)
{
    struct response *r = &req->resp;
    char small[RESPONSE_HEAD_MAX + 1024], *head = small;
    char chunk[24];
    struct iovec iov[5];
    int k = 0;
    ssize_t sent;

    if (!r->head_sent) {
        int known = final || r->has_length;
        if (!known && !r->no_body) {
            if (req->head.minor == 1)
                r->chunked = 1;
            else
                req->keep_alive = 0; /* HTTP/1.0: close-delimited */
        }
        if (r->fields_len > sizeof(small) - RESPONSE_HEAD_MAX &&
            (head = arena_alloc(&req->arena,
                                RESPONSE_HEAD_MAX + r->fields_len)) == NULL)
            return -1;
        iov[k].iov_base = head;
        iov[k++].iov_len = response_format_head(
            req, head, known, r->has_length ? r->length : r->body_count);
        r->head_sent = 1;
    }
    size_t body = r->no_body ? 0 : r->body_len + n;
    if (r->chunked && body > 0) {
        iov[k].iov_base = chunk;
        iov[k++].iov_len = (size_t)sprintf(chunk, "%zx\r\n", body);
    }
    if (body > 0 && r->body_len > 0) {
        iov[k].iov_base = r->body;
        iov[k++].iov_len = r->body_len;
    }
    if (body > 0 && n > 0) {
        iov[k].iov_base = (void *)data;
        iov[k++].iov_len = n;
    }
    if (r->chunked && body > 0) {
        iov[k].iov_base = "\r\n";
        iov[k++].iov_len = 2;
    }
    r->body_len = 0;
    sent = conn_writev(req->conn, iov, k, req->cfg->send_timeout_s);
    if (sent < 0)
        return -1;
    r->bytes_out += (uint64_t)sent;
    return 0;
}

/* Common checks of write and sendfile; returns 1 to go on, 0 to drop the
 * bytes (no body), -1 on error. */
static int
response_accept(struct forkd_req *req, size_t n)
{
    struct response *r = &req->resp;

    if (r->status == 0 && !r->failed)
        response_fail(req, "write before start_response");
    if (r->failed)
        return -1;
    /* Never length - count alone: the head's length is what goes out,
     * so the bytes must never exceed it (DESIGN 7). */
    if (r->has_length &&
        (r->body_count > r->length || n > r->length - r->body_count)) {
        response_fail(req, "body longer than its Content-Length");
        return -1;
    }
    r->body_count += n;
    return r->no_body ? 0 : 1;
}

ssize_t
forkd_write(struct forkd_req *req, const void *buf, size_t n)
{
    struct response *r = &req->resp;
    int go = response_accept(req, n);

    if (go <= 0)
        return go < 0 ? -1 : (ssize_t)n;
    if (!r->head_sent && n <= RESPONSE_BODY_BUF - r->body_len) {
        memcpy(r->body + r->body_len, buf, n);
        r->body_len += n;
        return (ssize_t)n;
    }
    if (response_flush(req, buf, n, 0) < 0) {
        r->failed = 1;
        return -1;
    }
    return (ssize_t)n;
}

ssize_t
forkd_sendfile(struct forkd_req *req, int fd, off_t off, size_t n)
{
    struct response *r = &req->resp;
    char chunk[24];
    struct iovec iov = {chunk, 0};
    int go = response_accept(req, n);

    if (go <= 0 || n == 0)
        return go < 0 ? -1 : (ssize_t)n;
    /* The head and a chunk line go out with the file's first bytes
     * (MSG_MORE), not as small packets of their own. */
    req->conn->more = 1;
    if ((r->body_len > 0 || !r->head_sent) && response_flush(req, NULL, 0, 0))
        goto fail;
    if (r->chunked) {
        iov.iov_len = (size_t)sprintf(chunk, "%zx\r\n", n);
        r->bytes_out += iov.iov_len + 2; /* this line and the CRLF after */
        if (conn_writev(req->conn, &iov, 1, req->cfg->send_timeout_s) < 0)
            goto fail;
    }
    req->conn->more = 0;
    if (conn_sendfile(req->conn, fd, off, n, req->cfg->send_timeout_s) < 0)
        goto fail;
    if (r->chunked) {
        iov.iov_base = "\r\n";
        iov.iov_len = 2;
        if (conn_writev(req->conn, &iov, 1, req->cfg->send_timeout_s) < 0)
            goto fail;
    }
    r->bytes_out += n;
    return (ssize_t)n;
fail:
    req->conn->more = 0;
    r->failed = 1;
    return -1;
}

static int
response_finish_sent(struct forkd_req *req)
{
    struct response *r = &req->resp;
    struct iovec iov = {"0\r\n\r\n", 5};

    if (r->body_len > 0 && response_flush(req, NULL, 0, 0) < 0)
        return -1;
    if (r->has_length && r->body_count < r->length && !r->no_body) {
        response_fail(req, "body shorter than its Content-Length");
        return -1;
    }
    if (r->chunked) {
        if (conn_writev(req->conn, &iov, 1, req->cfg->send_timeout_s) < 0)
            return -1;
        r->bytes_out += 5;
    }
    return req->keep_alive ? 0 : -1;
}

int
response_finish(struct forkd_req *req, int rc)
{
    struct response *r = &req->resp;

    if (rc != 0 && !r->failed && req->body_status) {
        r->failed = 1; /* the client's fault: answered below, not logged */
    } else if (rc != 0 && !r->failed) {
        response_fail(req, "handler returned an error");
    }
    if (r->status == 0 && !r->failed)
        response_fail(req, "returned without start_response");
    if (!r->failed && !r->head_sent && r->has_length && !r->no_body &&
        r->body_count != r->length)
        response_fail(req, "body shorter than its Content-Length");
    if (r->failed) {
        if (r->head_sent)
            return -1; /* the client sees a truncated response */
        /* A body the client got wrong is its error, not the handler's. */
        r->status = req->body_status ? req->body_status : 500;
        ssize_t n = response_send_error(req->conn, r->status,
                                        strcmp(req->head.method, "HEAD") == 0,
                                        req->cfg->send_timeout_s);
        r->bytes_out = n > 0 ? (uint64_t)n : 0;
        return -1;
    }
    if (r->head_sent)
        return response_finish_sent(req);
    if (response_flush(req, NULL, 0, 1) < 0)
        return -1;
    return req->keep_alive ? 0 : -1;
}

size_t
response_format_error(char *buf, int status, int head_only)
{
    const char *reason = response_reason(status);
    int len = snprintf(buf, RESPONSE_ERROR_MAX,
                       "HTTP/1.1 %d %s\r\nServer: forkd\r\nDate: %s\r\n"
                       "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s%s",
                       status, reason, response_date(), strlen(reason) + 1,
                       head_only ? "" : reason, head_only ? "" : "\n");

    return len < 0 ? 0 : (size_t)len;
}

ssize_t
response_send_error(struct conn *c, int status, int head_only,
                    unsigned send_timeout_s)
{
    char buf[RESPONSE_ERROR_MAX];
    struct iovec iov = {buf, response_format_error(buf, status, head_only)};

    return conn_writev(c, &iov, 1, send_timeout_s);
}
