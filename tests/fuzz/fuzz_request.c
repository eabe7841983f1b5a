/* fuzz_request: libFuzzer harness for a worker's request path.  Arbitrary
 * bytes go, in arbitrary splits, through the code a worker runs on a
 * connection: http_scan_head per arrival, http_parse_head, environ_setup,
 * forkd_getenv and forkd_environ_next, the echo handler (app/echo.c,
 * linked in) reading the body with forkd_read, response_finish,
 * conn_drain_start, conn_drain and conn_consume for pipelined requests.
 * (A second handler, fuzz_lazy_handle, leaves bodies unread for
 * conn_drain.)
 *
 * Input: byte 0 chooses the configuration and the splits, the next
 * (byte0 & 7) bytes are a cycle of piece sizes (each + 1 bytes), the rest
 * is what the client sends.  Piece sizes 0 (no split bytes) mean "all at
 * once".  Bit 3: small limits; bit 4: keepalive = 0; bit 5: multithread
 * and a trusted peer (X-Forwarded-For/-Proto);
 * bits 6-7: limit_request_body unlimited, 16, the limit's default, or the
 * default with fuzz_lazy_handle instead of echo (bodies left unread).
 *
 * The connection's fd is one end of a socketpair: until a head is complete
 * the harness writes one piece into the other end and calls conn_read, as
 * the worker reads what arrived; before the handler runs, every remaining
 * byte is written and the other end shut down for writing, so that body
 * reads hit EOF instead of blocking.  Responses collect in the socket
 * buffers (made large) and are drained and checked after each input.
 *
 * worker_process, worker_serve and worker_call (server/worker.c) are
 * static: fuzz_process and fuzz_serve mirror them and must follow their
 * changes. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "cfg.h"
#include "conn.h"
#include "environ.h"
#include "forkd.h"
#include "http.h"
#include "log.h"
#include "req.h"
#include "response.h"

#define FUZZ_BODY_SPACE 16384 /* worker.c WORKER_BODY_SPACE */
#define FUZZ_DRAIN_MAX 65536  /* worker.c WORKER_DRAIN_MAX */
#define FUZZ_ARENA 16384      /* worker.c WORKER_ARENA */
#define FUZZ_MAX_INPUT (256 * 1024)
#define FUZZ_SOCKBUF (4 * 1024 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A violated invariant: abort so that libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_request: check failed: %s (%s:%d)\n", #cond, \
                    __FILE__, __LINE__);                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

static struct cfg fuzz_cfg;
static int fuzz_debug; /* FUZZ_REQUEST_DEBUG=1: copy responses to stderr */

/* What the client still has to send, and the socketpair. */
struct fuzz_client {
    int sv[2]; /* sv[0]: the server's conn fd; sv[1]: the client */
    const uint8_t *rest;
    size_t rest_len;
    const uint8_t *cycle; /* piece sizes, n_cycle of them */
    size_t n_cycle, next;
    int shut; /* the client shut down its writing side */
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (cfg_init(&fuzz_cfg) < 0)
        abort();
    /* Handler errors are logged at error level; keep them off the fuzzer's
     * output. */
    if (log_open("/dev/null", NULL, FORKD_LOG_ERROR) < 0)
        abort();
    /* Nothing may block: the client's bytes are all in the socket before
     * a handler runs and the responses fit in its buffers. */
    fuzz_cfg.body_timeout_s = 0;
    fuzz_cfg.send_timeout_s = 0;
    fuzz_debug = getenv("FUZZ_REQUEST_DEBUG") != NULL;
    return 0;
}

/* Write n bytes of the client's rest (all of it with n = SIZE_MAX), and
 * shut down the client's side once it has nothing left. */
static void
fuzz_client_send(struct fuzz_client *cl, size_t n)
{
    if (n > cl->rest_len)
        n = cl->rest_len;
    while (n > 0) {
        ssize_t k = write(cl->sv[1], cl->rest, n);
        FUZZ_CHECK(k > 0); /* the buffers hold FUZZ_MAX_INPUT */
        cl->rest += k;
        cl->rest_len -= (size_t)k;
        n -= (size_t)k;
    }
    if (cl->rest_len == 0 && !cl->shut) {
        shutdown(cl->sv[1], SHUT_WR);
        cl->shut = 1;
    }
}

/* The next piece of the head phase. */
static void
fuzz_client_piece(struct fuzz_client *cl)
{
    size_t n = SIZE_MAX;

    if (cl->n_cycle > 0)
        n = (size_t)cl->cycle[cl->next++ % cl->n_cycle] + 1;
    fuzz_client_send(cl, n);
}

/* worker.c worker_skip_empty_lines. */
static int
fuzz_skip_empty_lines(struct conn *c)
{
    size_t i = 0;

    while (i + 1 < c->len && c->buf[i] == '\r' && c->buf[i + 1] == '\n')
        i += 2;
    if (i > 0) {
        memmove(c->buf, c->buf + i, c->len - i);
        c->len -= i;
    }
    return c->len == 0 || (c->len == 1 && c->buf[0] == '\r');
}

static int
fuzz_is_env_name_char(unsigned char c)
{
    /* An HTTP_ name: a token upper-cased with '-' as '_'. */
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+.^_`|~", c) != NULL;
}

/* A field value: no CTL but HTAB (obs-text allowed). */
static void
fuzz_check_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        FUZZ_CHECK((*p >= 0x20 && *p != 0x7f) || *p == '\t');
}

/* A piece of the request-target: visible ASCII only (RFC 9112 3.2). */
static void
fuzz_check_target(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        FUZZ_CHECK(*p > 0x20 && *p < 0x7f);
}

/* What a handler (and the access log) may look at, checked. */
static void
fuzz_environ(struct forkd_req *req)
{
    static const char *const names[] = {
        "REQUEST_METHOD",      "PATH_INFO",       "QUERY_STRING",
        "REQUEST_URI",         "SERVER_NAME",     "SERVER_PORT",
        "CONTENT_LENGTH",      "CONTENT_TYPE",    "HTTP_HOST",
        "HTTP_USER_AGENT",     "HTTP_REFERER",    "HTTP_TRANSFER_ENCODING",
        "HTTP_CONTENT_LENGTH", "HTTP_X_A",        "HTTP_",
        "HTTP_X__A",           "wsgi.url_scheme", "NOT_THERE",
    };
    const char *proto, *name, *value;
    size_t iter = 0, n = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        (void)forkd_getenv(req, names[i]);
    FUZZ_CHECK(forkd_getenv(req, "PATH_INFO") != NULL);
    FUZZ_CHECK(forkd_getenv(req, "QUERY_STRING") != NULL);
    fuzz_check_target(forkd_getenv(req, "QUERY_STRING"));
    fuzz_check_target(forkd_getenv(req, "REQUEST_URI"));
    for (const char *p = forkd_getenv(req, "REQUEST_METHOD"); *p; p++)
        FUZZ_CHECK(http_is_tchar((unsigned char)*p));
    proto = forkd_getenv(req, "SERVER_PROTOCOL");
    FUZZ_CHECK(proto && (strcmp(proto, "HTTP/1.1") == 0 ||
                         strcmp(proto, "HTTP/1.0") == 0));
    /* Framing: never both, and TE only on 1.1 (RFC 9112 6.1, 6.3). */
    FUZZ_CHECK(!(req->head.chunked && req->head.content_length));
    FUZZ_CHECK(!req->head.chunked || req->head.minor == 1);
    if (req->head.minor == 1)
        FUZZ_CHECK(req->head.host != NULL);
    while (forkd_environ_next(req, &iter, &name, &value)) {
        FUZZ_CHECK(name != NULL && value != NULL);
        n++;
        if (strncmp(name, "HTTP_", 5) != 0)
            continue;
        FUZZ_CHECK(name[5] != '\0');
        for (const char *p = name + 5; *p; p++)
            FUZZ_CHECK(fuzz_is_env_name_char((unsigned char)*p));
        fuzz_check_value(value);
        /* The value trimmed of OWS (RFC 9112 5); repeats are joined with
         * ", " and an empty one leaves the separator's space. */
        if (*value && strstr(value, ", ") == NULL) {
            FUZZ_CHECK(value[0] != ' ' && value[0] != '\t');
            size_t len = strlen(value);
            FUZZ_CHECK(value[len - 1] != ' ' && value[len - 1] != '\t');
        }
    }
    FUZZ_CHECK(n > 0);
    /* The two views of the environ agree (PEP 3333: one dict). */
    for (iter = 0; forkd_environ_next(req, &iter, &name, &value);) {
        const char *v = forkd_getenv(req, name);
        FUZZ_CHECK(v != NULL && strcmp(v, value) == 0);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int found = 0;
        if (forkd_getenv(req, names[i]) == NULL)
            continue;
        for (iter = 0; !found && forkd_environ_next(req, &iter, &name, &value);)
            found = strcmp(name, names[i]) == 0;
        FUZZ_CHECK(found);
    }
    /* RFC 3875 4.1.14: SERVER_NAME is a host name or address. */
    FUZZ_CHECK(*forkd_getenv(req, "SERVER_NAME") != '\0');
    /* REMOTE_ADDR: the peer, or one address of X-Forwarded-For. */
    value = forkd_getenv(req, "REMOTE_ADDR");
    FUZZ_CHECK(value && *value && strpbrk(value, " \t,") == NULL);
    value = forkd_getenv(req, "wsgi.url_scheme");
    FUZZ_CHECK(value && (strcmp(value, "http") == 0 ||
                         (req->conn->trusted && strcmp(value, "https") == 0)));
}

/* A handler that, unlike echo, leaves the body unread (or reads 7 bytes of
 * it when PATH_INFO has an odd length), so that the worker's draining of
 * the rest before the next request is fuzzed too. */
static int
fuzz_lazy_handle(struct forkd_req *req)
{
    static const struct forkd_header headers[] = {
        {"Content-Type", "text/plain"},
    };
    char buf[7];

    if (strlen(forkd_getenv(req, "PATH_INFO")) % 2 == 1 &&
        forkd_read(req, buf, sizeof(buf)) < 0)
        return -1;
    if (forkd_start_response(req, "200 OK", headers, 1) < 0)
        return -1;
    return forkd_write(req, "ok\n", 3) == 3 ? 0 : -1;
}

/* worker.c worker_request_init + worker_serve + worker_call.  Returns 1
 * if the connection may carry another request. */
static int
fuzz_serve(struct forkd_req *req, struct conn *c, size_t head_len,
           struct fuzz_client *cl, int lazy)
{
    int status, keep, rc;

    /* Everything the client has left arrives now (see the top). */
    fuzz_client_send(cl, SIZE_MAX);
    c->head_len = c->body_off = head_len;
    arena_reset(&req->arena);
    response_init(&req->resp, req->body_buf);
    req->conn = c;
    req->continue_sent = 0;
    req->body_status = 0;
    req->env = NULL;
    req->n_env = 0;
    status = http_parse_head(&req->head, c->buf, head_len, req->headers,
                             req->limits);
    if (status == 0)
        status = environ_setup(req);
    if (status != 0) {
        FUZZ_CHECK(status == 400 || status == 413 || status == 414 ||
                   status == 417 || status == 431 || status == 500 ||
                   status == 501 || status == 505);
        int head_only =
            req->head.method && strcmp(req->head.method, "HEAD") == 0;
        (void)response_send_error(c, status, head_only,
                                  fuzz_cfg.send_timeout_s);
        return 0;
    }
    req->keep_alive = req->head.keep_alive && fuzz_cfg.keepalive_s > 0;
    fuzz_environ(req);
    rc = lazy ? fuzz_lazy_handle(req) : forkd_app.handle(req, NULL);
    keep = response_finish(req, rc) == 0;
    if (keep && !req->head.body_done)
        keep = conn_drain_start(req) == 0;
    c->requests++;
    if (keep) {
        /* A kept connection is past its body, or discards the rest. */
        FUZZ_CHECK(req->head.body_done || c->draining);
        FUZZ_CHECK(!req->body_status);
        FUZZ_CHECK(c->body_off <= c->len);
    }
    return keep;
}

/* worker.c worker_drain, as the poller runs it: every byte the client
 * sent is already in the socket.  Returns 0 when the body has ended,
 * -1 when the connection ends. */
static int
fuzz_drain_body(struct forkd_req *req, struct conn *c)
{
    for (int i = 0; i < 1000; i++) {
        int rc = conn_drain(c, req->limits->body, FUZZ_DRAIN_MAX);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (conn_read(c) <= 0)
            return -1;
    }
    return -1;
}

/* worker.c worker_process.  Returns 0 when more bytes are needed, 1 when
 * the connection ends. */
static int
fuzz_process(struct forkd_req *req, struct conn *c, struct fuzz_client *cl,
             int lazy)
{
    for (;;) {
        size_t head_len = 0;
        int status = 0;
        if (c->scan.pos == 0 && fuzz_skip_empty_lines(c))
            return 0;
        enum http_scan_result r = http_scan_head(
            &c->scan, c->buf, c->len, req->limits, &head_len, &status);
        if (r == HTTP_SCAN_MORE) {
            /* A head is bounded: the buffer never fills while waiting. */
            FUZZ_CHECK(c->len <= req->limits->head);
            return 0;
        }
        if (r == HTTP_SCAN_ERROR) {
            FUZZ_CHECK(status == 400 || status == 414 || status == 431);
            /* worker_refuse: a HEAD refused before it was parsed. */
            int head_only = c->len >= 5 && memcmp(c->buf, "HEAD ", 5) == 0;
            (void)response_send_error(c, status, head_only,
                                      fuzz_cfg.send_timeout_s);
            return 1;
        }
        FUZZ_CHECK(head_len >= 4 && head_len <= c->len);
        FUZZ_CHECK(memcmp(c->buf + head_len - 4, "\r\n\r\n", 4) == 0);
        if (!fuzz_serve(req, c, head_len, cl, lazy))
            return 1;
        (void)conn_consume(c); /* c->len: what is left */
        if (c->draining && fuzz_drain_body(req, c) < 0)
            return 1;
        if (c->len == 0)
            return 0;
    }
}

/* Read what the server wrote and check that it is a series of responses. */
static void
fuzz_drain(struct fuzz_client *cl)
{
    char buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = read(cl->sv[1], buf, sizeof(buf))) > 0) {
        if (total == 0)
            FUZZ_CHECK(n >= 9 && memcmp(buf, "HTTP/1.1 ", 9) == 0);
        total += (size_t)n;
        if (fuzz_debug)
            (void)!write(2, buf, (size_t)n);
    }
    FUZZ_CHECK(n == 0 || errno == EAGAIN);
}

static void
fuzz_socketpair(int sv[2])
{
    int size = FUZZ_SOCKBUF;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    for (int i = 0; i < 2; i++) {
        (void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        (void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        /* Non-blocking as accept4 makes a worker's connections. */
        if (fcntl(sv[i], F_SETFL, O_NONBLOCK) < 0)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits small = {256, 8, 128, 1024, 0};
    struct http_limits lim;
    struct fuzz_client cl = {{-1, -1}, NULL, 0, NULL, 0, 0, 0};
    struct forkd_req req;
    struct conn c;
    uint8_t ctl;

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    ctl = data[0];
    cl.n_cycle = ctl & 7;
    if (size < 1 + cl.n_cycle)
        return 0;
    cl.cycle = data + 1;
    cl.rest = data + 1 + cl.n_cycle;
    cl.rest_len = size - 1 - cl.n_cycle;

    if (ctl & 0x08) {
        lim = small;
    } else {
        lim = (struct http_limits){
            fuzz_cfg.limit_request_line, fuzz_cfg.limit_request_fields,
            fuzz_cfg.limit_request_field_size, fuzz_cfg.limit_request_head,
            fuzz_cfg.limit_request_body};
    }
    switch (ctl >> 6) {
    case 0:
        lim.body = 0;
        break;
    case 1:
        lim.body = 16;
        break;
    default: /* 3: with the lazy handler */
        lim.body = fuzz_cfg.limit_request_body;
        break;
    }
    fuzz_cfg.keepalive_s = (ctl & 0x10) ? 0 : 5;

    memset(&req, 0, sizeof(req));
    req.cfg = &fuzz_cfg;
    req.limits = &lim;
    req.multiprocess = 1;
    req.multithread = (ctl & 0x20) != 0;
    snprintf(req.worker_pid, sizeof(req.worker_pid), "%d", 4242);
    req.headers = calloc(lim.fields, sizeof(*req.headers));
    req.body_buf = malloc(RESPONSE_BODY_BUF);
    if (req.headers == NULL || req.body_buf == NULL ||
        arena_init(&req.arena, FUZZ_ARENA) < 0)
        abort();

    memset(&c, 0, sizeof(c));
    fuzz_socketpair(cl.sv);
    c.fd = cl.sv[0];
    c.cap = lim.head + FUZZ_BODY_SPACE;
    /* Exactly cap bytes: ASan sees any access past the buffer. */
    if ((c.buf = malloc(c.cap)) == NULL)
        abort();
    /* A trusted proxy (forwarded_allow_ips) or a client. */
    c.trusted = (ctl & 0x20) != 0;
    strcpy(c.remote_addr, "127.0.0.1");
    strcpy(c.remote_port, "40000");
    c.server_name = "127.0.0.1";
    c.server_port = "8080";

    /* worker_readable: read what arrived, process, wait for more. */
    for (;;) {
        if (!cl.shut)
            fuzz_client_piece(&cl);
        ssize_t n = conn_read(&c);
        if (n == 0)
            break; /* EOF: the worker closes */
        if (n < 0) {
            /* ENOBUFS: the buffer filled while a head was awaited. */
            FUZZ_CHECK(errno == EAGAIN && !cl.shut);
            continue;
        }
        if (fuzz_process(&req, &c, &cl, (ctl >> 6) == 3))
            break;
    }

    fuzz_drain(&cl);
    close(cl.sv[0]);
    close(cl.sv[1]);
    free(c.buf);
    arena_fini(&req.arena);
    free(req.body_buf);
    free(req.headers);
    return 0;
}
