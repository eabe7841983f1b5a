/* test_conn: one client socket's I/O: the forwarded_allow_ips match, the
 * peer's address as text, reads into the connection's buffer, what a
 * finished request leaves for the next one, and the writes that wait for
 * the client with a deadline (issue 11: the deadline holds when signals
 * interrupt the wait; sendfile works from a pipe).  The handler's body
 * reads (forkd_read: 100 Continue once, bytes that arrive later, the
 * failures 400, 408 and 413 that stick and close the connection) and the
 * poller's discarding of a body the handler left (conn_drain_start,
 * conn_drain).  Each connection is one end of a non-blocking socketpair;
 * the test holds the other. */
#include "conn.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "forkd.h"
#include "req.h"

#define CONN_TEST_CAP 8
#define CONN_TEST_BIG (4 * 1024 * 1024) /* more than a socketpair holds */
#define CONN_TEST_TICK_US 100000        /* SIGALRM every 100 ms */
#define CONN_TEST_TICKS_MAX 60          /* then the peer goes: no hang */

struct conn_test {
    struct conn c;
    int peer; /* the client's end */
    char buf[CONN_TEST_CAP];
};

static void
conn_test_init(struct conn_test *t)
{
    int sv[2];

    memset(t, 0, sizeof(*t));
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
    t->c.fd = sv[0];
    t->peer = sv[1];
    t->c.buf = t->buf;
    t->c.cap = sizeof(t->buf);
    /* A broken pipe must be an error, not the end of the test process. */
    signal(SIGPIPE, SIG_IGN);
}

static void
conn_test_fini(struct conn_test *t)
{
    close(t->c.fd);
    if (t->peer >= 0)
        close(t->peer);
}

static double
conn_test_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- conn_is_trusted ------------------------------------------------------ */

START_TEST(test_conn_is_trusted_list)
{
    const char *allow = "127.0.0.1,::1,unix";

    ck_assert_int_eq(conn_is_trusted(allow, "127.0.0.1"), 1);
    ck_assert_int_eq(conn_is_trusted(allow, "::1"), 1);
    ck_assert_int_eq(conn_is_trusted(allow, "unix:"), 1);
    ck_assert_int_eq(conn_is_trusted(allow, "10.0.0.1"), 0);
    /* Whole entries only: neither a prefix nor an extension matches. */
    ck_assert_int_eq(conn_is_trusted(allow, "127.0.0.10"), 0);
    ck_assert_int_eq(conn_is_trusted(allow, "127.0.0"), 0);
    ck_assert_int_eq(conn_is_trusted("127.0.0.10", "127.0.0.1"), 0);
    /* Spaces after the commas are allowed. */
    ck_assert_int_eq(conn_is_trusted("10.0.0.1, 10.0.0.2", "10.0.0.2"), 1);
}
END_TEST

START_TEST(test_conn_is_trusted_star_and_empty)
{
    ck_assert_int_eq(conn_is_trusted("*", "192.0.2.7"), 1);
    ck_assert_int_eq(conn_is_trusted("*", "unix:"), 1);
    ck_assert_int_eq(conn_is_trusted("10.0.0.1,*", "192.0.2.7"), 1);
    ck_assert_int_eq(conn_is_trusted("", "127.0.0.1"), 0);
    ck_assert_int_eq(conn_is_trusted(NULL, "127.0.0.1"), 0);
    ck_assert_int_eq(conn_is_trusted("127.0.0.1", "unix:"), 0);
}
END_TEST

/* --- conn_set_peer -------------------------------------------------------- */

START_TEST(test_conn_set_peer_inet)
{
    struct conn c;
    struct sockaddr_in in = {.sin_family = AF_INET};

    memset(&c, 0, sizeof(c));
    in.sin_port = htons(8080);
    ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.7", &in.sin_addr), 1);
    conn_set_peer(&c, (struct sockaddr *)&in, sizeof(in));
    ck_assert_str_eq(c.remote_addr, "192.0.2.7");
    ck_assert_str_eq(c.remote_port, "8080");

    in.sin_port = htons(0);
    conn_set_peer(&c, (struct sockaddr *)&in, sizeof(in));
    ck_assert_str_eq(c.remote_port, "0");
    in.sin_port = htons(65535);
    conn_set_peer(&c, (struct sockaddr *)&in, sizeof(in));
    ck_assert_str_eq(c.remote_port, "65535");
}
END_TEST

START_TEST(test_conn_set_peer_inet6)
{
    struct conn c;
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

    memset(&c, 0, sizeof(c));
    in6.sin6_port = htons(443);
    ck_assert_int_eq(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
    conn_set_peer(&c, (struct sockaddr *)&in6, sizeof(in6));
    ck_assert_str_eq(c.remote_addr, "::1");
    ck_assert_str_eq(c.remote_port, "443");

    ck_assert_int_eq(inet_pton(AF_INET6,
                               "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                               &in6.sin6_addr),
                     1);
    conn_set_peer(&c, (struct sockaddr *)&in6, sizeof(in6));
    ck_assert_str_eq(c.remote_addr, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
}
END_TEST

/* A unix socket has no peer address: "unix:" and no port, as nginx. */
START_TEST(test_conn_set_peer_unix)
{
    struct conn c;
    struct sockaddr_un un = {.sun_family = AF_UNIX};

    memset(&c, 0, sizeof(c));
    strcpy(c.remote_port, "99");
    conn_set_peer(&c, (struct sockaddr *)&un, sizeof(sa_family_t));
    ck_assert_str_eq(c.remote_addr, "unix:");
    ck_assert_str_eq(c.remote_port, "");
}
END_TEST

/* --- conn_read and conn_consume ------------------------------------------- */

START_TEST(test_conn_read_fills_buffer)
{
    struct conn_test t;

    conn_test_init(&t);
    errno = 0;
    ck_assert_int_eq(conn_read(&t.c), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_uint_eq(t.c.len, 0);

    ck_assert_int_eq(write(t.peer, "hello", 5), 5);
    ck_assert_int_eq(conn_read(&t.c), 5);
    ck_assert_uint_eq(t.c.len, 5);
    /* Only the free space is read; the rest waits in the socket. */
    ck_assert_int_eq(write(t.peer, "world!", 6), 6);
    ck_assert_int_eq(conn_read(&t.c), 3);
    ck_assert_uint_eq(t.c.len, CONN_TEST_CAP);
    ck_assert_int_eq(memcmp(t.buf, "hellowor", CONN_TEST_CAP), 0);
    errno = 0;
    ck_assert_int_eq(conn_read(&t.c), -1);
    ck_assert_int_eq(errno, ENOBUFS);

    t.c.len = 0;
    ck_assert_int_eq(conn_read(&t.c), 3);
    ck_assert_int_eq(memcmp(t.buf, "ld!", 3), 0);
    close(t.peer);
    t.peer = -1;
    ck_assert_int_eq(conn_read(&t.c), 0); /* EOF */
    ck_assert_uint_eq(t.c.len, 3);
    conn_test_fini(&t);
}
END_TEST

START_TEST(test_conn_consume_keeps_next_request)
{
    struct conn c;
    char buf[32] = "HEAD....BODYNEXT";

    memset(&c, 0, sizeof(c));
    c.buf = buf;
    c.cap = sizeof(buf);
    c.len = 16;
    c.head_len = 8;
    c.body_off = 12;
    ck_assert_uint_eq(conn_consume(&c), 4);
    ck_assert_uint_eq(c.len, 4);
    ck_assert_uint_eq(c.head_len, 0);
    ck_assert_uint_eq(c.body_off, 0);
    ck_assert_int_eq(memcmp(buf, "NEXT", 4), 0);

    /* Nothing after the body: an empty buffer. */
    c.len = 4;
    c.head_len = c.body_off = 4;
    ck_assert_uint_eq(conn_consume(&c), 0);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_uint_eq(c.body_off, 0);
}
END_TEST

/* --- conn_writev ---------------------------------------------------------- */

START_TEST(test_conn_writev_all)
{
    struct conn_test t;
    char a[] = "HTTP/1.1 200 OK\r\n", b[] = "\r\n", c[] = "body";
    struct iovec iov[3] = {{a, strlen(a)}, {b, 2}, {c, 4}};
    char got[64];
    size_t total = strlen(a) + 2 + 4;

    conn_test_init(&t);
    ck_assert_int_eq(conn_writev(&t.c, iov, 3, 1), (ssize_t)total);
    ck_assert_int_eq(read(t.peer, got, sizeof(got)), (ssize_t)total);
    ck_assert_int_eq(memcmp(got, "HTTP/1.1 200 OK\r\n\r\nbody", total), 0);
    conn_test_fini(&t);
}
END_TEST

/* A client that never reads: -1 and ETIMEDOUT after timeout_s. */
START_TEST(test_conn_writev_times_out)
{
    struct conn_test t;
    char *big = calloc(1, CONN_TEST_BIG);
    struct iovec iov = {big, CONN_TEST_BIG};
    double t0, dt;
    ssize_t n;

    ck_assert_ptr_nonnull(big);
    conn_test_init(&t);
    t0 = conn_test_now();
    errno = 0;
    n = conn_writev(&t.c, &iov, 1, 1);
    dt = conn_test_now() - t0;
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_double_ge(dt, 0.9);
    ck_assert_double_le(dt, 2.5);
    conn_test_fini(&t);
    free(big);
}
END_TEST

static volatile sig_atomic_t conn_test_ticks;
static volatile sig_atomic_t conn_test_peer = -1;

/* Counts the ticks; if the write still waits after CONN_TEST_TICKS_MAX of
 * them, closes the client's end, so that a wait that never ends fails the
 * test (EPIPE instead of ETIMEDOUT) rather than hangs it. */
static void
conn_test_on_alarm(int sig)
{
    int saved = errno;

    (void)sig;
    if (++conn_test_ticks == CONN_TEST_TICKS_MAX && conn_test_peer >= 0)
        close(conn_test_peer);
    errno = saved;
}

/* Issue 11: the deadline is the call's, not each poll's.  A signal every
 * 100 ms, without SA_RESTART, interrupts the wait ten times a second; a
 * wait that restarts its whole timeout after EINTR never ends. */
START_TEST(test_conn_writev_timeout_survives_signals)
{
    struct conn_test t;
    char *big = calloc(1, CONN_TEST_BIG);
    struct iovec iov = {big, CONN_TEST_BIG};
    struct sigaction sa = {.sa_handler = conn_test_on_alarm, .sa_flags = 0};
    struct itimerval every = {{0, CONN_TEST_TICK_US}, {0, CONN_TEST_TICK_US}};
    struct itimerval off = {{0, 0}, {0, 0}};
    double t0, dt;
    ssize_t n;
    int err;

    ck_assert_ptr_nonnull(big);
    conn_test_init(&t);
    conn_test_ticks = 0;
    conn_test_peer = t.peer;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    ck_assert_int_eq(setitimer(ITIMER_REAL, &every, NULL), 0);
    t0 = conn_test_now();
    errno = 0;
    n = conn_writev(&t.c, &iov, 1, 1);
    err = errno;
    dt = conn_test_now() - t0;
    ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
    signal(SIGALRM, SIG_DFL);
    if (conn_test_ticks >= CONN_TEST_TICKS_MAX)
        t.peer = -1; /* closed by the handler */
    conn_test_peer = -1;
    ck_assert_msg(conn_test_ticks >= 5,
                  "the signals did not interrupt the wait (%d ticks)",
                  (int)conn_test_ticks);
    ck_assert_msg(dt <= 2.5,
                  "conn_writev with timeout 1 s returned after %.1f s (%d "
                  "signals; the peer was closed to end it)",
                  dt, (int)conn_test_ticks);
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(err, ETIMEDOUT);
    conn_test_fini(&t);
    free(big);
}
END_TEST

/* --- conn_sendfile -------------------------------------------------------- */

static void
conn_test_pattern(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 % 251);
}

/* Read exactly n bytes from fd (blocking in steps of 10 ms, bounded). */
static ssize_t
conn_test_read_n(int fd, unsigned char *out, size_t n)
{
    size_t got = 0;

    for (int i = 0; i < 300 && got < n; i++) {
        ssize_t k = read(fd, out + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else if (k == 0 || errno != EAGAIN)
            break;
        else
            usleep(10000);
    }
    return (ssize_t)got;
}

START_TEST(test_conn_sendfile_regular_file)
{
    struct conn_test t;
    char path[] = "/tmp/forkd-test-conn-XXXXXX";
    unsigned char data[5000], got[5000];
    int fd;

    conn_test_pattern(data, sizeof(data));
    conn_test_init(&t);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    (void)unlink(path); /* only the descriptor is needed */
    ck_assert_int_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
    ck_assert_int_eq(conn_sendfile(&t.c, fd, 100, 4000, 1), 4000);
    ck_assert_int_eq(conn_test_read_n(t.peer, got, 4000), 4000);
    ck_assert_int_eq(memcmp(got, data + 100, 4000), 0);
    /* A file shorter than promised is an error, not a hang. */
    ck_assert_int_eq(conn_sendfile(&t.c, fd, 4900, 200, 1), -1);
    close(fd);
    conn_test_fini(&t);
}
END_TEST

/* Issue 11, finding 8: a pipe has no offset (pread says ESPIPE); its
 * bytes are read in order. */
START_TEST(test_conn_sendfile_pipe)
{
    struct conn_test t;
    unsigned char data[5000], got[5000];
    int p[2];

    conn_test_pattern(data, sizeof(data));
    conn_test_init(&t);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], data, sizeof(data)), (ssize_t)sizeof(data));
    close(p[1]);
    ck_assert_int_eq(conn_sendfile(&t.c, p[0], 0, sizeof(data), 1),
                     (ssize_t)sizeof(data));
    ck_assert_int_eq(conn_test_read_n(t.peer, got, sizeof(got)),
                     (ssize_t)sizeof(got));
    ck_assert_int_eq(memcmp(got, data, sizeof(data)), 0);
    close(p[0]);
    conn_test_fini(&t);
}
END_TEST

/* A client that reads only after a while: the writes meet a full socket
 * (EAGAIN) and wait for room. */
struct conn_test_reader {
    int fd;
    size_t want, got;
    pthread_t thread;
};

static void *
conn_test_reader_main(void *arg)
{
    struct conn_test_reader *r = arg;
    char buf[65536];
    struct pollfd p = {.fd = r->fd, .events = POLLIN};

    usleep(100000);
    while (r->got < r->want && poll(&p, 1, 5000) > 0) {
        ssize_t k = read(r->fd, buf, sizeof(buf));
        if (k <= 0 && !(k < 0 && errno == EAGAIN))
            break;
        if (k > 0)
            r->got += (size_t)k;
    }
    return NULL;
}

static void
conn_test_reader_start(struct conn_test_reader *r, int fd, size_t want)
{
    r->fd = fd;
    r->want = want;
    r->got = 0;
    ck_assert_int_eq(pthread_create(&r->thread, NULL, conn_test_reader_main, r),
                     0);
}

START_TEST(test_conn_writev_waits_for_room)
{
    struct conn_test t;
    struct conn_test_reader r;
    char *big = calloc(1, CONN_TEST_BIG);
    char head[] = "HTTP/1.1 200 OK\r\n\r\n";
    struct iovec iov[2] = {{head, strlen(head)}, {big, CONN_TEST_BIG}};
    size_t total = strlen(head) + CONN_TEST_BIG;

    ck_assert_ptr_nonnull(big);
    conn_test_init(&t);
    t.c.more = 1; /* sendmsg with MSG_MORE: a file follows */
    conn_test_reader_start(&r, t.peer, total);
    ck_assert_int_eq(conn_writev(&t.c, iov, 2, 5), (ssize_t)total);
    ck_assert_int_eq(pthread_join(r.thread, NULL), 0);
    ck_assert_uint_eq(r.got, total);
    conn_test_fini(&t);
    free(big);
}
END_TEST

START_TEST(test_conn_sendfile_waits_for_room)
{
    struct conn_test t;
    struct conn_test_reader r;
    char path[] = "/tmp/forkd-test-conn-XXXXXX";
    char *big = calloc(1, CONN_TEST_BIG);
    int fd;

    ck_assert_ptr_nonnull(big);
    conn_test_init(&t);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    (void)unlink(path);
    ck_assert_int_eq(write(fd, big, CONN_TEST_BIG), CONN_TEST_BIG);
    conn_test_reader_start(&r, t.peer, CONN_TEST_BIG);
    ck_assert_int_eq(conn_sendfile(&t.c, fd, 0, CONN_TEST_BIG, 5),
                     CONN_TEST_BIG);
    ck_assert_int_eq(pthread_join(r.thread, NULL), 0);
    ck_assert_uint_eq(r.got, CONN_TEST_BIG);
    close(fd);
    conn_test_fini(&t);
    free(big);
}
END_TEST

static void *
conn_test_late_writer(void *arg)
{
    int fd = *(int *)arg;
    ssize_t n;

    usleep(100000);
    n = write(fd, "late", 4);
    close(fd);
    return (void *)(intptr_t)n;
}

/* A non-blocking pipe that has nothing yet: sendfile waits for its bytes
 * (up to timeout_s) instead of failing on EAGAIN. */
START_TEST(test_conn_sendfile_pipe_waits)
{
    struct conn_test t;
    pthread_t th;
    unsigned char got[8];
    void *wrote;
    int p[2];

    conn_test_init(&t);
    ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, conn_test_late_writer, &p[1]),
                     0);
    ck_assert_int_eq(conn_sendfile(&t.c, p[0], 0, 4, 2), 4);
    ck_assert_int_eq(pthread_join(th, &wrote), 0);
    ck_assert_int_eq((intptr_t)wrote, 4);
    ck_assert_int_eq(conn_test_read_n(t.peer, got, 4), 4);
    ck_assert_int_eq(memcmp(got, "late", 4), 0);
    close(p[0]);
    conn_test_fini(&t);
}
END_TEST

/* Failures of the copy through memory: a source that cannot be read (a
 * directory), a pipe that never delivers, a client that is gone. */
START_TEST(test_conn_sendfile_copy_fails)
{
    struct conn_test t;
    int dir, p[2];

    conn_test_init(&t);
    dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dir, 0);
    errno = 0;
    ck_assert_int_eq(conn_sendfile(&t.c, dir, 0, 10, 1), -1);
    ck_assert_int_eq(errno, EISDIR);
    close(dir);

    ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
    errno = 0;
    ck_assert_int_eq(conn_sendfile(&t.c, p[0], 0, 10, 1), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);

    ck_assert_int_eq(write(p[1], "bytes", 5), 5);
    close(t.peer);
    t.peer = -1;
    errno = 0;
    ck_assert_int_eq(conn_sendfile(&t.c, p[0], 0, 5, 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(p[0]);
    close(p[1]);
    conn_test_fini(&t);
}
END_TEST

/* --- forkd_read: the handler's body ----------------------------------------
 */

#define CONN_TEST_BODY_CAP 256

/* A request whose head (and the body bytes that came with it) sit in the
 * connection's buffer, as the worker leaves it for the handler. */
struct conn_body_test {
    struct conn c;
    int peer;
    char buf[CONN_TEST_BODY_CAP];
    struct forkd_req req;
    struct cfg cfg;
    struct http_limits lim;
    struct http_header headers[16];
};

static void
conn_body_init(struct conn_body_test *b, const char *bytes, uint64_t limit)
{
    struct http_scan scan;
    size_t len = strlen(bytes), head_len = 0;
    int sv[2], status = 0;

    memset(b, 0, sizeof(*b));
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
    signal(SIGPIPE, SIG_IGN);
    b->c.fd = sv[0];
    b->peer = sv[1];
    b->c.buf = b->buf;
    b->c.cap = sizeof(b->buf);
    ck_assert_int_eq(cfg_init(&b->cfg), 0);
    b->cfg.body_timeout_s = 1;
    b->cfg.send_timeout_s = 1;
    b->lim = (struct http_limits){.line = 1024,
                                  .fields = 16,
                                  .field_size = 1024,
                                  .head = 1024,
                                  .body = limit};
    ck_assert_uint_le(len, sizeof(b->buf));
    memcpy(b->buf, bytes, len);
    b->c.len = len;
    memset(&scan, 0, sizeof(scan));
    ck_assert_int_eq(
        http_scan_head(&scan, b->buf, len, &b->lim, &head_len, &status),
        HTTP_SCAN_DONE);
    ck_assert_int_eq(
        http_parse_head(&b->req.head, b->buf, head_len, b->headers, &b->lim),
        0);
    b->c.head_len = b->c.body_off = head_len;
    b->req.conn = &b->c;
    b->req.cfg = &b->cfg;
    b->req.limits = &b->lim;
    b->req.keep_alive = 1;
}

static void
conn_body_fini(struct conn_body_test *b)
{
    close(b->c.fd);
    if (b->peer >= 0)
        close(b->peer);
    cfg_fini(&b->cfg);
}

/* What the client got, as a string (up to cap - 1 bytes, no wait). */
static const char *
conn_body_got(struct conn_body_test *b, char *out, size_t cap)
{
    ssize_t n = read(b->peer, out, cap - 1);

    out[n > 0 ? n : 0] = '\0';
    return out;
}

/* The whole body into out, forkd_read by forkd_read of at most step
 * bytes; its length. */
static ssize_t
conn_body_read_step(struct conn_body_test *b, char *out, size_t cap,
                    size_t step)
{
    size_t got = 0;

    for (int i = 0; i < 100; i++) {
        size_t want = cap - 1 - got < step ? cap - 1 - got : step;
        ssize_t n = forkd_read(&b->req, out + got, want);
        if (n <= 0) {
            out[got] = '\0';
            return n < 0 ? -1 : (ssize_t)got;
        }
        got += (size_t)n;
    }
    ck_abort_msg("forkd_read never ended the body");
    return -1;
}

static ssize_t
conn_body_read_all(struct conn_body_test *b, char *out, size_t cap)
{
    return conn_body_read_step(b, out, cap, cap);
}

/* Issue 15: a body that came whole with its head, then a pipelined
 * request: the handler gets the body, forkd_read says 0 at its end, and
 * conn_consume keeps the next request. */
START_TEST(test_conn_read_body_in_buffer)
{
    struct conn_body_test b;
    char out[64];

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                   "hello"
                   "GET /next",
                   0);
    ck_assert_int_eq(conn_body_read_all(&b, out, sizeof(out)), 5);
    ck_assert_str_eq(out, "hello");
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), 0); /* ended */
    ck_assert_int_eq(forkd_read(&b.req, out, 0), 0);
    ck_assert_int_eq(b.req.keep_alive, 1);
    ck_assert_int_eq(b.req.body_status, 0);
    ck_assert_uint_eq(conn_consume(&b.c), 9);
    ck_assert_int_eq(memcmp(b.buf, "GET /next", 9), 0);
    conn_body_fini(&b);
}
END_TEST

/* The rest of the body arrives later, more than the buffer holds at once,
 * read in steps smaller than what is there: forkd_read waits for it
 * (body_timeout) and moves what is left to make room after the head. */
START_TEST(test_conn_read_body_arrives_later)
{
    struct conn_body_test b;
    char body[600], out[700];

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    conn_body_init(
        &b, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\n", 0);
    ck_assert_int_eq(write(b.peer, body, sizeof(body)), (ssize_t)sizeof(body));
    ck_assert_int_eq(conn_body_read_step(&b, out, sizeof(out), 100),
                     (ssize_t)sizeof(body));
    ck_assert_int_eq(memcmp(out, body, sizeof(body)), 0);
    ck_assert_int_eq(b.req.keep_alive, 1);
    conn_body_fini(&b);
}
END_TEST

/* A chunked body of which only the first chunk's size line came with the
 * head: that decodes to nothing, and the rest is waited for. */
START_TEST(test_conn_read_body_chunked)
{
    struct conn_body_test b;
    static const char rest[] = "the\r\n4\r\nbody\r\n0\r\n\r\n";
    char out[64];

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "3\r\n",
                   0);
    ck_assert_int_eq(write(b.peer, rest, strlen(rest)), (ssize_t)strlen(rest));
    ck_assert_int_eq(conn_body_read_all(&b, out, sizeof(out)), 7);
    ck_assert_str_eq(out, "thebody");
    ck_assert_int_eq(b.req.head.body_done, 1);
    conn_body_fini(&b);
}
END_TEST

/* Expect: 100-continue: the interim answer goes out on the first read,
 * once; not at all once the response has begun. */
START_TEST(test_conn_read_sends_continue_once)
{
    struct conn_body_test b;
    char out[64], got[128];

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   "Expect: 100-continue\r\n\r\n",
                   0);
    ck_assert_int_eq(b.req.head.expect_continue, 1);
    ck_assert_int_eq(write(b.peer, "ok", 2), 2);
    ck_assert_int_eq(conn_body_read_all(&b, out, sizeof(out)), 2);
    ck_assert_str_eq(out, "ok");
    ck_assert_str_eq(conn_body_got(&b, got, sizeof(got)),
                     "HTTP/1.1 100 Continue\r\n\r\n");
    ck_assert_int_eq(b.req.continue_sent, 1);
    conn_body_fini(&b);

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   "Expect: 100-continue\r\n\r\nok",
                   0);
    b.req.resp.head_sent = 1; /* the handler answered first */
    ck_assert_int_eq(conn_body_read_all(&b, out, sizeof(out)), 2);
    ck_assert_str_eq(conn_body_got(&b, got, sizeof(got)), "");
    conn_body_fini(&b);
}
END_TEST

/* The client is gone before the 100 Continue could go out: 400, and the
 * connection is not reused. */
START_TEST(test_conn_read_continue_fails)
{
    struct conn_body_test b;
    char out[64];

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   "Expect: 100-continue\r\n\r\n",
                   0);
    close(b.peer);
    b.peer = -1;
    errno = 0;
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_int_eq(b.req.body_status, 400);
    ck_assert_int_eq(b.req.keep_alive, 0);
    conn_body_fini(&b);
}
END_TEST

/* The client closes in the middle of the body: 400 (EPROTO), and every
 * later read fails the same way (DESIGN 7: the failure sticks). */
START_TEST(test_conn_read_body_ends_early)
{
    struct conn_body_test b;
    char out[64];

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                   "part",
                   0);
    close(b.peer);
    b.peer = -1;
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), 4);
    errno = 0;
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_int_eq(b.req.body_status, 400);
    ck_assert_int_eq(b.req.keep_alive, 0);
    errno = 0;
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), -1);
    ck_assert_int_eq(errno, EPROTO);
    conn_body_fini(&b);
}
END_TEST

/* A client that sends part of the body and then nothing: 408 after
 * body_timeout (ETIMEDOUT). */
START_TEST(test_conn_read_body_times_out)
{
    struct conn_body_test b;
    char out[64];
    double t0, dt;

    conn_body_init(
        &b, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", 0);
    t0 = conn_test_now();
    errno = 0;
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), -1);
    dt = conn_test_now() - t0;
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(b.req.body_status, 408);
    ck_assert_int_eq(b.req.keep_alive, 0);
    ck_assert_double_ge(dt, 0.9);
    ck_assert_double_le(dt, 2.5);
    conn_body_fini(&b);
}
END_TEST

/* More body than the limit: 413 (EFBIG); a malformed chunk: 400. */
START_TEST(test_conn_read_body_too_large_or_malformed)
{
    struct conn_body_test b;
    char out[64];

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "10\r\n0123456789abcdef\r\n0\r\n\r\n",
                   8);
    errno = 0;
    ck_assert_int_eq(conn_body_read_all(&b, out, sizeof(out)), -1);
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_int_eq(b.req.body_status, 413);
    ck_assert_int_eq(b.req.keep_alive, 0);
    conn_body_fini(&b);

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "zz\r\n",
                   0);
    errno = 0;
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_int_eq(b.req.body_status, 400);
    conn_body_fini(&b);
}
END_TEST

/* --- conn_drain_start and conn_drain: the body the handler left ----------- */

/* The handler read none of a chunked body: the poller discards it as it
 * comes, however it is cut, and keeps the next request. */
START_TEST(test_conn_drain_keeps_next_request)
{
    struct conn_body_test b;
    static const char rest[] = "ody\r\n0\r\n\r\nGET /next";

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "4\r\nb",
                   0);
    ck_assert_int_eq(conn_drain_start(&b.req), 0);
    ck_assert_int_eq(b.c.draining, 1);
    ck_assert_uint_eq(conn_consume(&b.c), 4);        /* "4\r\nb" */
    ck_assert_int_eq(conn_drain(&b.c, 0, 65536), 0); /* more must come */
    ck_assert_uint_eq(b.c.len, 0);
    memcpy(b.buf, rest, strlen(rest));
    b.c.len = strlen(rest);
    ck_assert_int_eq(conn_drain(&b.c, 0, 65536), 1);
    ck_assert_int_eq(b.c.draining, 0);
    ck_assert_uint_eq(b.c.len, 9);
    ck_assert_int_eq(memcmp(b.buf, "GET /next", 9), 0);
    conn_body_fini(&b);
}
END_TEST

/* What the handler read counts against the limit too. */
START_TEST(test_conn_drain_limits)
{
    struct conn_body_test b;
    char out[4];

    /* Over body_limit in decoded bytes, with what was read before. */
    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
                   "0123456789",
                   0);
    ck_assert_int_eq(forkd_read(&b.req, out, sizeof(out)), 4);
    ck_assert_int_eq(conn_drain_start(&b.req), 0);
    ck_assert_uint_eq(b.c.drain_read, 4);
    (void)conn_consume(&b.c);
    memcpy(b.buf, "0123456789", 10);
    b.c.len = 10;
    ck_assert_int_eq(conn_drain(&b.c, 8, 65536), -1);
    conn_body_fini(&b);

    /* More raw bytes than the poller discards for keep-alive. */
    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
                   "0123456789",
                   0);
    ck_assert_int_eq(conn_drain_start(&b.req), 0);
    (void)conn_consume(&b.c);
    memcpy(b.buf, "0123456789", 10);
    b.c.len = 10;
    ck_assert_int_eq(conn_drain(&b.c, 0, 5), -1);
    conn_body_fini(&b);

    /* A malformed chunk. */
    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   0);
    ck_assert_int_eq(conn_drain_start(&b.req), 0);
    memcpy(b.buf, "zz\r\n", 4);
    b.c.len = 4;
    b.c.head_len = b.c.body_off = 0;
    ck_assert_int_eq(conn_drain(&b.c, 0, 65536), -1);
    conn_body_fini(&b);
}
END_TEST

/* Not reusable: the body failed, or the client still waits for the 100
 * Continue that never came (it may send the body or not). */
START_TEST(test_conn_drain_start_refused)
{
    struct conn_body_test b;

    conn_body_init(&b,
                   "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   "Expect: 100-continue\r\n\r\n",
                   0);
    ck_assert_int_eq(conn_drain_start(&b.req), -1);
    ck_assert_int_eq(b.c.draining, 0);
    b.req.continue_sent = 1;
    b.req.body_status = 400;
    ck_assert_int_eq(conn_drain_start(&b.req), -1);
    b.req.body_status = 0;
    ck_assert_int_eq(conn_drain_start(&b.req), 0);
    ck_assert_int_eq(b.c.draining, 1);
    conn_body_fini(&b);
}
END_TEST

static Suite *
conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *peer = tcase_create("peer");
    TCase *buf = tcase_create("buf");
    TCase *out = tcase_create("out");
    TCase *body = tcase_create("body");

    tcase_add_test(peer, test_conn_is_trusted_list);
    tcase_add_test(peer, test_conn_is_trusted_star_and_empty);
    tcase_add_test(peer, test_conn_set_peer_inet);
    tcase_add_test(peer, test_conn_set_peer_inet6);
    tcase_add_test(peer, test_conn_set_peer_unix);
    suite_add_tcase(s, peer);

    tcase_add_test(buf, test_conn_read_fills_buffer);
    tcase_add_test(buf, test_conn_consume_keeps_next_request);
    suite_add_tcase(s, buf);

    /* The waits take about a second each; a broken deadline takes
     * CONN_TEST_TICKS_MAX ticks before the test ends it. */
    tcase_set_timeout(out, 20);
    tcase_add_test(out, test_conn_writev_all);
    tcase_add_test(out, test_conn_writev_times_out);
    tcase_add_test(out, test_conn_writev_timeout_survives_signals);
    tcase_add_test(out, test_conn_sendfile_regular_file);
    tcase_add_test(out, test_conn_sendfile_pipe);
    tcase_add_test(out, test_conn_writev_waits_for_room);
    tcase_add_test(out, test_conn_sendfile_waits_for_room);
    tcase_add_test(out, test_conn_sendfile_pipe_waits);
    tcase_add_test(out, test_conn_sendfile_copy_fails);
    suite_add_tcase(s, out);

    tcase_set_timeout(body, 10); /* one wait for body_timeout, 1 s */
    tcase_add_test(body, test_conn_read_body_in_buffer);
    tcase_add_test(body, test_conn_read_body_arrives_later);
    tcase_add_test(body, test_conn_read_body_chunked);
    tcase_add_test(body, test_conn_read_sends_continue_once);
    tcase_add_test(body, test_conn_read_continue_fails);
    tcase_add_test(body, test_conn_read_body_ends_early);
    tcase_add_test(body, test_conn_read_body_times_out);
    tcase_add_test(body, test_conn_read_body_too_large_or_malformed);
    tcase_add_test(body, test_conn_drain_keeps_next_request);
    tcase_add_test(body, test_conn_drain_limits);
    tcase_add_test(body, test_conn_drain_start_refused);
    suite_add_tcase(s, body);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conn_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
