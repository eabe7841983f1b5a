/* test_conn: one client socket's I/O: the forwarded_allow_ips match, the
 * peer's address as text, reads into the connection's buffer, what a
 * finished request leaves for the next one, and the writes that wait for
 * the client with a deadline (issue 11: the deadline holds when signals
 * interrupt the wait; sendfile works from a pipe).  Each connection is one
 * end of a non-blocking socketpair; the test holds the other. */
#include "conn.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

static Suite *
conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *peer = tcase_create("peer");
    TCase *buf = tcase_create("buf");
    TCase *out = tcase_create("out");

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
    suite_add_tcase(s, out);
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
