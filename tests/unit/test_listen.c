/* test_listen: bind addresses (parse) and the listening sockets (open),
 * including the unix path rules: refuse a live server's path and any file
 * that is not a socket, replace a stale socket. */
#include "fixture.h"
#include "listen.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char listen_test_dir[64];

static void
listen_test_setup(void)
{
    strcpy(listen_test_dir, "/tmp/forkd-test-listen-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(listen_test_dir));
}

static void
listen_test_teardown(void)
{
    test_rmdir(listen_test_dir);
}

/* A path in the suite's directory, free of what an earlier test left. */
static void
listen_test_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", listen_test_dir, name);
    (void)unlink(out); /* usually not there */
}

/* --- listen_parse ------------------------------------------------------ */

START_TEST(test_listen_parse_ipv4)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_in *in = (const void *)&ss;
    char ip[INET_ADDRSTRLEN];

    ck_assert_int_eq(listen_parse("127.0.0.1:80", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(ntohs(in->sin_port), 80);
    ck_assert_ptr_nonnull(inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)));
    ck_assert_str_eq(ip, "127.0.0.1");
}
END_TEST

START_TEST(test_listen_parse_ipv6)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_in6 *in6 = (const void *)&ss;

    ck_assert_int_eq(listen_parse("[::1]:80", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
    ck_assert_uint_eq(ntohs(in6->sin6_port), 80);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
}
END_TEST

START_TEST(test_listen_parse_any)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_in *in = (const void *)&ss;

    ck_assert_int_eq(listen_parse("*:80", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(ntohs(in->sin_port), 80);
    ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), INADDR_ANY);
    /* An empty host means any address too. */
    ck_assert_int_eq(listen_parse(":8080", &ss, &len), 0);
    ck_assert_uint_eq(ntohs(in->sin_port), 8080);
    ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), INADDR_ANY);
}
END_TEST

START_TEST(test_listen_parse_unix)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_un *un = (const void *)&ss;

    ck_assert_int_eq(listen_parse("unix:/tmp/x", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_UNIX);
    ck_assert_str_eq(un->sun_path, "/tmp/x");
    ck_assert_uint_ge(len, offsetof(struct sockaddr_un, sun_path) + 7);
}
END_TEST

START_TEST(test_listen_parse_port_bounds)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_in *in = (const void *)&ss;

    ck_assert_int_eq(listen_parse("1.2.3.4:65535", &ss, &len), 0);
    ck_assert_uint_eq(ntohs(in->sin_port), 65535);
    ck_assert_int_eq(listen_parse("1.2.3.4:0", &ss, &len), 0);
    ck_assert_uint_eq(ntohs(in->sin_port), 0);
}
END_TEST

static void
listen_test_bad(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;

    errno = 0;
    ck_assert_msg(listen_parse(addr, &ss, &len) == -1,
                  "listen_parse(\"%s\") accepted", addr);
    ck_assert_msg(errno == EINVAL, "listen_parse(\"%s\"): errno %d, not EINVAL",
                  addr, errno);
}

START_TEST(test_listen_parse_no_port)
{
    listen_test_bad("noport");
    listen_test_bad("127.0.0.1");
    listen_test_bad("127.0.0.1:");
    listen_test_bad("");
}
END_TEST

START_TEST(test_listen_parse_bad_port)
{
    listen_test_bad("1.2.3.4:99999");
    listen_test_bad("1.2.3.4:65536");
    listen_test_bad("1.2.3.4:-1");
    listen_test_bad("1.2.3.4:+80");
    listen_test_bad("1.2.3.4:80x");
    listen_test_bad("1.2.3.4: 80");
    listen_test_bad("1.2.3.4:4294967376"); /* 2^32 + 80 */
    listen_test_bad("1.2.3.4:99999999999999999999999");
}
END_TEST

START_TEST(test_listen_parse_bad_ipv6)
{
    listen_test_bad("[::1]80");
    listen_test_bad("[::1]");
    listen_test_bad("[::1:80");
    listen_test_bad("[::1]:");
    listen_test_bad("[1.2.3.4]:80"); /* brackets are for IPv6 only */
    listen_test_bad("[zz::1]:80");
}
END_TEST

START_TEST(test_listen_parse_bad_unix)
{
    char longpath[200];

    listen_test_bad("unix:");
    memcpy(longpath, "unix:/", 6);
    memset(longpath + 6, 'a', sizeof(longpath) - 7);
    longpath[sizeof(longpath) - 1] = '\0';
    listen_test_bad(longpath); /* longer than sun_path */
}
END_TEST

/* --- listen_open ------------------------------------------------------- */

START_TEST(test_listen_open_tcp_ephemeral)
{
    struct listener l;
    struct sockaddr_in in;
    socklen_t len = sizeof(in);
    char want[64];
    int flags;

    ck_assert_int_eq(listen_open(&l, "127.0.0.1:0", 16), 0);
    ck_assert_int_ge(l.fd, 0);
    ck_assert_int_eq(l.family, AF_INET);
    ck_assert_str_eq(l.addr, "127.0.0.1:0");
    ck_assert_ptr_null(l.unix_path);
    ck_assert_int_eq(getsockname(l.fd, (struct sockaddr *)&in, &len), 0);
    ck_assert_uint_ne(ntohs(in.sin_port), 0);
    /* name and port give the real port, not the configured 0. */
    snprintf(want, sizeof(want), "%u", ntohs(in.sin_port));
    ck_assert_str_eq(l.port, want);
    ck_assert_str_eq(l.host, "127.0.0.1");
    snprintf(want, sizeof(want), "http://127.0.0.1:%u", ntohs(in.sin_port));
    ck_assert_str_eq(l.name, want);
    /* The workers poll it: non-blocking; and it must not leak into exec. */
    flags = fcntl(l.fd, F_GETFL);
    ck_assert(flags & O_NONBLOCK);
    ck_assert(fcntl(l.fd, F_GETFD) & FD_CLOEXEC);

    /* It really listens. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&in, sizeof(in)), 0);
    close(c);

    listen_close(&l, 0);
    ck_assert_int_eq(l.fd, -1);
    ck_assert_ptr_null(l.addr);
}
END_TEST

/* Whether this host can bind ::1 at all (some containers cannot). */
static int
listen_test_has_ipv6(void)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6,
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    ok = bind(fd, (struct sockaddr *)&in6, sizeof(in6)) == 0;
    close(fd);
    return ok;
}

START_TEST(test_listen_open_ipv6)
{
    struct listener l;
    struct sockaddr_in6 in6;
    socklen_t len = sizeof(in6);
    char want[64];
    int v6only = 0;
    socklen_t optlen = sizeof(v6only);

    if (!listen_test_has_ipv6())
        return; /* nothing to test without IPv6 */
    ck_assert_int_eq(listen_open(&l, "[::1]:0", 16), 0);
    ck_assert_int_eq(l.family, AF_INET6);
    ck_assert_int_eq(getsockname(l.fd, (struct sockaddr *)&in6, &len), 0);
    snprintf(want, sizeof(want), "http://[::1]:%u", ntohs(in6.sin6_port));
    ck_assert_str_eq(l.name, want);
    ck_assert_str_eq(l.host, "::1");
    snprintf(want, sizeof(want), "%u", ntohs(in6.sin6_port));
    ck_assert_str_eq(l.port, want);
    /* [::]:PORT must not also take the IPv4 port (a separate bind). */
    ck_assert_int_eq(
        getsockopt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen), 0);
    ck_assert_int_eq(v6only, 1);
    listen_close(&l, 0);
}
END_TEST

START_TEST(test_listen_open_bad_address)
{
    struct listener l;

    errno = 0;
    ck_assert_int_eq(listen_open(&l, "noport", 16), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(l.fd, -1);
    listen_close(&l, 0); /* safe after a failed open */
}
END_TEST

START_TEST(test_listen_open_tcp_in_use)
{
    struct listener a, b;
    char addr[64];

    ck_assert_int_eq(listen_open(&a, "127.0.0.1:0", 16), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", a.port);
    errno = 0;
    ck_assert_int_eq(listen_open(&b, addr, 16), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    ck_assert_int_eq(b.fd, -1);
    listen_close(&a, 0);
}
END_TEST

START_TEST(test_listen_open_unix)
{
    struct listener l;
    char path[128], addr[140];
    struct stat st;

    listen_test_path(path, sizeof(path), "live.sock");
    snprintf(addr, sizeof(addr), "unix:%s", path);
    ck_assert_int_eq(listen_open(&l, addr, 16), 0);
    ck_assert_int_eq(l.family, AF_UNIX);
    ck_assert_str_eq(l.unix_path, path);
    ck_assert_str_eq(l.name, addr);
    ck_assert_str_eq(l.port, "");
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    listen_close(&l, 1);
    errno = 0;
    ck_assert_int_eq(lstat(path, &st), -1);
    ck_assert_int_eq(errno, ENOENT); /* unlinked at close */
}
END_TEST

START_TEST(test_listen_open_unix_live)
{
    struct listener a, b;
    char path[128], addr[140];
    struct stat st;

    listen_test_path(path, sizeof(path), "live.sock");
    snprintf(addr, sizeof(addr), "unix:%s", path);
    ck_assert_int_eq(listen_open(&a, addr, 16), 0);
    errno = 0;
    ck_assert_int_eq(listen_open(&b, addr, 16), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    /* The live server keeps its socket file, and still answers. */
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    strcpy(un.sun_path, path);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&un, sizeof(un)), 0);
    close(c);
    listen_close(&a, 1);
}
END_TEST

START_TEST(test_listen_open_unix_stale)
{
    struct listener l;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char path[128], addr[140];
    int fd;

    listen_test_path(path, sizeof(path), "stale.sock");
    snprintf(addr, sizeof(addr), "unix:%s", path);
    /* A server that died without unlinking its socket. */
    strcpy(un.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    close(fd);

    ck_assert_int_eq(listen_open(&l, addr, 16), 0);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&un, sizeof(un)), 0);
    close(c);
    listen_close(&l, 1);
}
END_TEST

START_TEST(test_listen_open_unix_regular_file)
{
    struct listener l;
    char path[128], addr[140];
    struct stat st;
    int fd;

    listen_test_path(path, sizeof(path), "file");
    snprintf(addr, sizeof(addr), "unix:%s", path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "data", 4), 4);
    close(fd);

    errno = 0;
    ck_assert_int_eq(listen_open(&l, addr, 16), -1);
    ck_assert_int_ne(errno, 0);
    ck_assert_int_eq(l.fd, -1);
    /* The file is left alone. */
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_size, 4);
}
END_TEST

START_TEST(test_listen_close_keeps_path)
{
    struct listener l;
    char path[128], addr[140];
    struct stat st;

    listen_test_path(path, sizeof(path), "closed.sock");
    snprintf(addr, sizeof(addr), "unix:%s", path);
    ck_assert_int_eq(listen_open(&l, addr, 16), 0);
    /* A worker closes its copy without unlinking the master's path. */
    listen_close(&l, 0);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    /* Now stale: opening again replaces it. */
    ck_assert_int_eq(listen_open(&l, addr, 16), 0);
    listen_close(&l, 1);
}
END_TEST

static Suite *
listen_suite(void)
{
    Suite *s = suite_create("listen");
    TCase *parse = tcase_create("parse");
    TCase *open = tcase_create("open");

    tcase_add_test(parse, test_listen_parse_ipv4);
    tcase_add_test(parse, test_listen_parse_ipv6);
    tcase_add_test(parse, test_listen_parse_any);
    tcase_add_test(parse, test_listen_parse_unix);
    tcase_add_test(parse, test_listen_parse_port_bounds);
    tcase_add_test(parse, test_listen_parse_no_port);
    tcase_add_test(parse, test_listen_parse_bad_port);
    tcase_add_test(parse, test_listen_parse_bad_ipv6);
    tcase_add_test(parse, test_listen_parse_bad_unix);
    suite_add_tcase(s, parse);

    /* Made and removed by the runner: a failing test leaves nothing. */
    tcase_add_unchecked_fixture(open, listen_test_setup, listen_test_teardown);
    tcase_add_test(open, test_listen_open_tcp_ephemeral);
    tcase_add_test(open, test_listen_open_ipv6);
    tcase_add_test(open, test_listen_open_bad_address);
    tcase_add_test(open, test_listen_open_tcp_in_use);
    tcase_add_test(open, test_listen_open_unix);
    tcase_add_test(open, test_listen_open_unix_live);
    tcase_add_test(open, test_listen_open_unix_stale);
    tcase_add_test(open, test_listen_open_unix_regular_file);
    tcase_add_test(open, test_listen_close_keeps_path);
    suite_add_tcase(s, open);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(listen_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
