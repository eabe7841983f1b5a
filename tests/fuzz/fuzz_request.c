/* fuzz_request: libFuzzer harness for a worker's request path.  Arbitrary
 * bytes go, in arbitrary splits, through the code a worker runs on a
 * connection: http_scan_head per arrival, http_parse_head, environ_setup,
 * forkd_getenv and forkd_environ_next, a handler reading the body with
 * forkd_read and answering, response_finish, conn_drain_start, conn_drain
 * and conn_consume for pipelined requests.  Handlers: echo (app/echo.c,
 * linked in) and three of the harness's: fuzz_lazy_handle leaves bodies
 * unread for conn_drain; fuzz_careless_handle reads with
 * `while ((n = forkd_read(...)) > 0)`, ignores the final -1 and answers
 * 200; fuzz_twice_handle calls forkd_start_response twice with
 * Content-Lengths and writes bodies around them (sizes from the path).
 *
 * Input: byte 0 chooses the configuration; when its bits 6-7 are 3, byte 1
 * (ext) chooses more; then come (byte0 & 7) bytes, a cycle of piece sizes
 * (each + 1 bytes; none: all at once); the rest is what the client sends.
 * Byte 0: bit 3 small limits; bit 4 keepalive = 0; bit 5 multithread and a
 * trusted peer (X-Forwarded-For/-Proto); bits 6-7 limit_request_body
 * unlimited, 16 or the default with echo, or 3: ext follows.  Ext: bits 0-1
 * the handler (lazy, careless, twice, echo); bits 2-3 limit_request_body
 * (the default, 16, unlimited, 8192); bit 4 all the client's bytes are
 * sent when a head is complete (else bodies arrive piece by piece too);
 * bits 5-7 the careless reads' size (1, 2, 3, 7, 64, 1000, 4096, 65536;
 * the twice handler reads the body that way first unless they are 0).
 *
 * The connection's fd is one end of a socketpair.  The client's bytes go
 * into the other end one piece at a time: before each conn_read of the
 * worker's loop (as the worker reads what arrived), and whenever the
 * server waits for a body: the harness defines poll(2), which conn.c calls
 * when a read says EAGAIN (body_timeout_s is 0), and sends the next piece
 * there.  The client shuts down its side after its last byte, so nothing
 * blocks.  So heads and bodies are split wherever the cycle says,
 * deterministically.  A poll for output reads what the server wrote (up
 * to FUZZ_OUT_MAX); the rest is read at the end.
 *
 * Besides sanitizer reports it aborts on broken invariants (FUZZ_CHECK),
 * among them the keep-alive decision checked end to end: the harness reads
 * each head's framing itself and de-chunks the body with a strict parser
 * of its own (not body.c); a kept connection must be exactly at the end
 * of a complete, valid body within limit_request_body; every request must
 * start exactly there (after empty lines only); what forkd_read returns
 * must be the body as the harness decoded it, and -1 must stick.  The
 * server's output must be one response per answered request, each as long
 * as its framing says, with nothing between them and nothing after one
 * that says Connection: close.
 *
 * worker_process, worker_serve, worker_call, worker_refuse and
 * worker_drain (server/worker.c) are static: fuzz_process, fuzz_serve and
 * fuzz_refuse mirror them and must follow their changes. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
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
/* The server's send buffer: small, so that responses wait for the client
 * (conn_writev's partial writes and its poll for output). */
#define FUZZ_SERVER_SNDBUF 32768
#define FUZZ_TWICE_MAX 100000 /* the largest size fuzz_twice_handle takes */
/* The client stops reading (the server's writes then time out) after this
 * many bytes of responses: many pipelined large responses stay fast. */
#define FUZZ_OUT_MAX (8 * 1024 * 1024)
#define FUZZ_NONE SIZE_MAX /* no next request may start */

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

enum fuzz_handler { FUZZ_LAZY, FUZZ_CARELESS, FUZZ_TWICE, FUZZ_ECHO };

/* A body as the harness reads it from the client's bytes. */
enum fuzz_body {
    FUZZ_BODY_DONE,  /* complete and valid */
    FUZZ_BODY_SHORT, /* the client's bytes end inside it */
    FUZZ_BODY_BAD    /* malformed, or a head whose framing is not clear */
};

/* The current request, by the harness's own reading. */
struct fuzz_msg {
    enum fuzz_body status;
    int chunked;
    uint64_t length;        /* Content-Length */
    size_t end;             /* DONE: stream offset after the body */
    const uint8_t *decoded; /* the body's data, decoded_len bytes */
    size_t decoded_len;
};

/* One answered request, for the check of the responses. */
struct fuzz_record {
    int head_only;    /* its response has no content (HEAD) */
    int must_close;   /* its body failed: the response says close */
    int twice;        /* fuzz_twice_handle answered it */
    int twice_status; /* its second status, 0 if that start failed */
};

struct fuzz {
    /* The client: what it sends, how, and the socketpair. */
    int sv[2]; /* sv[0]: the server's conn fd; sv[1]: the client */
    const uint8_t *data;
    size_t len, sent;
    const uint8_t *cycle; /* piece sizes, n_cycle of them */
    size_t n_cycle, next;
    int shut; /* the client shut down its writing side */
    int whole;
    enum fuzz_handler handler;
    size_t read_size;
    /* The server's side, as a worker has it. */
    struct conn c;
    struct forkd_req req;
    struct http_limits lim;
    /* The harness's model of the stream. */
    size_t expect; /* where the next request must start, or FUZZ_NONE */
    size_t start;  /* where the current one started */
    struct fuzz_msg msg;
    uint8_t *decoded;        /* len bytes: the current chunked body */
    uint64_t got;            /* body bytes forkd_read gave */
    int read_end, read_fail; /* it returned 0 at the end, or -1 */
    /* What was answered, and what the server wrote. */
    struct fuzz_record *recs;
    size_t n_recs, cap_recs;
    char *out;
    size_t out_len, out_cap;
    int capped; /* the client stopped reading at FUZZ_OUT_MAX */
};

static struct cfg fuzz_cfg;
static int fuzz_debug; /* FUZZ_REQUEST_DEBUG=1: copy responses to stderr */
static struct fuzz *fuzz_cur; /* the input running, for poll and handlers */
static int (*fuzz_real_poll)(struct pollfd *, nfds_t, int);
static char fuzz_lower[FUZZ_TWICE_MAX + 26], fuzz_upper[FUZZ_TWICE_MAX + 26];
static char fuzz_read_buf[65536];
static const size_t fuzz_read_sizes[8] = {1, 2, 3, 7, 64, 1000, 4096, 65536};

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
    /* Nothing may block: a poll for input gets the next piece, or EOF,
     * and a poll for output finds the client reading. */
    fuzz_cfg.body_timeout_s = 0;
    fuzz_cfg.send_timeout_s = 0;
    fuzz_debug = getenv("FUZZ_REQUEST_DEBUG") != NULL;
    *(void **)&fuzz_real_poll = dlsym(RTLD_NEXT, "poll");
    if (fuzz_real_poll == NULL)
        abort();
    for (size_t i = 0; i < sizeof(fuzz_lower); i++) {
        fuzz_lower[i] = (char)('a' + i % 26);
        fuzz_upper[i] = (char)('A' + i % 26);
    }
    return 0;
}

/* --- the client ---------------------------------------------------------- */

/* Write n more bytes (all of them with n = SIZE_MAX), and shut down the
 * client's side once it has nothing left. */
static void
fuzz_send(struct fuzz *f, size_t n)
{
    if (n > f->len - f->sent)
        n = f->len - f->sent;
    while (n > 0) {
        ssize_t k = write(f->sv[1], f->data + f->sent, n);
        FUZZ_CHECK(k > 0); /* the buffers hold FUZZ_MAX_INPUT */
        f->sent += (size_t)k;
        n -= (size_t)k;
    }
    if (f->sent == f->len && !f->shut) {
        shutdown(f->sv[1], SHUT_WR);
        f->shut = 1;
    }
}

/* The next piece. */
static void
fuzz_piece(struct fuzz *f)
{
    size_t n = SIZE_MAX;

    if (f->n_cycle > 0)
        n = (size_t)f->cycle[f->next++ % f->n_cycle] + 1;
    fuzz_send(f, n);
}

/* The bytes the server has read from the socket. */
static size_t
fuzz_consumed(const struct fuzz *f)
{
    int queued = 0;

    if (ioctl(f->sv[0], FIONREAD, &queued) < 0)
        abort();
    FUZZ_CHECK(queued >= 0 && (size_t)queued <= f->sent);
    return f->sent - (size_t)queued;
}

/* Read what the server wrote into f->out. */
static void
fuzz_collect(struct fuzz *f)
{
    for (;;) {
        if (f->out_cap - f->out_len < 65536) {
            size_t cap = f->out_cap ? 2 * f->out_cap : 131072;
            char *p = realloc(f->out, cap);
            if (p == NULL)
                abort();
            f->out = p;
            f->out_cap = cap;
        }
        ssize_t n =
            read(f->sv[1], f->out + f->out_len, f->out_cap - f->out_len);
        if (n <= 0) {
            FUZZ_CHECK(n == 0 || errno == EAGAIN);
            return;
        }
        if (fuzz_debug)
            (void)!write(2, f->out + f->out_len, (size_t)n);
        f->out_len += (size_t)n;
    }
}

/* conn.c waits here when a read says EAGAIN (body_timeout_s 0) or a write
 * would block (send_timeout_s 0): the client sends its next piece, or
 * reads.  Any other poll is passed on. */
int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
    struct fuzz *f = fuzz_cur;

    if (f != NULL && n == 1 && fds[0].fd == f->sv[0]) {
        if ((fds[0].events & POLLIN) && !f->shut)
            fuzz_piece(f);
        if ((fds[0].events & POLLOUT) && f->out_len < FUZZ_OUT_MAX)
            fuzz_collect(f);
        else if (fds[0].events & POLLOUT)
            f->capped = 1;
    }
    return fuzz_real_poll(fds, n, timeout);
}

/* --- the harness's own reading of a request ------------------------------ */

static int
fuzz_is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A byte of a field value or chunk extension: no CTL but HTAB. */
static int
fuzz_is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
fuzz_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
fuzz_ieq(const void *p, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp(p, s, n) == 0;
}

static void
fuzz_trim(const uint8_t **a, const uint8_t **b)
{
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
}

/* The framing of the head h[0..n) (RFC 9112 6.3), read without http.c:
 * chunked, a Content-Length, or neither.  Returns -1 when it is not clear
 * (TE with CL or on 1.0, codings other than one "chunked", CL not digits
 * or repeated, a line that is not a field line): a server must refuse it. */
static int
fuzz_frame(const uint8_t *h, size_t n, int *chunked, uint64_t *length)
{
    const uint8_t *end = h + n, *line = h, *eol;
    unsigned cl = 0, te = 0, codings = 0;
    int last_chunked = 0, minor;

    *chunked = 0;
    *length = 0;
    eol = memmem(line, n, "\r\n", 2);
    if (eol == NULL || eol - line < 9)
        return -1;
    if (memcmp(eol - 9, " HTTP/1.1", 9) == 0)
        minor = 1;
    else if (memcmp(eol - 9, " HTTP/1.0", 9) == 0)
        minor = 0;
    else
        return -1;
    for (line = eol + 2; line < end; line = eol + 2) {
        size_t name = 0, len;
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (eol == NULL)
            return -1;
        if (eol == line)
            break; /* the empty line */
        len = (size_t)(eol - line);
        while (name < len && fuzz_is_tchar(line[name]))
            name++;
        if (name == 0 || name == len || line[name] != ':')
            return -1;
        const uint8_t *v = line + name + 1, *ve = eol;
        fuzz_trim(&v, &ve);
        if (fuzz_ieq(line, name, "content-length")) {
            if (++cl > 1 || ve == v || ve - v > 18)
                return -1;
            for (; v < ve; v++) {
                if (*v < '0' || *v > '9')
                    return -1;
                *length = *length * 10 + (uint64_t)(*v - '0');
            }
        } else if (fuzz_ieq(line, name, "transfer-encoding")) {
            te++;
            while (v < ve) {
                const uint8_t *e = memchr(v, ',', (size_t)(ve - v));
                const uint8_t *a = v, *b = e ? e : ve;
                fuzz_trim(&a, &b);
                if (b > a) {
                    codings++;
                    last_chunked = fuzz_ieq(a, (size_t)(b - a), "chunked");
                }
                v = e ? e + 1 : ve;
            }
        }
    }
    if (te) {
        if (cl || minor == 0 || codings != 1 || !last_chunked)
            return -1;
        *chunked = 1;
    }
    return 0;
}

/* CRLF at in[*i]: 1 past it, or 0 with *st SHORT or BAD. */
static int
fuzz_crlf(const uint8_t *in, size_t avail, size_t *i, enum fuzz_body *st)
{
    if (*i < avail && in[*i] != '\r')
        *st = FUZZ_BODY_BAD;
    else if (*i + 1 < avail && in[*i + 1] != '\n')
        *st = FUZZ_BODY_BAD;
    else if (*i + 1 >= avail)
        *st = FUZZ_BODY_SHORT;
    else {
        *i += 2;
        return 1;
    }
    return 0;
}

/* A strict reading of the chunked body in in[0..avail) (RFC 9112 7.1),
 * independent of body.c: sizes are 1*HEXDIG followed by CR, ';' or BWS
 * and ';'; every line ends in CRLF; chunk data is followed by CRLF;
 * trailer lines are a token, ':' and a value without CTL.  (Extensions
 * are checked only for what ends them: their grammar does not move the
 * end.)  The data goes to out; *raw gets the bytes read (at the end, the
 * fault, or avail), *decoded the data bytes. */
static enum fuzz_body
fuzz_chunked(const uint8_t *in, size_t avail, uint8_t *out, size_t *raw,
             size_t *decoded)
{
    enum fuzz_body st = FUZZ_BODY_SHORT;
    size_t i = 0, n = 0;

    for (;;) { /* every round reads at least a size line */
        uint64_t size = 0;
        size_t digits = 0;
        while (i < avail && fuzz_hex(in[i]) >= 0) {
            if (size >> 56) {
                st = FUZZ_BODY_BAD; /* more than any input */
                goto out;
            }
            size = size * 16 + (uint64_t)fuzz_hex(in[i++]);
            digits++;
        }
        if (i == avail)
            goto out;
        if (digits == 0) {
            st = FUZZ_BODY_BAD;
            goto out;
        }
        if (in[i] == ' ' || in[i] == '\t') {
            while (i < avail && (in[i] == ' ' || in[i] == '\t'))
                i++;
            if (i == avail)
                goto out;
            if (in[i] != ';') {
                st = FUZZ_BODY_BAD; /* BWS only before an extension */
                goto out;
            }
        } else if (in[i] != '\r' && in[i] != ';') {
            st = FUZZ_BODY_BAD;
            goto out;
        }
        while (i < avail && in[i] != '\r') {
            if (!fuzz_is_value_char(in[i])) {
                st = FUZZ_BODY_BAD;
                goto out;
            }
            i++;
        }
        if (!fuzz_crlf(in, avail, &i, &st))
            goto out;
        if (size == 0)
            break;
        size_t k = avail - i < size ? avail - i : (size_t)size;
        memcpy(out + n, in + i, k);
        n += k;
        i += k;
        if (k < size || !fuzz_crlf(in, avail, &i, &st))
            goto out;
    }
    for (;;) { /* the trailer section, then CRLF */
        size_t name = 0;
        if (i < avail && in[i] == '\r') {
            if (fuzz_crlf(in, avail, &i, &st))
                st = FUZZ_BODY_DONE;
            goto out;
        }
        while (i < avail && fuzz_is_tchar(in[i]))
            i++, name++;
        if (i == avail)
            goto out;
        if (name == 0 || in[i] != ':') {
            st = FUZZ_BODY_BAD;
            goto out;
        }
        for (i++; i < avail && in[i] != '\r'; i++) {
            if (!fuzz_is_value_char(in[i])) {
                st = FUZZ_BODY_BAD;
                goto out;
            }
        }
        if (!fuzz_crlf(in, avail, &i, &st))
            goto out;
    }
out:
    *raw = i;
    *decoded = n;
    return st;
}

/* The harness's reading of the request whose head_len-byte head starts
 * at f->start, in f->msg.  Returns -1 if its framing is not clear. */
static int
fuzz_model(struct fuzz *f, size_t head_len)
{
    struct fuzz_msg *m = &f->msg;
    size_t body = f->start + head_len, avail = f->len - body, raw;

    memset(m, 0, sizeof(*m));
    if (fuzz_frame(f->data + f->start, head_len, &m->chunked, &m->length) < 0) {
        m->status = FUZZ_BODY_BAD;
        return -1;
    }
    if (m->chunked) {
        m->status = fuzz_chunked(f->data + body, avail, f->decoded, &raw,
                                 &m->decoded_len);
        m->decoded = f->decoded;
    } else {
        m->decoded = f->data + body;
        m->decoded_len = m->length < avail ? (size_t)m->length : avail;
        raw = m->decoded_len;
        m->status = m->length <= avail ? FUZZ_BODY_DONE : FUZZ_BODY_SHORT;
    }
    m->end = body + raw;
    return 0;
}

/* Invariant: a request starts where the last kept one ended, after empty
 * lines only (RFC 9112 2.2), never inside a body: else the bytes a client
 * sent as data are served as a request (smuggling).  Called when the
 * server begins to look for a head in c->buf. */
static void
fuzz_check_start(struct fuzz *f)
{
    const struct conn *c = &f->c;
    size_t consumed = fuzz_consumed(f);

    FUZZ_CHECK(consumed >= c->len);
    f->start = consumed - c->len;
    /* The buffer holds the client's bytes from start, unchanged. */
    FUZZ_CHECK(memcmp(c->buf, f->data + f->start, c->len) == 0);
    FUZZ_CHECK(f->expect != FUZZ_NONE);
    FUZZ_CHECK(f->start >= f->expect && (f->start - f->expect) % 2 == 0);
    for (size_t i = f->expect; i < f->start; i += 2)
        FUZZ_CHECK(f->data[i] == '\r' && f->data[i + 1] == '\n');
}

/* --- checks of what a handler sees --------------------------------------- */

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

/* forkd_read, checked against the harness's reading of the body: the
 * bytes are the body's next ones, never past limit_request_body; 0 only
 * at the end of a complete, valid body; after -1 always -1, and the
 * connection is not kept. */
static ssize_t
fuzz_read(struct forkd_req *req, char *buf, size_t n)
{
    struct fuzz *f = fuzz_cur;
    const struct fuzz_msg *m = &f->msg;
    ssize_t r = forkd_read(req, buf, n);

    if (r > 0) {
        FUZZ_CHECK((size_t)r <= n && !f->read_fail && !f->read_end);
        FUZZ_CHECK(f->got + (size_t)r <= m->decoded_len);
        FUZZ_CHECK(memcmp(buf, m->decoded + f->got, (size_t)r) == 0);
        f->got += (size_t)r;
        FUZZ_CHECK(f->lim.body == 0 || f->got <= f->lim.body);
    } else if (r == 0) {
        FUZZ_CHECK(!f->read_fail);
        if (n > 0) {
            FUZZ_CHECK(m->status == FUZZ_BODY_DONE);
            FUZZ_CHECK(f->got == m->decoded_len);
            f->read_end = 1;
        }
    } else {
        FUZZ_CHECK(r == -1 && !f->read_end);
        FUZZ_CHECK(req->body_status != 0 && !req->keep_alive);
        f->read_fail = 1;
    }
    return r;
}

/* --- handlers ------------------------------------------------------------ */

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
        fuzz_read(req, buf, sizeof(buf)) < 0)
        return -1;
    if (forkd_start_response(req, "200 OK", headers, 1) < 0)
        return -1;
    return forkd_write(req, "ok\n", 3) == 3 ? 0 : -1;
}

/* The careless read loop: stops at 0 or -1 without telling them apart. */
static ssize_t
fuzz_read_all(struct forkd_req *req, size_t size)
{
    ssize_t n;
    size_t rounds = 0;

    while ((n = fuzz_read(req, fuzz_read_buf, size)) > 0)
        FUZZ_CHECK(++rounds <= fuzz_cur->len); /* each takes a byte */
    return n;
}

/* A handler as many are written: it reads the body until forkd_read
 * stops, never looks at why, and answers 200.  The server must still close
 * the connection after a failed body (req->keep_alive = 0). */
static int
fuzz_careless_handle(struct forkd_req *req)
{
    static const struct forkd_header headers[] = {
        {"Content-Type", "text/plain"},
    };
    size_t size = fuzz_cur->read_size;
    ssize_t n = fuzz_read_all(req, size);
    ssize_t again = fuzz_read(req, fuzz_read_buf, size);

    /* A failed body stays failed; an ended one stays ended. */
    FUZZ_CHECK(again == (n < 0 ? -1 : 0));
    (void)forkd_start_response(req, "200 OK", headers, 1);
    (void)forkd_write(req, "careless\n", 9);
    return 0; /* careless: whatever happened */
}

/* Up to 6 numbers from the '/'-separated segments of path; -1 where a
 * segment is not 1-6 digits. */
static void
fuzz_twice_args(const char *path, long v[6])
{
    for (size_t k = 0; k < 6; k++)
        v[k] = -1;
    for (size_t k = 0; *path && k < 6; k++) {
        if (*path == '/')
            path++;
        size_t len = strcspn(path, "/");
        if (len > 0 && len <= 6 && strspn(path, "0123456789") >= len)
            v[k] = strtol(path, NULL, 10);
        path += len;
    }
}

/* Write total bytes of pattern, step at a time, ignoring failures (as a
 * careless handler does); but a response never takes more than the
 * Content-Length it was started with (length, -1: none). */
static void
fuzz_twice_write(struct forkd_req *req, const char *pattern, long total,
                 long step, long length, int started)
{
    long accepted = 0;

    if (total <= 0)
        return;
    if (total > FUZZ_TWICE_MAX)
        total = FUZZ_TWICE_MAX;
    if (step <= 0 || step > total)
        step = total;
    if (total / step > 4096)
        step = total / 4096 + 1; /* bounded time */
    for (long off = 0; off < total; off += step) {
        long k = step < total - off ? step : total - off;
        ssize_t r = forkd_write(req, pattern + off % 26, (size_t)k);
        if (r == k)
            accepted += k;
        else
            FUZZ_CHECK(r == -1);
    }
    if (started && length >= 0)
        FUZZ_CHECK(accepted <= length);
}

/* A handler that changes its mind: PATH_INFO /L1/W1/L2/W2/S/STEP starts a
 * "299 First" response (Content-Length L1 unless that segment is not a
 * number), writes W1 bytes a-z, starts again with status S (200 unless a
 * code in 200..599 other than 299, 400, 408, 413 and 500) and
 * Content-Length L2, and writes W2 bytes A-Z, STEP bytes a write.  The
 * bytes of the first response must never go out with the second head. */
static int
fuzz_twice_handle(struct forkd_req *req)
{
    struct fuzz *f = fuzz_cur;
    struct fuzz_record *rec = &f->recs[f->n_recs - 1];
    struct forkd_header hs[2] = {{"Content-Type", "text/plain"},
                                 {"Content-Length", NULL}};
    char len1[24], len2[24], status[24];
    long v[6];
    int code, rc, sent;

    if (f->read_size != fuzz_read_sizes[0])
        (void)fuzz_read_all(req, f->read_size);
    fuzz_twice_args(forkd_getenv(req, "PATH_INFO"), v);
    code = v[4] >= 200 && v[4] <= 599 && v[4] != 299 && v[4] != 400 &&
                   v[4] != 408 && v[4] != 413 && v[4] != 500
               ? (int)v[4]
               : 200;
    snprintf(len1, sizeof(len1), "%ld", v[0]);
    snprintf(len2, sizeof(len2), "%ld", v[2]);
    snprintf(status, sizeof(status), "%d Second", code);
    hs[1].value = len1;
    rc = forkd_start_response(req, "299 First", hs, v[0] >= 0 ? 2 : 1);
    fuzz_twice_write(req, fuzz_lower, v[1], v[5], v[0], rc == 0);
    sent = req->resp.head_sent;
    hs[1].value = len2;
    rc = forkd_start_response(req, status, hs, v[2] >= 0 ? 2 : 1);
    /* Too late once the head went out, else always possible. */
    FUZZ_CHECK(sent ? rc == -1 : rc == 0);
    rec->twice_status = rc == 0 ? code : 0;
    /* A 204's Content-Length is dropped (no content, RFC 9110 8.6): the
     * writes go nowhere, and nothing bounds them. */
    fuzz_twice_write(req, fuzz_upper, v[3], v[5], code == 204 ? -1 : v[2],
                     rc == 0);
    return 0;
}

/* --- the worker's part, mirrored ----------------------------------------- */

/* One more answered request. */
static struct fuzz_record *
fuzz_record(struct fuzz *f, int head_only)
{
    if (f->n_recs == f->cap_recs) {
        size_t cap = f->cap_recs ? 2 * f->cap_recs : 16;
        struct fuzz_record *p = realloc(f->recs, cap * sizeof(*p));
        if (p == NULL)
            abort();
        f->recs = p;
        f->cap_recs = cap;
    }
    memset(&f->recs[f->n_recs], 0, sizeof(f->recs[0]));
    f->recs[f->n_recs].head_only = head_only;
    return &f->recs[f->n_recs++];
}

/* worker.c worker_refuse (its bytes go out as response_send_error's). */
static void
fuzz_refuse(struct fuzz *f, int status, const struct http_head *h)
{
    struct conn *c = &f->c;
    int head_only = h && h->method ? strcmp(h->method, "HEAD") == 0
                                   : c->buf && c->len >= 5 &&
                                         memcmp(c->buf, "HEAD ", 5) == 0;

    (void)fuzz_record(f, head_only);
    /* A failure shows as a missing response in fuzz_check_responses. */
    (void)response_send_error(c, status, head_only, fuzz_cfg.send_timeout_s);
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

/* worker.c worker_request_init + worker_serve + worker_call, with the
 * harness's checks.  Returns 1 if the connection may carry another
 * request. */
static int
fuzz_serve(struct fuzz *f, size_t head_len)
{
    struct forkd_req *req = &f->req;
    struct conn *c = &f->c;
    const struct fuzz_msg *m = &f->msg;
    int status, keep, rc, clear;

    if (f->whole)
        fuzz_send(f, SIZE_MAX); /* ext bit 4: the rest arrives now */
    clear = fuzz_model(f, head_len) == 0;
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
        fuzz_refuse(f, status, &req->head);
        return 0;
    }
    /* The server reads the framing as the harness does. */
    FUZZ_CHECK(clear);
    FUZZ_CHECK(req->head.chunked == m->chunked);
    FUZZ_CHECK(m->chunked || req->head.body_length == m->length);
    req->keep_alive = req->head.keep_alive && fuzz_cfg.keepalive_s > 0;
    fuzz_environ(req);
    (void)fuzz_record(f, strcmp(req->head.method, "HEAD") == 0);
    f->recs[f->n_recs - 1].twice = f->handler == FUZZ_TWICE;
    f->got = 0;
    f->read_end = f->read_fail = 0;
    switch (f->handler) {
    case FUZZ_LAZY:
        rc = fuzz_lazy_handle(req);
        break;
    case FUZZ_CARELESS:
        rc = fuzz_careless_handle(req);
        break;
    case FUZZ_TWICE:
        rc = fuzz_twice_handle(req);
        break;
    default:
        rc = forkd_app.handle(req, NULL);
        break;
    }
    keep = response_finish(req, rc) == 0;
    if (keep && !req->head.body_done)
        keep = conn_drain_start(req) == 0;
    c->requests++;
    /* Every handler here reads before it answers: a failed body is known
     * when the head goes out, which must say close. */
    f->recs[f->n_recs - 1].must_close = req->body_status != 0;
    FUZZ_CHECK(!(req->body_status || f->read_fail) || !keep);
    if (!keep)
        return 0;
    /* A kept connection is past its body, or discards the rest. */
    FUZZ_CHECK(req->head.body_done || c->draining);
    FUZZ_CHECK(c->body_off <= c->len);
    /* The next request may start only after a complete, valid body. */
    f->expect = m->status == FUZZ_BODY_DONE &&
                        (f->lim.body == 0 || m->decoded_len <= f->lim.body)
                    ? m->end
                    : FUZZ_NONE;
    if (!c->draining) {
        FUZZ_CHECK(f->expect != FUZZ_NONE);
        FUZZ_CHECK(fuzz_consumed(f) - c->len + c->body_off == f->expect);
    }
    return 1;
}

/* worker.c worker_process with worker_drain.  Returns 0 when more bytes
 * are needed, 1 when the connection ends. */
static int
fuzz_process(struct fuzz *f)
{
    struct conn *c = &f->c;

    for (;;) {
        size_t head_len = 0;
        int status = 0;
        if (c->draining) {
            int rc = conn_drain(c, f->lim.body, FUZZ_DRAIN_MAX);
            if (rc < 0)
                return 1;
            if (rc == 0) {
                FUZZ_CHECK(c->len == 0); /* it waits with nothing left */
                return 0;
            }
            /* Drained exactly to the end of the body. */
            FUZZ_CHECK(f->expect != FUZZ_NONE);
            FUZZ_CHECK(fuzz_consumed(f) - c->len == f->expect);
            if (c->len == 0)
                return 0;
        }
        if (c->scan.pos == 0) {
            if (fuzz_skip_empty_lines(c))
                return 0;
            fuzz_check_start(f);
        }
        enum http_scan_result r = http_scan_head(&c->scan, c->buf, c->len,
                                                 &f->lim, &head_len, &status);
        if (r == HTTP_SCAN_MORE) {
            /* A head is bounded: the buffer never fills while waiting. */
            FUZZ_CHECK(c->len <= f->lim.head);
            return 0;
        }
        if (r == HTTP_SCAN_ERROR) {
            FUZZ_CHECK(status == 400 || status == 414 || status == 431);
            fuzz_refuse(f, status, NULL);
            return 1;
        }
        FUZZ_CHECK(head_len >= 4 && head_len <= c->len);
        FUZZ_CHECK(memcmp(c->buf + head_len - 4, "\r\n\r\n", 4) == 0);
        if (!fuzz_serve(f, head_len))
            return 1;
        if (conn_consume(c) == 0)
            return 0;
    }
}

/* --- the responses ------------------------------------------------------- */

/* Body bytes p[0..n) at offset off of the response to rec with status:
 * the twice handler's two responses are told apart by their bytes. */
static void
fuzz_check_content(const struct fuzz_record *rec, int status, const char *p,
                   size_t n, uint64_t off)
{
    const char *pattern;

    if (!rec->twice)
        return;
    if (status == 299)
        pattern = fuzz_lower;
    else if (rec->twice_status != 0 && status == rec->twice_status)
        pattern = fuzz_upper;
    else {
        FUZZ_CHECK(status == 400 || status == 408 || status == 413 ||
                   status == 500);
        return;
    }
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(p[i] == pattern[(off + i) % 26]);
}

/* A chunked response body at p: returns its end (end if cut short, with
 * *complete 0). */
static const char *
fuzz_check_chunks(const struct fuzz_record *rec, int status, const char *p,
                  const char *end, int *complete)
{
    uint64_t off = 0;

    *complete = 0;
    for (;;) { /* every round moves p on, or returns */
        uint64_t size = 0;
        int digits = 0;
        while (p < end && fuzz_hex((unsigned char)*p) >= 0) {
            size = size * 16 + (uint64_t)fuzz_hex((unsigned char)*p++);
            FUZZ_CHECK(++digits <= 16);
        }
        if (p == end)
            return end;
        FUZZ_CHECK(digits > 0 && *p == '\r');
        if (end - p < 2)
            return end;
        FUZZ_CHECK(p[1] == '\n');
        p += 2;
        if (size == 0) {
            if (p < end)
                FUZZ_CHECK(*p == '\r');
            if (end - p < 2)
                return end;
            FUZZ_CHECK(p[1] == '\n');
            *complete = 1;
            return p + 2;
        }
        size_t k = (size_t)(end - p) < size ? (size_t)(end - p) : size;
        fuzz_check_content(rec, status, p, k, off);
        off += k;
        p += k;
        if (k < size || p == end)
            return end;
        FUZZ_CHECK(*p == '\r');
        if (end - p < 2)
            return end;
        FUZZ_CHECK(p[1] == '\n');
        p += 2;
    }
}

/* Invariant: the bytes on the wire match the framing in the heads (DESIGN
 * 7): one response per answered request, in order, each exactly as long
 * as its Content-Length or chunks say, no bytes between them, nothing
 * after a response that says Connection: close or is cut short.  (When
 * the client stopped reading, a write timed out: the last response may be
 * cut anywhere, and the rest missing.) */
static void
fuzz_check_responses(struct fuzz *f)
{
    const char *p = f->out, *end = f->out + f->out_len;
    size_t k = 0;

    while (p < end) { /* every round moves p on */
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *line, *eol;
        int status, n_cl = 0, chunked = 0, close = 0, complete = 1;
        uint64_t cl = 0;

        if (hend == NULL && f->capped)
            break; /* a write that timed out: nothing more to check */
        FUZZ_CHECK(hend != NULL); /* a head goes out whole */
        hend += 4;
        FUZZ_CHECK(hend - p >= 17 && memcmp(p, "HTTP/1.1 ", 9) == 0);
        FUZZ_CHECK(p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' &&
                   p[11] >= '0' && p[11] <= '9' && p[12] == ' ');
        status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        eol = memmem(p, (size_t)(hend - p), "\r\n", 2);
        for (line = eol + 2; line < hend - 2; line = eol + 2) {
            const char *colon;
            eol = memmem(line, (size_t)(hend - line), "\r\n", 2);
            colon = memchr(line, ':', (size_t)(eol - line));
            FUZZ_CHECK(colon != NULL && colon[1] == ' ');
            const char *v = colon + 2;
            size_t vlen = (size_t)(eol - v);
            if (fuzz_ieq(line, (size_t)(colon - line), "content-length")) {
                n_cl++;
                FUZZ_CHECK(vlen > 0 && vlen <= 18);
                for (cl = 0; v < eol; v++) {
                    FUZZ_CHECK(*v >= '0' && *v <= '9');
                    cl = cl * 10 + (uint64_t)(*v - '0');
                }
            } else if (fuzz_ieq(line, (size_t)(colon - line),
                                "transfer-encoding")) {
                FUZZ_CHECK(fuzz_ieq(v, vlen, "chunked") && !chunked);
                chunked = 1;
            } else if (fuzz_ieq(line, (size_t)(colon - line), "connection")) {
                close |= fuzz_ieq(v, vlen, "close");
            }
        }
        p = hend;
        FUZZ_CHECK(n_cl <= 1 && !(n_cl && chunked));
        if (status == 100) {
            /* 100 Continue: before the final response of a request. */
            FUZZ_CHECK(k < f->n_recs && !n_cl && !chunked);
            continue;
        }
        FUZZ_CHECK(status >= 200 && k < f->n_recs);
        const struct fuzz_record *rec = &f->recs[k++];
        FUZZ_CHECK(!rec->must_close || close);
        FUZZ_CHECK(status != 204 || !n_cl);
        if (rec->head_only || status == 204 || status == 304) {
            ; /* no content, whatever the head says */
        } else if (chunked) {
            p = fuzz_check_chunks(rec, status, p, end, &complete);
        } else if (n_cl) {
            size_t avail = (size_t)(end - p);
            size_t take = avail < cl ? avail : (size_t)cl;
            fuzz_check_content(rec, status, p, take, 0);
            complete = take == cl;
            p += take;
        } else {
            FUZZ_CHECK(close); /* delimited by the close */
            fuzz_check_content(rec, status, p, (size_t)(end - p), 0);
            p = end;
        }
        if (close || !complete)
            FUZZ_CHECK(p == end);
    }
    /* Every request answered (when the client read all). */
    FUZZ_CHECK(k == f->n_recs || (f->capped && k < f->n_recs));
}

static void
fuzz_socketpair(int sv[2])
{
    int size = FUZZ_SOCKBUF, small = FUZZ_SERVER_SNDBUF;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    for (int i = 0; i < 2; i++) {
        (void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, i ? &size : &small,
                         sizeof(size));
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
    static const uint64_t ext_body[4] = {0, 16, 0, 8192};
    struct fuzz f;
    struct forkd_req *req = &f.req;
    struct conn *c = &f.c;
    size_t off = 1;
    uint8_t ctl, ext = 0;

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    memset(&f, 0, sizeof(f));
    ctl = data[0];
    if ((ctl >> 6) == 3) {
        if (size < 2)
            return 0;
        ext = data[off++];
    }
    f.n_cycle = ctl & 7;
    if (size < off + f.n_cycle)
        return 0;
    f.cycle = data + off;
    f.data = data + off + f.n_cycle;
    f.len = size - off - f.n_cycle;

    if (ctl & 0x08) {
        f.lim = small;
    } else {
        f.lim = (struct http_limits){
            fuzz_cfg.limit_request_line, fuzz_cfg.limit_request_fields,
            fuzz_cfg.limit_request_field_size, fuzz_cfg.limit_request_head,
            fuzz_cfg.limit_request_body};
    }
    if ((ctl >> 6) == 3) {
        f.handler = (enum fuzz_handler)(ext & 3);
        f.lim.body = ((ext >> 2) & 3) == 0 ? fuzz_cfg.limit_request_body
                                           : ext_body[(ext >> 2) & 3];
        f.whole = (ext & 0x10) != 0;
        f.read_size = fuzz_read_sizes[ext >> 5];
    } else {
        f.handler = FUZZ_ECHO;
        f.lim.body = (ctl >> 6) == 0   ? 0
                     : (ctl >> 6) == 1 ? 16
                                       : fuzz_cfg.limit_request_body;
    }
    fuzz_cfg.keepalive_s = (ctl & 0x10) ? 0 : 5;

    req->cfg = &fuzz_cfg;
    req->limits = &f.lim;
    req->multiprocess = 1;
    req->multithread = (ctl & 0x20) != 0;
    snprintf(req->worker_pid, sizeof(req->worker_pid), "%d", 4242);
    req->headers = calloc(f.lim.fields, sizeof(*req->headers));
    req->body_buf = malloc(RESPONSE_BODY_BUF);
    f.decoded = malloc(f.len + 1);
    if (req->headers == NULL || req->body_buf == NULL || f.decoded == NULL ||
        arena_init(&req->arena, FUZZ_ARENA) < 0)
        abort();

    fuzz_socketpair(f.sv);
    c->fd = f.sv[0];
    c->cap = f.lim.head + FUZZ_BODY_SPACE;
    /* Exactly cap bytes: ASan sees any access past the buffer. */
    if ((c->buf = malloc(c->cap)) == NULL)
        abort();
    /* A trusted proxy (forwarded_allow_ips) or a client. */
    c->trusted = (ctl & 0x20) != 0;
    strcpy(c->remote_addr, "127.0.0.1");
    strcpy(c->remote_port, "40000");
    c->server_name = "127.0.0.1";
    c->server_port = "8080";
    fuzz_cur = &f;

    /* worker_readable: read what arrived, process, wait for more.  Each
     * round sends a piece (at least a byte) or, once all is sent, reads
     * at least a byte or EOF. */
    for (size_t round = 0;; round++) {
        FUZZ_CHECK(round <= 2 * f.len + 2);
        if (!f.shut)
            fuzz_piece(&f);
        ssize_t n = conn_read(c);
        if (n == 0)
            break; /* EOF: the worker closes */
        if (n < 0) {
            /* ENOBUFS: the buffer filled while a head was awaited. */
            FUZZ_CHECK(errno == EAGAIN && !f.shut);
            continue;
        }
        if (fuzz_process(&f))
            break;
    }

    fuzz_collect(&f);
    fuzz_check_responses(&f);
    fuzz_cur = NULL;
    close(f.sv[0]);
    close(f.sv[1]);
    free(c->buf);
    arena_fini(&req->arena);
    free(req->body_buf);
    free(req->headers);
    free(f.decoded);
    free(f.recs);
    free(f.out);
    return 0;
}
