/* test_status: `forkd status`, the client of the stats endpoint: its
 * options and their errors, the address from --stats or from the ini's
 * stats key, the request it sends (/status?text, or /status for --json),
 * what it prints (the body only, large ones too; --watch clears the
 * screen before each), and exit status 1 when nothing, or something that
 * is not a stats endpoint, answers.  A thread of the test plays the
 * endpoint on a unix socket or on 127.0.0.1. */
#include "status.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define STATUS_TEST_OUT_MAX (512 * 1024)

static char status_test_dir[64];

/* The endpoint the thread plays: one connection, then it closes its
 * listening socket. */
struct status_test_server {
    int fd;
    pthread_t thread;
    const char *answer; /* the whole response */
    size_t answer_len;
    char request[256]; /* the request line it got */
};

static void
status_test_setup(void)
{
    strcpy(status_test_dir, "/tmp/forkd-test-status-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(status_test_dir));
}

static void
status_test_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", status_test_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void *
status_test_serve(void *arg)
{
    struct status_test_server *s = arg;
    size_t n = 0, off = 0;
    int c = accept(s->fd, NULL, NULL);

    close(s->fd);
    if (c < 0)
        return NULL;
    /* The head, to its blank line. */
    while (n < sizeof(s->request) - 1 &&
           strstr(s->request, "\r\n\r\n") == NULL) {
        ssize_t k = read(c, s->request + n, sizeof(s->request) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        s->request[n] = '\0';
    }
    while (off < s->answer_len) {
        ssize_t k = write(c, s->answer + off, s->answer_len - off);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    close(c);
    return NULL;
}

static void
status_test_start(struct status_test_server *s, const char *answer, size_t len)
{
    s->answer = answer;
    s->answer_len = len;
    s->request[0] = '\0';
    ck_assert_int_eq(listen(s->fd, 4), 0);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, status_test_serve, s), 0);
}

/* An endpoint on a unix socket; its address ("unix:PATH") in addr. */
static void
status_test_unix(struct status_test_server *s, char *addr, size_t cap,
                 const char *answer)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stats.sock",
             status_test_dir);
    snprintf(addr, cap, "unix:%s", sa.sun_path);
    (void)unlink(sa.sun_path); /* the last test's: it served already */
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->fd, 0);
    ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    status_test_start(s, answer, strlen(answer));
}

/* An endpoint on 127.0.0.1, a port the kernel picks. */
static void
status_test_tcp(struct status_test_server *s, char *addr, size_t cap,
                const char *answer, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->fd, 0);
    ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, cap, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    status_test_start(s, answer, len);
}

static void
status_test_join(struct status_test_server *s)
{
    ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
}

/* What the last status_test_run wrote to stderr. */
static char status_test_err[4096];

/* Point fd (1 or 2) at a new file name in the test's directory; the
 * descriptor it had is returned, for status_test_restore. */
static int
status_test_capture(int fd, const char *name)
{
    char path[128];
    int saved = dup(fd), f;

    ck_assert_int_ge(saved, 0);
    snprintf(path, sizeof(path), "%s/%s", status_test_dir, name);
    f = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(dup2(f, fd), fd);
    close(f);
    return saved;
}

/* Put saved back on fd; what the file got into buf (cap bytes at most,
 * NUL-terminated). */
static void
status_test_restore(int fd, int saved, const char *name, char *buf, size_t cap)
{
    char path[128];
    size_t n;
    FILE *f;

    ck_assert_int_eq(dup2(saved, fd), fd);
    close(saved);
    snprintf(path, sizeof(path), "%s/%s", status_test_dir, name);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, cap - 1, f);
    ck_assert_uint_lt(n, cap - 1); /* all of it */
    buf[n] = '\0';
    fclose(f);
}

/* Run `forkd status ARGS...` (NULL-terminated); its stdout in out (a
 * malloc'd string, the caller frees), its stderr in status_test_err, its
 * exit status returned. */
static int
status_test_run(char **out, ...)
{
    char *argv[16] = {"status"};
    int argc = 1, out_fd, err_fd, rc;
    va_list ap;

    va_start(ap, out);
    while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    *out = malloc(STATUS_TEST_OUT_MAX + 1);
    ck_assert_ptr_nonnull(*out);
    fflush(stdout);
    fflush(stderr);
    out_fd = status_test_capture(1, "stdout");
    err_fd = status_test_capture(2, "stderr");
    rc = status_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    status_test_restore(2, err_fd, "stderr", status_test_err,
                        sizeof(status_test_err));
    status_test_restore(1, out_fd, "stdout", *out, STATUS_TEST_OUT_MAX + 1);
    return rc;
}

/* The last run's stderr has want. */
#define status_test_said(want)                                                 \
    ck_assert_msg(strstr(status_test_err, want) != NULL,                       \
                  "stderr \"%s\" lacks \"%s\"", status_test_err, want)

static void
status_test_ini(char *path, size_t cap, const char *text)
{
    FILE *f;

    snprintf(path, cap, "%s/forkd.ini", status_test_dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static const char status_test_ok[] = "HTTP/1.1 200 OK\r\n"
                                     "Content-Type: text/plain\r\n"
                                     "Connection: close\r\n"
                                     "\r\n"
                                     "workers 2 busy 0\n";

START_TEST(test_status_help)
{
    char *out;

    ck_assert_int_eq(status_test_run(&out, "--help", NULL), 0);
    ck_assert_msg(strncmp(out, "usage: forkd status ", 20) == 0, "%s", out);
    free(out);
    ck_assert_int_eq(status_test_run(&out, "-h", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "--watch N"));
    free(out);
}
END_TEST

START_TEST(test_status_bad_arguments)
{
    char *out;

    ck_assert_int_eq(status_test_run(&out, "--no-such-option", NULL), 1);
    ck_assert_str_eq(out, ""); /* the usage goes to stderr */
    status_test_said("usage: forkd status ");
    free(out);
    ck_assert_int_eq(status_test_run(&out, "--stats", "unix:/x", "extra", NULL),
                     1);
    status_test_said("usage: forkd status ");
    free(out);
    ck_assert_int_eq(status_test_run(&out, "--watch", "0", NULL), 1);
    status_test_said("forkd status: --watch: want 1..86400 seconds");
    free(out);
    ck_assert_int_eq(status_test_run(&out, "--watch", "86401", NULL), 1);
    free(out);
    ck_assert_int_eq(status_test_run(&out, "--watch", "2s", NULL), 1);
    ck_assert_str_eq(out, "");
    free(out);
}
END_TEST

START_TEST(test_status_config_without_stats)
{
    char ini[128], *out;

    status_test_ini(ini, sizeof(ini), "[server]\nworkers = 2\n");
    ck_assert_int_eq(status_test_run(&out, "-c", ini, NULL), 1);
    ck_assert_str_eq(out, "");
    status_test_said("forkd.ini: stats is not set: add stats = ");
    free(out);
    snprintf(ini, sizeof(ini), "%s/missing.ini", status_test_dir);
    ck_assert_int_eq(status_test_run(&out, "--config", ini, NULL), 1);
    status_test_said("forkd status: ");
    status_test_said("missing.ini");
    free(out);
}
END_TEST

START_TEST(test_status_text_from_config)
{
    struct status_test_server s;
    char addr[128], ini[128], text[256], *out;

    status_test_unix(&s, addr, sizeof(addr), status_test_ok);
    snprintf(text, sizeof(text), "[server]\nstats = %s\n", addr);
    status_test_ini(ini, sizeof(ini), text);
    ck_assert_int_eq(status_test_run(&out, "-c", ini, NULL), 0);
    status_test_join(&s);
    ck_assert_str_eq(out, "workers 2 busy 0\n"); /* the body alone */
    ck_assert_str_eq(s.request, "GET /status?text HTTP/1.0\r\n\r\n");
    free(out);
}
END_TEST

START_TEST(test_status_json_over_tcp)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\n\r\n{\"workers\":2}";
    struct status_test_server s;
    char addr[64], *out;

    status_test_tcp(&s, addr, sizeof(addr), answer, strlen(answer));
    ck_assert_int_eq(status_test_run(&out, "--stats", addr, "--json", NULL), 0);
    status_test_join(&s);
    ck_assert_str_eq(out, "{\"workers\":2}");
    ck_assert_str_eq(s.request, "GET /status HTTP/1.0\r\n\r\n");
    free(out);
}
END_TEST

START_TEST(test_status_large_body)
{
    static const char head[] = "HTTP/1.1 200 OK\r\n\r\n";
    size_t body = 300 * 1024; /* several of status_get's 64 KiB steps */
    char *answer = malloc(sizeof(head) - 1 + body + 1), addr[64], *out;
    struct status_test_server s;

    ck_assert_ptr_nonnull(answer);
    memcpy(answer, head, sizeof(head) - 1);
    for (size_t i = 0; i < body; i++)
        answer[sizeof(head) - 1 + i] = (char)('a' + i % 26);
    answer[sizeof(head) - 1 + body] = '\0';
    status_test_tcp(&s, addr, sizeof(addr), answer, strlen(answer));
    ck_assert_int_eq(status_test_run(&out, "--stats", addr, NULL), 0);
    status_test_join(&s);
    ck_assert_uint_eq(strlen(out), body);
    ck_assert_int_eq(memcmp(out, answer + sizeof(head) - 1, body), 0);
    free(out);
    free(answer);
}
END_TEST

START_TEST(test_status_not_an_endpoint)
{
    struct status_test_server s;
    char addr[128], *out;

    status_test_unix(&s, addr, sizeof(addr),
                     "HTTP/1.1 404 Not Found\r\n\r\nno such page\n");
    ck_assert_int_eq(status_test_run(&out, "--stats", addr, NULL), 1);
    status_test_join(&s);
    ck_assert_str_eq(out, "");
    status_test_said(": not a forkd stats endpoint");
    free(out);
    /* A 200 without the end of its head is no answer either. */
    status_test_unix(&s, addr, sizeof(addr), "HTTP/1.1 200 OK\r\n");
    ck_assert_int_eq(status_test_run(&out, "--stats", addr, NULL), 1);
    status_test_join(&s);
    ck_assert_str_eq(out, "");
    free(out);
}
END_TEST

START_TEST(test_status_nobody_answers)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    char addr[128], *out;
    int fd;

    snprintf(addr, sizeof(addr), "unix:%s/none.sock", status_test_dir);
    ck_assert_int_eq(status_test_run(&out, "--stats", addr, NULL), 1);
    status_test_said("forkd status: no forkd answers on unix:");
    status_test_said("No such file or directory");
    free(out);
    /* A port nobody listens on: the refusal comes through SO_ERROR or
     * connect itself. */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    close(fd);
    ck_assert_int_eq(status_test_run(&out, "--stats", addr, NULL), 1);
    ck_assert_str_eq(out, "");
    status_test_said("Connection refused");
    free(out);
    ck_assert_int_eq(status_test_run(&out, "--stats", "not an address", NULL),
                     1);
    status_test_said("no forkd answers on not an address");
    free(out);
}
END_TEST

/* --watch: the screen cleared, the body, a second later again; that one
 * finds nobody (the thread served once) and ends it with status 1. */
START_TEST(test_status_watch)
{
    struct status_test_server s;
    char addr[128], *out;

    status_test_unix(&s, addr, sizeof(addr), status_test_ok);
    ck_assert_int_eq(
        status_test_run(&out, "--stats", addr, "--watch", "1", NULL), 1);
    status_test_join(&s);
    ck_assert_str_eq(out, "\033[H\033[2Jworkers 2 busy 0\n");
    status_test_said("Connection refused"); /* the second time */
    free(out);
}
END_TEST

static Suite *
status_suite(void)
{
    Suite *s = suite_create("status");
    TCase *args = tcase_create("arguments");
    TCase *ask = tcase_create("ask");

    tcase_add_checked_fixture(args, status_test_setup, status_test_teardown);
    tcase_add_test(args, test_status_help);
    tcase_add_test(args, test_status_bad_arguments);
    tcase_add_test(args, test_status_config_without_stats);
    suite_add_tcase(s, args);

    tcase_add_checked_fixture(ask, status_test_setup, status_test_teardown);
    tcase_set_timeout(ask, 10); /* --watch sleeps a second */
    tcase_add_test(ask, test_status_text_from_config);
    tcase_add_test(ask, test_status_json_over_tcp);
    tcase_add_test(ask, test_status_large_body);
    tcase_add_test(ask, test_status_not_an_endpoint);
    tcase_add_test(ask, test_status_nobody_answers);
    tcase_add_test(ask, test_status_watch);
    suite_add_tcase(s, ask);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(status_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
