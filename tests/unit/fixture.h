/* fixture.h: what the unit suites that run real handlers share (app,
 * master, tmpl, worker): handlers compiled from source text once per suite
 * into a temporary directory; what the master holds for a generation
 * before it forks workers; waiting for a child, a log line or bytes. */
#ifndef FORKD_TEST_FIXTURE_H
#define FORKD_TEST_FIXTURE_H

#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "scoreboard.h"
#include "worker.h"

#define TEST_WAIT_MS 5000

struct test_handler {
    const char *name;   /* NAME.so in the directory */
    const char *source; /* C, with forkd.h from app/ */
};

/* Make dir (a buffer of at least 64 bytes) from the template
 * "/tmp/forkd-test-WHAT-XXXXXX", world-readable so that workers running as
 * nobody load from it, and build each handler there.  -shared links with
 * undefined symbols allowed (the default): a handler that lacks one fails
 * only at dlopen. */
static inline void
test_handlers_build(char *dir, const char *what, const struct test_handler *h,
                    size_t n)
{
    char path[128], cmd[512];
    FILE *f;

    snprintf(dir, 64, "/tmp/forkd-test-%s-XXXXXX", what);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0755), 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s.c", dir, h[i].name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(h[i].source, f);
        ck_assert_int_eq(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -I app -o %s/%s.so %s",
                 dir, h[i].name, path);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    }
}

/* rm -rf dir: a temporary directory of a suite. */
static inline void
test_rmdir(const char *dir)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    /* warn_unused_result: a (void) cast does not silence it */
    int rc = system(cmd); /* a leftover temp dir is harmless */
    (void)rc;
}

/* What the master holds for one generation: a directory with its error
 * log (debug) and listening socket, the configuration's defaults, the
 * handler, a scoreboard of one slot, the handoff pair, and the env a
 * worker (or template) is started with. */
struct test_gen {
    char dir[64];
    char log[128];
    struct cfg cfg;
    struct app app;
    struct listener ls;
    struct sb board;
    struct worker_env env;
};

static inline void
test_gen_open(struct test_gen *g, const char *what, const char *handler,
              unsigned gen)
{
    char addr[128];

    memset(g, 0, sizeof(*g));
    snprintf(g->dir, sizeof(g->dir), "/tmp/forkd-test-%s-XXXXXX", what);
    ck_assert_ptr_nonnull(mkdtemp(g->dir));
    snprintf(g->log, sizeof(g->log), "%s/error.log", g->dir);
    ck_assert_int_eq(log_open(g->log, NULL, FORKD_LOG_DEBUG), 0);
    ck_assert_int_eq(cfg_init(&g->cfg), 0);
    ck_assert_int_eq(app_set_path(&g->app, handler), 0);
    snprintf(addr, sizeof(addr), "unix:%s/http.sock", g->dir);
    ck_assert_int_eq(listen_open(&g->ls, addr, 16), 0);
    ck_assert_int_eq(sb_open(&g->board, 1, g->cfg.threads), 0);
    ck_assert_int_eq(handoff_open(g->env.handoff), 0);
    g->env.cfg = &g->cfg;
    g->env.app = &g->app;
    g->env.ls = &g->ls;
    g->env.n_ls = 1;
    g->env.board = &g->board;
    g->env.master = getpid();
    g->env.gen = gen;
    g->env.creds.uid = (uid_t)-1;
    g->env.creds.gid = (gid_t)-1;
    signal(SIGPIPE, SIG_IGN);
}

static inline void
test_gen_close(struct test_gen *g)
{
    close(g->env.handoff[0]);
    close(g->env.handoff[1]);
    sb_close(&g->board);
    listen_close(&g->ls, 1);
    app_close(&g->app);
    cfg_fini(&g->cfg);
    log_close();
    test_rmdir(g->dir);
}

/* Whether the generation's error log has a line containing want. */
static inline int
test_gen_logged(const struct test_gen *g, const char *want)
{
    char line[512];
    int found = 0;
    FILE *f = fopen(g->log, "r");

    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, want) != NULL;
    fclose(f);
    return found;
}

/* A client connection to the generation's listening socket. */
static inline int
test_gen_connect(const struct test_gen *g)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g->ls.unix_path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Read from fd until want has arrived count times (1), or EOF, or the wait
 * is over (0); what came is in buf. */
static inline int
test_read_until(int fd, char *buf, size_t cap, const char *want, int count)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 0; i < 100; i++) {
        int seen = 0;
        for (const char *at = buf; (at = strstr(at, want)) != NULL; at++)
            seen++;
        if (seen >= count)
            return 1;
        if (poll(&p, 1, TEST_WAIT_MS) <= 0)
            return 0;
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            return 0;
        n += (size_t)k;
        buf[n] = '\0';
    }
    return 0;
}

/* pid's exit status (as waitpid gives it) within the wait; else it is
 * killed and the test fails. */
static inline int
test_wait_pid(pid_t pid)
{
    int status = 0;

    for (int i = 0; i < TEST_WAIT_MS / 10; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        ck_assert_int_ge(r, 0);
        if (r == pid)
            return status;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, &status, 0);
    ck_abort_msg("pid %d did not exit within %d ms", (int)pid, TEST_WAIT_MS);
    return -1;
}

#endif
