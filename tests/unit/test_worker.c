/* test_worker: a worker without its master.  The test plays the master:
 * it opens a unix listening socket, the scoreboard, the handoff socket pair
 * and the error log, forks, and the child runs worker_run as the master's
 * children do.  The worker serves requests on the shared listen queue (one
 * at a time, keep-alive and pipelined ones, refusing a bad head with 400),
 * leaves with status 0 on QUIT, and with WORKER_EXIT_BOOT when its handler
 * cannot start or its parent is not the master it was given.  worker_drop
 * (the switch to the workers' user) is tested in a child too.
 *
 * The worker's own logic (the poller, the watchdog's handoff, timeouts) is
 * in static functions; the integration tests drive it through forkd. */
#include "worker.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "fixture.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "scoreboard.h"

static const struct test_handler worker_test_sources[] = {
    {"init_fails", "#include \"forkd.h\"\n"
                   "static int h(struct forkd_req *r, void *s)\n"
                   "{ (void)r; (void)s; return 0; }\n"
                   "static int i(const struct forkd_option *o, size_t n,\n"
                   "             void **s) { (void)o; (void)n; (void)s;\n"
                   "  return -1; }\n"
                   "const struct forkd_app forkd_app = {\n"
                   "    .api_version = FORKD_API_VERSION,\n"
                   "    .handle = h, .init = i };\n"},
};

#define WORKER_TEST_N                                                          \
    (sizeof(worker_test_sources) / sizeof(worker_test_sources[0]))

/* What the master would hold for one worker. */
struct worker_test {
    struct test_gen g;
    int chan[2]; /* the log channel: [0] the master's end */
    pid_t pid;
};

static char worker_test_dir[64]; /* the handlers built for the suite */

static void
worker_test_build_all(void)
{
    test_handlers_build(worker_test_dir, "worker", worker_test_sources,
                        WORKER_TEST_N);
}

static void
worker_test_remove_all(void)
{
    test_rmdir(worker_test_dir);
}

/* An example handler of FORKD_APPS (build/app by default). */
static const char *
worker_test_example(const char *name)
{
    static char path[256];
    const char *dir = getenv("FORKD_APPS");

    snprintf(path, sizeof(path), "%s/%s.so", dir ? dir : "build/app", name);
    return path;
}

static const char *
worker_test_built(const char *name)
{
    static char path[160];

    snprintf(path, sizeof(path), "%s/%s.so", worker_test_dir, name);
    return path;
}

/* Everything the master opens before it forks a worker for handler. */
static void
worker_test_init(struct worker_test *w, const char *handler)
{
    test_gen_open(&w->g, "worker", handler, 1);
    ck_assert_int_eq(socketpair(AF_UNIX,
                                SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                                w->chan),
                     0);
    w->pid = -1;
}

static void
worker_test_fork(struct worker_test *w)
{
    w->pid = fork();
    ck_assert_int_ge(w->pid, 0);
    if (w->pid == 0) {
        close(w->chan[0]);
        worker_run(&w->g.env, 0, w->chan[1], NULL, 0);
    }
    close(w->chan[1]);
    w->chan[1] = -1;
}

/* The worker's exit status (as waitpid gives it), within the wait. */
static int
worker_test_wait(struct worker_test *w)
{
    pid_t pid = w->pid;

    w->pid = -1;
    return test_wait_pid(pid);
}

static void
worker_test_wait_ready(struct worker_test *w)
{
    for (int i = 0; i < TEST_WAIT_MS / 10; i++) {
        if (w->g.board.slots[0].state == SB_IDLE)
            return;
        ck_assert_int_eq(waitpid(w->pid, NULL, WNOHANG), 0); /* alive */
        usleep(10000);
    }
    ck_abort_msg("the worker was not ready within %d ms", TEST_WAIT_MS);
}

static void
worker_test_fini(struct worker_test *w)
{
    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
        (void)waitpid(w->pid, NULL, 0);
    }
    close(w->chan[0]);
    test_gen_close(&w->g);
}

static void
worker_test_send(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* EOF from the worker within the wait: it closed the connection. */
static int
worker_test_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[4096];

    for (int i = 0; i < 100; i++) {
        if (poll(&p, 1, TEST_WAIT_MS) <= 0)
            return 0;
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k == 0)
            return 1;
        if (k < 0)
            return errno == ECONNRESET;
    }
    return 0;
}

START_TEST(test_worker_serves_until_quit)
{
    struct worker_test w;
    char buf[4096];
    int fd, status;

    worker_test_init(&w, worker_test_example("hello"));
    worker_test_fork(&w);
    worker_test_wait_ready(&w);
    ck_assert_int_eq(w.g.board.slots[0].pid, w.pid);
    ck_assert_uint_eq(w.g.board.slots[0].gen, 1);

    /* One request, then two pipelined on the same kept-alive connection. */
    fd = test_gen_connect(&w.g);
    worker_test_send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(test_read_until(fd, buf, sizeof(buf), "Hello, World!\n", 1),
                  "got: %s", buf);
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    worker_test_send(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(test_read_until(fd, buf, sizeof(buf), "Hello, World!\n", 2),
                  "got: %s", buf);
    close(fd);

    /* A bad head: 400 from the server itself, and the connection closed. */
    fd = test_gen_connect(&w.g);
    worker_test_send(fd, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    ck_assert_msg(test_read_until(fd, buf, sizeof(buf), "HTTP/1.1 400 ", 1),
                  "got: %s", buf);
    ck_assert(worker_test_closed(fd));
    close(fd);

    ck_assert_uint_ge(w.g.board.slots[0].requests, 3);
    ck_assert_int_eq(kill(w.pid, SIGQUIT), 0);
    status = worker_test_wait(&w);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x",
                  status);
    worker_test_fini(&w);
}
END_TEST

/* QUIT: a kept-alive connection that waits for its next request is
 * closed, not served again, and the worker leaves with status 0. */
START_TEST(test_worker_quit_is_graceful)
{
    struct worker_test w;
    char buf[4096];
    int fd, status;

    worker_test_init(&w, worker_test_example("hello"));
    worker_test_fork(&w);
    worker_test_wait_ready(&w);
    fd = test_gen_connect(&w.g);
    worker_test_send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(test_read_until(fd, buf, sizeof(buf), "Hello, World!\n", 1));
    ck_assert_int_eq(kill(w.pid, SIGQUIT), 0);
    ck_assert(worker_test_closed(fd));
    close(fd);
    status = worker_test_wait(&w);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    worker_test_fini(&w);
}
END_TEST

START_TEST(test_worker_handler_missing)
{
    struct worker_test w;
    char path[128];
    int status;

    snprintf(path, sizeof(path), "%s/no-such-handler.so", worker_test_dir);
    worker_test_init(&w, path);
    worker_test_fork(&w);
    status = worker_test_wait(&w);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT,
                  "status 0x%x", status);
    ck_assert(test_gen_logged(&w.g, "no-such-handler.so"));
    worker_test_fini(&w);
}
END_TEST

START_TEST(test_worker_handler_init_fails)
{
    struct worker_test w;
    int status;

    worker_test_init(&w, worker_test_built("init_fails"));
    worker_test_fork(&w);
    status = worker_test_wait(&w);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT);
    ck_assert(test_gen_logged(&w.g, "init_fails.so: init failed"));
    worker_test_fini(&w);
}
END_TEST

/* A worker whose parent is not the master it was given (the master died
 * before it ran) never serves. */
START_TEST(test_worker_master_gone)
{
    struct worker_test w;
    int status;

    worker_test_init(&w, worker_test_example("hello"));
    w.g.env.master = getppid();
    worker_test_fork(&w);
    status = worker_test_wait(&w);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT);
    ck_assert_int_ne(w.g.board.slots[0].state, SB_IDLE);
    worker_test_fini(&w);
}
END_TEST

START_TEST(test_worker_drop_nothing)
{
    struct worker_env env;
    char err[DAEMON_ERR_MAX] = "";

    memset(&env, 0, sizeof(env));
    env.creds.uid = (uid_t)-1;
    env.creds.gid = (gid_t)-1;
    env.master = 1; /* not even looked at: nothing to switch */
    ck_assert_int_eq(worker_drop(&env, err), 0);
    ck_assert_str_eq(err, "");
}
END_TEST

/* worker_drop in a child of the test (its master): the ids switched; or
 * -1 when the parent is not the master. */
static int
worker_test_drop(pid_t master, char err[DAEMON_ERR_MAX], uid_t *uid)
{
    struct worker_env env;
    struct {
        int rc;
        uid_t uid;
        char err[DAEMON_ERR_MAX];
    } r;
    int p[2], status;
    pid_t pid;

    memset(&env, 0, sizeof(env));
    ck_assert_int_eq(
        daemon_creds(geteuid() == 0 ? "nobody" : "", NULL, &env.creds, err), 0);
    if (geteuid() != 0)
        env.creds.uid = getuid(); /* what a non-root master may not do */
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        memset(&r, 0, sizeof(r));
        env.master = master ? master : getppid();
        r.rc = worker_drop(&env, r.err);
        r.uid = geteuid();
        ssize_t n = write(p[1], &r, sizeof(r));
        exit(n == (ssize_t)sizeof(r) ? 0 : 1);
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], &r, sizeof(r)), (ssize_t)sizeof(r));
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    memcpy(err, r.err, DAEMON_ERR_MAX);
    *uid = r.uid;
    return r.rc;
}

START_TEST(test_worker_drop_to_user)
{
    char err[DAEMON_ERR_MAX] = "";
    uid_t uid;

    if (geteuid() != 0) {
        /* Not root: the groups cannot be set, nothing is switched. */
        ck_assert_int_eq(worker_test_drop(0, err, &uid), -1);
        ck_assert_msg(strstr(err, "cannot switch") != NULL, "err: %s", err);
        return;
    }
    ck_assert_msg(worker_test_drop(0, err, &uid) == 0, "%s", err);
    ck_assert_uint_eq(uid, getpwnam("nobody")->pw_uid);
    /* Dropped, but the parent is not the master: it must not go on. */
    ck_assert_int_eq(worker_test_drop(1, err, &uid), -1);
    ck_assert_str_eq(err, "the master is gone");
}
END_TEST

static Suite *
worker_suite(void)
{
    Suite *s = suite_create("worker");
    TCase *run = tcase_create("run");
    TCase *drop = tcase_create("drop");

    tcase_add_unchecked_fixture(run, worker_test_build_all,
                                worker_test_remove_all);
    tcase_set_timeout(run, 20);
    tcase_add_test(run, test_worker_serves_until_quit);
    tcase_add_test(run, test_worker_quit_is_graceful);
    tcase_add_test(run, test_worker_handler_missing);
    tcase_add_test(run, test_worker_handler_init_fails);
    tcase_add_test(run, test_worker_master_gone);
    suite_add_tcase(s, run);

    tcase_add_test(drop, test_worker_drop_nothing);
    tcase_add_test(drop, test_worker_drop_to_user);
    suite_add_tcase(s, drop);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(worker_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
