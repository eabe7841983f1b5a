#include "tmpl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "daemon.h"
#include "handoff.h"
#include "log.h"
#include "title.h"
#include "worker.h"

/* The template's signals: TERM, INT and QUIT end it (the master sends TERM
 * when its generation retires); what the master means for workers (HUP,
 * USR1, USR2, the resizes) means nothing here. */
static void
tmpl_signals(void)
{
    static const int dfl[] = {SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGALRM};
    static const int ign[] = {SIGPIPE,  SIGHUP,  SIGUSR1, SIGUSR2,
                              SIGWINCH, SIGTTIN, SIGTTOU};
    sigset_t none;

    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        signal(dfl[i], SIG_DFL);
    for (size_t i = 0; i < sizeof(ign) / sizeof(ign[0]); i++)
        signal(ign[i], SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the middle process: fork the worker, tell the template its pid, and
 * leave at once, which makes the worker the master's child. */
static void
tmpl_middle(const struct worker_env *env, struct app *app, int sock,
            unsigned slot, int fds[3], int report)
{
    pid_t me = getpid(), pid = fork();

    if (pid == 0) {
        close(report);
        close(sock);
        log_adopt(fds[1], fds[2]); /* the logs as the master has them now */
        app_atfork(app, FORKD_FORK_CHILD);
        worker_run(env, (int)slot, fds[0], app, me);
    }
    int32_t v = pid < 0 ? -errno : (int32_t)pid;
    daemon_write_best_effort(report, &v, sizeof(v));
    _exit(0);
}

/* Fork worker slot with the descriptors the master sent (owned). */
static void
tmpl_fork(const struct worker_env *env, struct app *app, int sock,
          unsigned slot, int fds[3])
{
    struct tmpl_msg r = {.what = TMPL_SPAWN_FAILED, .slot = slot};
    int32_t v = -EPROTO;
    int p[2], status;
    pid_t mid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        r.err = errno;
        goto out;
    }
    app_atfork(app, FORKD_FORK_PREPARE);
    if ((mid = fork()) == 0) {
        close(p[0]);
        tmpl_middle(env, app, sock, slot, fds, p[1]);
    }
    app_atfork(app, FORKD_FORK_PARENT);
    close(p[1]);
    if (mid > 0) {
        while (read(p[0], &v, sizeof(v)) < 0 && errno == EINTR)
            ;
        while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
            ;
    } else {
        v = -errno;
    }
    close(p[0]);
    if (v > 0) {
        r.what = TMPL_SPAWNED;
        r.pid = v;
    } else {
        r.err = -v;
    }
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    (void)send(sock, &r, sizeof(r), MSG_NOSIGNAL);
}

/* Serve the master's requests until it closes the socket. */
static void __attribute__((noreturn))
tmpl_serve(const struct worker_env *env, struct app *app, int sock)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    uint32_t slot;
    size_t len;
    int fds[3];

    for (;;) {
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            _exit(1);
        if (handoff_recv_msg(sock, fds, 3, &slot, sizeof(slot), &len) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            _exit(0); /* the master closed it: this generation is over */
        }
        if (len != sizeof(slot) || fds[0] < 0) {
            for (int i = 0; i < 3; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            continue;
        }
        tmpl_fork(env, app, sock, slot, fds);
    }
}

static void __attribute__((noreturn))
tmpl_main(const struct worker_env *env, int sock)
{
    struct tmpl_msg r = {.what = TMPL_NO_PRELOAD};
    char err[DAEMON_ERR_MAX > APP_ERR_MAX ? DAEMON_ERR_MAX : APP_ERR_MAX];
    struct app app;
    int rc;

    tmpl_signals();
    title_set("template (gen %u)", env->gen);
    /* Import-time code is the application's: never as root. */
    if (worker_drop(env, err) < 0) {
        log_error("template: %s", err);
        _exit(WORKER_EXIT_BOOT);
    }
    if (app_open(&app, env->app->path, env->cfg->threads, err) < 0) {
        log_error("template: %s: %s", env->app->path, err);
        _exit(WORKER_EXIT_BOOT);
    }
    if ((rc = app_preload(&app, env->cfg)) < 0) {
        log_error("template: %s: preload failed", env->app->path);
        _exit(WORKER_EXIT_BOOT);
    }
    if (rc == 1)
        r.what = TMPL_READY;
    (void)send(sock, &r, sizeof(r), MSG_NOSIGNAL);
    if (rc == 0)
        _exit(0); /* nothing preloaded: the master forks the workers */
    log_info("template (pid %d): %s preloaded", (int)getpid(), env->app->path);
    tmpl_serve(env, &app, sock);
}

int
tmpl_start(struct tmpl *t, const struct worker_env *env,
           void (*close_fds)(void *arg), void *arg)
{
    sigset_t all, old;
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    /* As for a worker: no master handler may run in the child. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    if ((pid = fork()) == 0) {
        close_fds(arg);
        close(sv[0]);
        tmpl_main(env, sv[1]);
    }
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        errno = saved;
        return -1;
    }
    (void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
    t->pid = pid;
    t->fd = sv[0];
    return 0;
}

int
tmpl_spawn(struct tmpl *t, unsigned slot, int chan)
{
    uint32_t s = slot;
    int fds[3] = {chan, -1, -1};

    if (t->fd < 0) {
        errno = EPIPE;
        return -1;
    }
    log_files(&fds[1], &fds[2]);
    return handoff_send_msg(t->fd, fds, 3, &s, sizeof(s));
}

int
tmpl_recv(struct tmpl *t, struct tmpl_msg *m)
{
    ssize_t n;

    if (t->fd < 0)
        return -1;
    n = recv(t->fd, m, sizeof(*m), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n == (ssize_t)sizeof(*m))
        return 1;
    close(t->fd);
    t->fd = -1;
    return -1;
}

int
tmpl_owns(pid_t pid, uid_t uid)
{
    siginfo_t si;
    char path[64], line[256];
    unsigned long ids[4];
    int ok = 0;
    FILE *f;

    memset(&si, 0, sizeof(si));
    if (pid <= 0 ||
        waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return 0; /* ECHILD: not ours */
    if (uid == (uid_t)-1)
        return 1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Uid: %lu %lu %lu %lu", &ids[0], &ids[1], &ids[2],
                   &ids[3]) == 4) {
            ok = ids[0] == uid && ids[1] == uid && ids[2] == uid &&
                 ids[3] == uid;
            break;
        }
    }
    fclose(f);
    return ok;
}

void
tmpl_stop(struct tmpl *t)
{
    if (t->pid > 0)
        (void)kill(t->pid, SIGTERM); /* not reaped yet: still ours */
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}
