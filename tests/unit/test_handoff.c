/* test_handoff: passing a connection between workers over the handoff
 * socket pair: the descriptor, its meta and the bytes already read arrive
 * intact and usable; an empty queue, a full queue and messages that do not
 * fit fail cleanly, without leaking a descriptor. */
#include "handoff.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Open descriptors of this process. */
static int
handoff_test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

/* A client connection: *ours is what a worker would hand off, *peer the
 * client's end. */
static void
handoff_test_conn(int *ours, int *peer)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *ours = sv[0];
    *peer = sv[1];
}

static void
handoff_test_meta(struct handoff_meta *m, uint32_t len, uint32_t listener,
                  const char *addr, const char *port)
{
    memset(m, 0, sizeof(*m));
    m->len = len;
    m->listener = listener;
    snprintf(m->remote_addr, sizeof(m->remote_addr), "%s", addr);
    snprintf(m->remote_port, sizeof(m->remote_port), "%s", port);
}

/* fd is the same connection as peer's other end: bytes go both ways. */
static void
handoff_test_assert_connected(int fd, int peer)
{
    char buf[16];

    ck_assert_int_eq(write(fd, "pong", 4), 4);
    ck_assert_int_eq(read(peer, buf, sizeof(buf)), 4);
    ck_assert(memcmp(buf, "pong", 4) == 0);
    ck_assert_int_eq(write(peer, "ping!", 5), 5);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
    ck_assert(memcmp(buf, "ping!", 5) == 0);
}

START_TEST(test_handoff_open_flags)
{
    int fds[2], type;
    socklen_t len = sizeof(type);

    ck_assert_int_eq(handoff_open(fds), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
        ck_assert(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &len),
                         0);
        ck_assert_int_eq(type, SOCK_SEQPACKET);
    }
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(test_handoff_roundtrip)
{
    static const char data[] = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    struct handoff_meta meta, got;
    char buf[256];
    int fds[2], ours, peer, fd = -7, again;

    ck_assert_int_eq(handoff_open(fds), 0);
    handoff_test_conn(&ours, &peer);
    handoff_test_meta(&meta, (uint32_t)strlen(data), 2, "2001:db8::1", "65535");
    ck_assert_int_eq(handoff_send(fds[0], ours, &meta, data), 0);
    close(ours); /* the sender still owned it; in flight it stays open */

    memset(&got, 0xa5, sizeof(got));
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC); /* no leak into CGI-ish
                                                   children */
    ck_assert_uint_eq(got.len, strlen(data));
    ck_assert_uint_eq(got.listener, 2);
    ck_assert_str_eq(got.remote_addr, "2001:db8::1");
    ck_assert_str_eq(got.remote_port, "65535");
    ck_assert(memcmp(buf, data, strlen(data)) == 0);
    ck_assert_int_eq(buf[strlen(data)], 0); /* nothing more written */
    handoff_test_assert_connected(fd, peer);
    /* The queue is empty again. */
    errno = 0;
    ck_assert_int_eq(handoff_recv(fds[1], &again, &got, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    close(fd);
    close(peer);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* A worker with no descriptor left: the kernel closes the one in flight
 * and says so (MSG_CTRUNC); handoff_recv reports EMFILE, so the worker
 * can stop taking hand-offs for a while (issue 11, finding 6). */
START_TEST(test_handoff_recv_no_room)
{
    static const char data[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct handoff_meta meta, got;
    struct rlimit rl, low;
    char buf[256];
    int fds[2], ours, peer, fd = -7, probe;

    ck_assert_int_eq(handoff_open(fds), 0);
    handoff_test_conn(&ours, &peer);
    handoff_test_meta(&meta, (uint32_t)strlen(data), 0, "127.0.0.1", "1");
    ck_assert_int_eq(handoff_send(fds[0], ours, &meta, data), 0);
    close(ours);
    /* No free descriptor below the limit: the highest open one + 1. */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    probe = dup(0);
    ck_assert_int_ge(probe, 0);
    close(probe);
    low = rl;
    low.rlim_cur = (rlim_t)probe;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    errno = 0;
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    close(peer);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* An idle connection has no bytes yet. */
START_TEST(test_handoff_no_data)
{
    struct handoff_meta meta, got;
    char buf[16];
    int fds[2], ours, peer, fd = -1;

    ck_assert_int_eq(handoff_open(fds), 0);
    handoff_test_conn(&ours, &peer);
    handoff_test_meta(&meta, 0, 0, "192.0.2.1", "80");
    ck_assert_int_eq(handoff_send(fds[0], ours, &meta, NULL), 0);
    close(ours);
    memset(buf, 'z', sizeof(buf));
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(got.len, 0);
    ck_assert_str_eq(got.remote_addr, "192.0.2.1");
    ck_assert_str_eq(got.remote_port, "80");
    ck_assert_int_eq(buf[0], 'z');
    handoff_test_assert_connected(fd, peer);
    close(fd);
    close(peer);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* Another worker was faster: EAGAIN, no descriptor. */
START_TEST(test_handoff_recv_empty)
{
    struct handoff_meta got;
    char buf[16];
    int fds[2], fd = 5;

    ck_assert_int_eq(handoff_open(fds), 0);
    errno = 0;
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(fd, -1);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* Several in flight come out in order, each with its own bytes. */
START_TEST(test_handoff_in_order)
{
    struct handoff_meta meta, got;
    char buf[64], data[32];
    int fds[2], ours[3], peer[3], fd;

    ck_assert_int_eq(handoff_open(fds), 0);
    for (int i = 0; i < 3; i++) {
        handoff_test_conn(&ours[i], &peer[i]);
        snprintf(data, sizeof(data), "request %d", i);
        handoff_test_meta(&meta, (uint32_t)strlen(data), (uint32_t)i,
                          "192.0.2.9", "1000");
        ck_assert_int_eq(handoff_send(fds[0], ours[i], &meta, data), 0);
        close(ours[i]);
    }
    for (int i = 0; i < 3; i++) {
        char want[32], b;

        ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), 0);
        snprintf(want, sizeof(want), "request %d", i);
        ck_assert_uint_eq(got.len, strlen(want));
        ck_assert(memcmp(buf, want, got.len) == 0);
        ck_assert_uint_eq(got.listener, (uint32_t)i);
        /* The descriptor is the i-th connection. */
        ck_assert_int_eq(write(fd, "x", 1), 1);
        ck_assert_int_eq(read(peer[i], &b, 1), 1);
        close(fd);
        close(peer[i]);
    }
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* A message with more bytes than the receiver's buffer: refused, the
 * descriptor that came with it closed (not leaked), and the message gone
 * (the next one is not misread as its tail). */
START_TEST(test_handoff_recv_too_big)
{
    char data[100], buf[10];
    struct handoff_meta meta, got;
    int fds[2], ours, peer, fd = 5, before, after;

    ck_assert_int_eq(handoff_open(fds), 0);
    handoff_test_conn(&ours, &peer);
    memset(data, 'd', sizeof(data));
    handoff_test_meta(&meta, sizeof(data), 0, "192.0.2.1", "1");
    ck_assert_int_eq(handoff_send(fds[0], ours, &meta, data), 0);
    close(ours);
    before = handoff_test_count_fds();
    errno = 0;
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), -1);
    ck_assert_int_ne(errno, EAGAIN); /* not "nothing there": an error */
    ck_assert_int_eq(fd, -1);
    after = handoff_test_count_fds();
    ck_assert_int_eq(after, before);
    /* Its last copy is closed: the client sees EOF. */
    {
        char b;
        ck_assert_int_eq(read(peer, &b, 1), 0);
    }
    errno = 0;
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    close(peer);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* A big head (64 KiB) passes whole. */
START_TEST(test_handoff_big_data)
{
    const size_t len = 65536;
    char *data = malloc(len), *buf = malloc(len);
    struct handoff_meta meta, got;
    int fds[2], ours, peer, fd;

    ck_assert_ptr_nonnull(data);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + i % 26);
    ck_assert_int_eq(handoff_open(fds), 0);
    handoff_test_conn(&ours, &peer);
    handoff_test_meta(&meta, (uint32_t)len, 1, "192.0.2.1", "2");
    ck_assert_int_eq(handoff_send(fds[0], ours, &meta, data), 0);
    close(ours);
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, len), 0);
    ck_assert_uint_eq(got.len, len);
    ck_assert(memcmp(buf, data, len) == 0);
    handoff_test_assert_connected(fd, peer);
    close(fd);
    close(peer);
    close(fds[0]);
    close(fds[1]);
    free(data);
    free(buf);
}
END_TEST

/* More than the socket can ever hold: EMSGSIZE, and the connection simply
 * stays with the sender. */
START_TEST(test_handoff_send_too_big)
{
    struct handoff_meta meta;
    int fds[2], ours, peer, sndbuf;
    socklen_t len = sizeof(sndbuf);
    char *data;

    ck_assert_int_eq(handoff_open(fds), 0);
    ck_assert_int_eq(getsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len),
                     0);
    ck_assert_int_gt(sndbuf, 0);
    data = calloc(1, (size_t)sndbuf + 1);
    ck_assert_ptr_nonnull(data);
    handoff_test_conn(&ours, &peer);
    handoff_test_meta(&meta, (uint32_t)sndbuf + 1, 0, "192.0.2.1", "3");
    errno = 0;
    ck_assert_int_eq(handoff_send(fds[0], ours, &meta, data), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    handoff_test_assert_connected(ours, peer);
    close(ours);
    close(peer);
    close(fds[0]);
    close(fds[1]);
    free(data);
}
END_TEST

/* No idle worker reads: the queue fills and sending says EAGAIN (never
 * blocks); what was queued is still received. */
START_TEST(test_handoff_queue_full)
{
    struct handoff_meta meta, got;
    char buf[64];
    int fds[2], ours, peer, fd, sent = 0, r = 0;

    ck_assert_int_eq(handoff_open(fds), 0);
    handoff_test_conn(&ours, &peer);
    handoff_test_meta(&meta, 5, 0, "192.0.2.1", "4");
    for (int i = 0; i < 100000; i++) {
        errno = 0;
        if ((r = handoff_send(fds[0], ours, &meta, "hello")) < 0)
            break;
        sent++;
    }
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_gt(sent, 0);
    ck_assert_int_eq(handoff_recv(fds[1], &fd, &got, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(got.len, 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    close(fd);
    /* The rest (in flight) is freed with the sockets. */
    close(ours);
    close(peer);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* The log channel: descriptors with gaps (-1) arrive in their places, as
 * new descriptors of the same files; an empty channel says EAGAIN. */
START_TEST(test_handoff_fds_roundtrip)
{
    int ch[2], a[2], b[2], got[3], send[3];
    char buf[8];

    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ch),
        0);
    ck_assert_int_eq(pipe(a), 0);
    ck_assert_int_eq(pipe(b), 0);
    send[0] = a[1];
    send[1] = -1;
    send[2] = b[1];
    int before = handoff_test_count_fds();
    ck_assert_int_eq(handoff_send_fds(ch[0], send, 3), 0);
    ck_assert_int_eq(handoff_recv_fds(ch[1], got, 3), 0);
    ck_assert_int_eq(handoff_test_count_fds(), before + 2);
    ck_assert_int_ge(got[0], 0);
    ck_assert_int_eq(got[1], -1);
    ck_assert_int_ge(got[2], 0);
    ck_assert_int_ne(got[0], a[1]);
    ck_assert_int_eq(fcntl(got[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(write(got[0], "A", 1), 1);
    ck_assert_int_eq(write(got[2], "B", 1), 1);
    ck_assert_int_eq(read(a[0], buf, sizeof(buf)), 1);
    ck_assert_int_eq(buf[0], 'A');
    ck_assert_int_eq(read(b[0], buf, sizeof(buf)), 1);
    ck_assert_int_eq(buf[0], 'B');
    close(got[0]);
    close(got[2]);
    errno = 0;
    ck_assert_int_eq(handoff_recv_fds(ch[1], got, 3), -1);
    ck_assert_int_eq(errno, EAGAIN);
    /* None at all: still a message, every slot -1. */
    send[0] = send[2] = -1;
    ck_assert_int_eq(handoff_send_fds(ch[0], send, 3), 0);
    ck_assert_int_eq(handoff_recv_fds(ch[1], got, 3), 0);
    ck_assert_int_eq(got[0], -1);
    ck_assert_int_eq(got[2], -1);
    ck_assert_int_eq(handoff_test_count_fds(), before);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    close(ch[0]);
    close(ch[1]);
}
END_TEST

/* A receiver asking for fewer than were sent closes the rest. */
START_TEST(test_handoff_fds_fewer)
{
    int ch[2], p[2], got[1], send[2];

    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ch),
        0);
    ck_assert_int_eq(pipe(p), 0);
    send[0] = p[0];
    send[1] = p[1];
    int before = handoff_test_count_fds();
    ck_assert_int_eq(handoff_send_fds(ch[0], send, 2), 0);
    ck_assert_int_eq(handoff_recv_fds(ch[1], got, 1), 0);
    ck_assert_int_ge(got[0], 0);
    close(got[0]);
    ck_assert_int_eq(handoff_test_count_fds(), before);
    close(p[0]);
    close(p[1]);
    close(ch[0]);
    close(ch[1]);
}
END_TEST

static Suite *
handoff_suite(void)
{
    Suite *s = suite_create("handoff");
    TCase *tc = tcase_create("handoff");

    tcase_add_test(tc, test_handoff_open_flags);
    tcase_add_test(tc, test_handoff_roundtrip);
    tcase_add_test(tc, test_handoff_recv_no_room);
    tcase_add_test(tc, test_handoff_no_data);
    tcase_add_test(tc, test_handoff_recv_empty);
    tcase_add_test(tc, test_handoff_in_order);
    tcase_add_test(tc, test_handoff_recv_too_big);
    tcase_add_test(tc, test_handoff_big_data);
    tcase_add_test(tc, test_handoff_send_too_big);
    tcase_add_test(tc, test_handoff_queue_full);
    tcase_add_test(tc, test_handoff_fds_roundtrip);
    tcase_add_test(tc, test_handoff_fds_fewer);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(handoff_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
