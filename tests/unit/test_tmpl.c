/* test_tmpl: the template process of a preloading generation, with the
 * test as its master.  The messages on the command socket (tmpl_recv: a
 * whole message, none yet, garbage or a closed socket), asking for a worker
 * (tmpl_spawn passes the slot, its log channel and the log files),
 * tmpl_owns (only an unreaped child of ours, of the given user) and
 * tmpl_stop.  tmpl_start's template says READY when preload returned 1 and
 * NO_PRELOAD when it returned 0, and exits WORKER_EXIT_BOOT when the
 * handler cannot load or preload refuses; a READY template ignores a
 * malformed request and forks the worker asked for through a middle
 * process, so that the worker becomes the master's child (the test is a
 * subreaper, as the master), waits for the master's word, and serves with
 * what preload left. */
#include "tmpl.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "fixture.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "scoreboard.h"
#include "worker.h"

#define TMPL_TEST_HANDLE                                                       \
    "static int h(struct forkd_req *r, void *s)\n"                             \
    "{ const char *b = s;\n"                                                   \
    "  if (forkd_start_response(r, \"200 OK\", NULL, 0) == -1) return -1;\n"   \
    "  return forkd_write(r, b, strlen(b)) == -1 ? -1 : 0; }\n"                \
    "static int i(const struct forkd_option *o, size_t n, void **s)\n"         \
    "{ (void)o; (void)n; if (*s == NULL) *s = (void *)\"not preloaded\";\n"    \
    "  return 0; }\n"

static const struct test_handler tmpl_test_sources[] = {
    {"preload", "#include <string.h>\n"
                "#include \"forkd.h\"\n" TMPL_TEST_HANDLE
                "static int p(const struct forkd_option *o, size_t n,\n"
                "             void **s)\n"
                "{ (void)o; (void)n; *s = (void *)\"preloaded\"; return 1; }\n"
                "const struct forkd_app forkd_app = {\n"
                "    .api_version = FORKD_API_VERSION, .handle = h,\n"
                "    .init = i, .preload = p };\n"},
    {"declines", "#include <string.h>\n"
                 "#include \"forkd.h\"\n" TMPL_TEST_HANDLE
                 "static int p(const struct forkd_option *o, size_t n,\n"
                 "             void **s)\n"
                 "{ (void)o; (void)n; (void)s; return 0; }\n"
                 "const struct forkd_app forkd_app = {\n"
                 "    .api_version = FORKD_API_VERSION, .handle = h,\n"
                 "    .init = i, .preload = p };\n"},
    {"refuses", "#include <string.h>\n"
                "#include \"forkd.h\"\n" TMPL_TEST_HANDLE
                "static int p(const struct forkd_option *o, size_t n,\n"
                "             void **s)\n"
                "{ (void)o; (void)n; (void)s; return -1; }\n"
                "const struct forkd_app forkd_app = {\n"
                "    .api_version = FORKD_API_VERSION, .handle = h,\n"
                "    .init = i, .preload = p };\n"},
};

#define TMPL_TEST_N (sizeof(tmpl_test_sources) / sizeof(tmpl_test_sources[0]))

static char tmpl_test_dir[64]; /* the handlers built for the suite */

static void
tmpl_test_build_all(void)
{
    test_handlers_build(tmpl_test_dir, "tmpl", tmpl_test_sources, TMPL_TEST_N);
}

static void
tmpl_test_remove_all(void)
{
    test_rmdir(tmpl_test_dir);
}

/* --- the command socket, without a template ------------------------------- */

START_TEST(test_tmpl_recv)
{
    struct tmpl t = {.mode = TMPL_USE, .pid = 0, .fd = -1};
    struct tmpl_msg m, sent = {.what = TMPL_SPAWNED, .slot = 3, .pid = 42};
    int sv[2];

    ck_assert_int_eq(tmpl_recv(&t, &m), -1); /* no socket */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    t.fd = sv[0];
    ck_assert_int_eq(tmpl_recv(&t, &m), 0); /* nothing yet */
    ck_assert_int_eq(send(sv[1], &sent, sizeof(sent), 0),
                     (ssize_t)sizeof(sent));
    ck_assert_int_eq(tmpl_recv(&t, &m), 1);
    ck_assert_uint_eq(m.what, TMPL_SPAWNED);
    ck_assert_uint_eq(m.slot, 3);
    ck_assert_int_eq(m.pid, 42);
    /* Garbage: the socket is given up. */
    ck_assert_int_eq(send(sv[1], "junk", 4, 0), 4);
    ck_assert_int_eq(tmpl_recv(&t, &m), -1);
    ck_assert_int_eq(t.fd, -1);
    close(sv[1]);

    /* The template closed its end. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    t.fd = sv[0];
    close(sv[1]);
    ck_assert_int_eq(tmpl_recv(&t, &m), -1);
    ck_assert_int_eq(t.fd, -1);
}
END_TEST

START_TEST(test_tmpl_spawn_passes_slot_and_files)
{
    struct tmpl t = {.mode = TMPL_USE, .pid = 0, .fd = -1};
    char dir[] = "/tmp/forkd-test-tmpl-XXXXXX", log[128];
    struct stat want, got;
    uint32_t slot = 0;
    size_t len = 0;
    int sv[2], chan[2], fds[3];

    errno = 0;
    ck_assert_int_eq(tmpl_spawn(&t, 1, 0), -1);
    ck_assert_int_eq(errno, EPIPE);

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(log, sizeof(log), "%s/error.log", dir);
    ck_assert_int_eq(log_open(log, NULL, FORKD_LOG_INFO), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, chan), 0);
    t.fd = sv[0];
    ck_assert_int_eq(tmpl_spawn(&t, 5, chan[1]), 0);
    ck_assert_int_eq(handoff_recv_msg(sv[1], fds, 3, &slot, sizeof(slot), &len),
                     0);
    ck_assert_uint_eq(len, sizeof(slot));
    ck_assert_uint_eq(slot, 5);
    /* The worker's end of its log channel, and the error log; no access
     * log is configured. */
    ck_assert_int_eq(fstat(chan[1], &want), 0);
    ck_assert_int_eq(fstat(fds[0], &got), 0);
    ck_assert_uint_eq(got.st_ino, want.st_ino);
    ck_assert_int_eq(stat(log, &want), 0);
    ck_assert_int_eq(fstat(fds[1], &got), 0);
    ck_assert_uint_eq(got.st_ino, want.st_ino);
    ck_assert_int_eq(fds[2], -1);
    close(fds[0]);
    close(fds[1]);
    log_close();
    tmpl_stop(&t); /* no pid: the socket only */
    ck_assert_int_eq(t.fd, -1);
    close(sv[1]);
    close(chan[0]);
    close(chan[1]);
    unlink(log);
    rmdir(dir);
}
END_TEST

START_TEST(test_tmpl_owns)
{
    pid_t pid;
    int status;

    ck_assert_int_eq(tmpl_owns(0, (uid_t)-1), 0);
    ck_assert_int_eq(tmpl_owns(-1, (uid_t)-1), 0);
    ck_assert_int_eq(tmpl_owns(getppid(), (uid_t)-1), 0); /* not a child */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    ck_assert_int_eq(tmpl_owns(pid, (uid_t)-1), 1);
    ck_assert_int_eq(tmpl_owns(pid, geteuid()), 1);
    ck_assert_int_eq(tmpl_owns(pid, geteuid() + 1), 0); /* another user's */
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    /* Dead but not reaped: still ours (its pid cannot be reused). */
    ck_assert_int_eq(
        waitid(P_PID, (id_t)pid, &(siginfo_t){0}, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(tmpl_owns(pid, (uid_t)-1), 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(tmpl_owns(pid, (uid_t)-1), 0); /* reaped */
}
END_TEST

START_TEST(test_tmpl_stop_terminates)
{
    struct tmpl t = {.mode = TMPL_USE};
    int sv[2], status;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    t.fd = sv[0];
    /* check's handler, which the child would inherit, passes TERM on to
     * the whole test's process group. */
    signal(SIGTERM, SIG_DFL);
    t.pid = fork();
    ck_assert_int_ge(t.pid, 0);
    if (t.pid == 0) {
        pause();
        _exit(0);
    }
    tmpl_stop(&t);
    ck_assert_int_eq(t.fd, -1);
    ck_assert_int_gt(t.pid, 0); /* left for the reaper */
    ck_assert_int_eq(waitpid(t.pid, &status, 0), t.pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    close(sv[1]);
}
END_TEST

/* --- a template of the test's own --------------------------------------- */

/* What the master holds for a generation: its configuration, handler,
 * listening socket, scoreboard and handoff pair. */
struct tmpl_test_gen {
    struct test_gen g;
    struct tmpl t;
};

static void
tmpl_test_close_nothing(void *arg)
{
    (void)arg;
}

static void
tmpl_test_gen_start(struct tmpl_test_gen *g, const char *handler)
{
    test_gen_open(&g->g, "tmpl", handler, 7);
    g->t.mode = TMPL_ASK;
    g->t.fd = -1;
    ck_assert_int_eq(
        tmpl_start(&g->t, &g->g.env, tmpl_test_close_nothing, NULL), 0);
    ck_assert_int_gt(g->t.pid, 0);
}

static void
tmpl_test_gen_stop(struct tmpl_test_gen *g)
{
    if (g->t.pid > 0) {
        kill(g->t.pid, SIGKILL);
        (void)waitpid(g->t.pid, NULL, 0);
    }
    if (g->t.fd >= 0)
        close(g->t.fd);
    test_gen_close(&g->g);
}

static const char *
tmpl_test_so(const char *name)
{
    static char path[160];

    snprintf(path, sizeof(path), "%s/%s.so", tmpl_test_dir, name);
    return path;
}

/* The next message from the template: tmpl_recv's result, waiting for
 * one up to TEST_WAIT_MS. */
static int
tmpl_test_recv(struct tmpl *t, struct tmpl_msg *m)
{
    struct pollfd p = {.fd = t->fd, .events = POLLIN};

    if (t->fd >= 0 && poll(&p, 1, TEST_WAIT_MS) <= 0)
        return 0;
    return tmpl_recv(t, m);
}

START_TEST(test_tmpl_start_no_preload)
{
    struct tmpl_test_gen g;
    struct tmpl_msg m;
    int status;

    tmpl_test_gen_start(&g, tmpl_test_so("declines"));
    ck_assert_int_eq(tmpl_test_recv(&g.t, &m), 1);
    ck_assert_uint_eq(m.what, TMPL_NO_PRELOAD);
    status = test_wait_pid(g.t.pid);
    g.t.pid = 0;
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(tmpl_test_recv(&g.t, &m), -1); /* it closed its end */
    tmpl_test_gen_stop(&g);
}
END_TEST

START_TEST(test_tmpl_start_fails)
{
    struct tmpl_test_gen g;
    struct tmpl_msg m;
    int status;

    tmpl_test_gen_start(&g, tmpl_test_so("no-such-handler"));
    ck_assert_int_eq(tmpl_test_recv(&g.t, &m), -1);
    status = test_wait_pid(g.t.pid);
    g.t.pid = 0;
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT);
    ck_assert(test_gen_logged(&g.g, "template: "));
    ck_assert(test_gen_logged(&g.g, "no-such-handler.so"));
    tmpl_test_gen_stop(&g);

    tmpl_test_gen_start(&g, tmpl_test_so("refuses"));
    ck_assert_int_eq(tmpl_test_recv(&g.t, &m), -1);
    status = test_wait_pid(g.t.pid);
    g.t.pid = 0;
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT);
    ck_assert(test_gen_logged(&g.g, "refuses.so: preload failed"));
    tmpl_test_gen_stop(&g);
}
END_TEST

START_TEST(test_tmpl_forks_preloaded_worker)
{
    struct tmpl_test_gen g;
    struct tmpl_msg m;
    uint32_t bad = 0;
    int chan[2], none[2] = {-1, -1}, fd, status;
    char buf[4096];
    pid_t worker;

    /* As the master: orphans of the middle process come to us. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    tmpl_test_gen_start(&g, tmpl_test_so("preload"));
    ck_assert_int_eq(tmpl_test_recv(&g.t, &m), 1);
    ck_assert_uint_eq(m.what, TMPL_READY);

    /* A request without descriptors, then one of the wrong size: both
     * ignored. */
    ck_assert_int_eq(handoff_send_msg(g.t.fd, none, 2, &bad, sizeof(bad)), 0);
    ck_assert_int_eq(send(g.t.fd, "xx", 2, 0), 2);

    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, chan),
        0);
    ck_assert_int_eq(tmpl_spawn(&g.t, 0, chan[1]), 0);
    close(chan[1]);
    ck_assert_int_eq(tmpl_test_recv(&g.t, &m), 1);
    ck_assert_uint_eq(m.what, TMPL_SPAWNED);
    ck_assert_uint_eq(m.slot, 0);
    worker = m.pid;
    ck_assert_int_gt(worker, 0);
    /* The middle process has left: the worker is our child. */
    for (int i = 0; i < 500 && !tmpl_owns(worker, (uid_t)-1); i++)
        usleep(10000);
    ck_assert_int_eq(tmpl_owns(worker, geteuid()), 1);
    ck_assert_int_ne(g.g.board.slots[0].state, SB_IDLE); /* waits for us */
    /* The master's word: it took the worker. */
    ck_assert_int_eq(handoff_send_fds(chan[0], none, 2), 0);
    for (int i = 0; i < 500 && g.g.board.slots[0].state != SB_IDLE; i++)
        usleep(10000);
    ck_assert_int_eq(g.g.board.slots[0].state, SB_IDLE);
    ck_assert_uint_eq(g.g.board.slots[0].gen, 7);

    /* It serves with the state preload left (init kept it). */
    fd = test_gen_connect(&g.g);
    ck_assert_int_eq(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    ck_assert_msg(test_read_until(fd, buf, sizeof(buf), "\r\n\r\npreloaded", 1),
                  "got: %s", buf);
    close(fd);

    ck_assert_int_eq(kill(worker, SIGQUIT), 0);
    status = test_wait_pid(worker);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "worker status 0x%x", status);
    /* The master retires the generation: TERM. */
    tmpl_stop(&g.t);
    status = test_wait_pid(g.t.pid);
    g.t.pid = 0;
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    ck_assert(test_gen_logged(&g.g, "preload.so preloaded"));
    close(chan[0]);
    tmpl_test_gen_stop(&g);
}
END_TEST

static Suite *
tmpl_suite(void)
{
    Suite *s = suite_create("tmpl");
    TCase *sock = tcase_create("socket");
    TCase *life = tcase_create("template");

    tcase_add_test(sock, test_tmpl_recv);
    tcase_add_test(sock, test_tmpl_spawn_passes_slot_and_files);
    tcase_add_test(sock, test_tmpl_owns);
    tcase_add_test(sock, test_tmpl_stop_terminates);
    suite_add_tcase(s, sock);

    tcase_add_unchecked_fixture(life, tmpl_test_build_all,
                                tmpl_test_remove_all);
    tcase_set_timeout(life, 30);
    tcase_add_test(life, test_tmpl_start_no_preload);
    tcase_add_test(life, test_tmpl_start_fails);
    tcase_add_test(life, test_tmpl_forks_preloaded_worker);
    suite_add_tcase(s, life);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tmpl_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
