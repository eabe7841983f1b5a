#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "scoreboard.h"
#include "worker.h"

#define MASTER_MAX_WORKERS 1024
#define MASTER_QUICK_STOP_MS 5000
#define MASTER_MAX_EARLY_DEATHS 10
#define MASTER_BACKOFF_MAX_MS 5000

struct master {
    const struct cfg *cfg;
    struct app *app;
    struct worker_env env;
    struct sb_slot *sb; /* MASTER_MAX_WORKERS slots, in board */
    struct sb board;
    unsigned target; /* workers wanted */
    int ready;       /* the ready line was logged */
    int stopping;    /* 0, SIGTERM (quick) or SIGQUIT (graceful) */
    uint64_t stop_deadline_ms;
    int killed;             /* SIGKILL sent to what was left */
    unsigned early_deaths;  /* in a row */
    uint64_t respawn_at_ms; /* backoff after early deaths */
    int exit_status;
};

/* The self-pipe: signal handlers only write the signal number here. */
static int master_pipe[2] = {-1, -1};

static void
master_on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;

    (void)write(master_pipe[1], &b, 1); /* full pipe: the event is pending */
    errno = saved;
}

static int
master_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT,  SIGQUIT,  SIGCHLD, SIGHUP,
                               SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU};
    struct sigaction sa = {.sa_handler = master_on_signal,
                           .sa_flags = SA_RESTART};

    if (pipe2(master_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int
master_count(struct master *m)
{
    int n = 0;

    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        n += m->sb[i].pid != 0;
    return n;
}

static void
master_kill_all(struct master *m, int sig)
{
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->sb[i].pid > 0)
            (void)kill(m->sb[i].pid, sig); /* it may have just exited */
}

static void
master_spawn(struct master *m, unsigned i)
{
    pid_t pid;

    sb_reset(&m->board, i);
    m->sb[i].state = SB_BOOTING;
    pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        m->sb[i].state = SB_EMPTY;
        return;
    }
    if (pid == 0) {
        close(master_pipe[0]);
        close(master_pipe[1]);
        worker_run(&m->env, (int)i);
    }
    m->sb[i].pid = pid;
    log_info("worker %u started (pid %d)", i, (int)pid);
}

/* Start the workers that are missing, lowest slots first. */
static void
master_fill(struct master *m)
{
    if (m->stopping || sb_now_ms() < m->respawn_at_ms)
        return;
    for (unsigned i = 0; i < m->target; i++)
        if (m->sb[i].pid == 0)
            master_spawn(m, i);
}

static void
master_fatal(struct master *m, const char *why)
{
    log_error("%s; stopping", why);
    m->exit_status = 1;
    if (!m->stopping) {
        m->stopping = SIGTERM;
        m->stop_deadline_ms = sb_now_ms() + MASTER_QUICK_STOP_MS;
        master_kill_all(m, SIGTERM);
    }
}

static void
master_log_exit(unsigned i, pid_t pid, int status, int expected)
{
    enum forkd_level lvl = expected ? FORKD_LOG_INFO : FORKD_LOG_WARN;

    if (WIFSIGNALED(status))
        log_msg(lvl, "worker %u (pid %d) killed by signal %d (%s)", i, (int)pid,
                WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        log_msg(lvl, "worker %u (pid %d) exited with status %d", i, (int)pid,
                WEXITSTATUS(status));
}

/* A worker died: count failures at boot, back off, or give up. */
static void
master_on_exit(struct master *m, unsigned i, pid_t pid, int status)
{
    int boot = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT;
    /* Only a worker that never finished init failed at boot: one killed
     * later, however soon, is replaced at once. */
    int early = m->sb[i].state == SB_BOOTING;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    master_log_exit(i, pid, status, m->stopping || (clean && i >= m->target));
    sb_reset(&m->board, i);
    if (m->stopping)
        return;
    if (boot && !m->ready) {
        master_fatal(m, "the handler could not start");
        return;
    }
    if (!boot && !early) {
        m->early_deaths = 0;
        return;
    }
    if (++m->early_deaths >= MASTER_MAX_EARLY_DEATHS) {
        master_fatal(m, "workers keep dying at boot");
        return;
    }
    uint64_t backoff = 100ull << (m->early_deaths < 6 ? m->early_deaths : 6);
    if (backoff > MASTER_BACKOFF_MAX_MS)
        backoff = MASTER_BACKOFF_MAX_MS;
    m->respawn_at_ms = sb_now_ms() + backoff;
    log_warn("worker %u died at boot (%u in a row): next start in %llu ms", i,
             m->early_deaths, (unsigned long long)backoff);
}

static void
master_reap(struct master *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++) {
            if (m->sb[i].pid == pid) {
                master_on_exit(m, i, pid, status);
                break;
            }
        }
    }
}

static void
master_stop(struct master *m, int sig)
{
    if (m->stopping == SIGTERM || m->stopping == sig)
        return; /* a quick stop is never made slower */
    m->stopping = sig;
    if (sig == SIGQUIT) {
        log_notice("graceful stop: waiting up to %us for requests in flight",
                   m->cfg->graceful_timeout_s);
        m->stop_deadline_ms =
            sb_now_ms() + m->cfg->graceful_timeout_s * 1000ull;
    } else {
        log_notice("stopping");
        m->stop_deadline_ms = sb_now_ms() + MASTER_QUICK_STOP_MS;
    }
    master_kill_all(m, sig);
}

static void
master_resize(struct master *m, int delta)
{
    if (delta > 0 && m->target < MASTER_MAX_WORKERS)
        m->target++;
    else if (delta < 0 && m->target > 1) {
        m->target--;
        if (m->sb[m->target].pid > 0)
            (void)kill(m->sb[m->target].pid, SIGQUIT);
    }
    log_notice("workers: %u", m->target);
}

static void
master_on_signal_event(struct master *m, int sig)
{
    switch (sig) {
    case SIGCHLD:
        break; /* reaped below in any case */
    case SIGTERM:
    case SIGINT:
        master_stop(m, SIGTERM);
        break;
    case SIGQUIT:
        master_stop(m, SIGQUIT);
        break;
    case SIGUSR1:
        if (log_reopen() < 0)
            log_error("reopening logs: %s", strerror(errno));
        master_kill_all(m, SIGUSR1);
        break;
    case SIGTTIN:
    case SIGTTOU:
        if (!m->stopping)
            master_resize(m, sig == SIGTTIN ? 1 : -1);
        break;
    default:
        /* XXX #5: HUP reload, USR2 upgrade and WINCH. */
        log_notice("signal %s is not handled yet: ignored", strsignal(sig));
        break;
    }
}

/* Invariant: a request never runs longer than timeout (DESIGN: the
 * scoreboard).  The worker stamps the start of each request in its slot;
 * a stuck handler cannot stop that check, only SIGKILL stops it. */
static void
master_timeouts(struct master *m)
{
    uint64_t now = sb_now_ms(), limit = m->cfg->timeout_s * 1000ull;

    if (limit == 0)
        return;
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct sb_slot *s = &m->sb[i];
        if (s->pid <= 0 || s->state == SB_STOPPING)
            continue;
        for (unsigned t = 0; t < m->board.n_threads; t++) {
            struct sb_thread *th = sb_thread(&m->board, i, t);
            uint64_t start = th->req_start_ms;
            if (start == 0 || now - start <= limit)
                continue;
            log_warn("worker %u (pid %d) killed: %.*s ran %llus > timeout "
                     "%us",
                     i, (int)s->pid, SB_REQUEST_MAX, th->request,
                     (unsigned long long)(now - start) / 1000,
                     m->cfg->timeout_s);
            (void)kill(s->pid, SIGKILL);
            s->state = SB_STOPPING; /* once */
            break;
        }
    }
}

static void
master_check_ready(struct master *m)
{
    if (m->ready || m->stopping)
        return;
    for (unsigned i = 0; i < m->target; i++)
        if (m->sb[i].pid == 0 || m->sb[i].state == SB_BOOTING)
            return;
    m->ready = 1;
    log_notice("ready: %u workers, app %s", m->target, m->app->path);
}

static int
master_wait_events(struct master *m)
{
    struct pollfd p = {.fd = master_pipe[0], .events = POLLIN};
    unsigned char sigs[64];
    int timeout = m->ready ? 500 : 20;
    ssize_t n;

    if (poll(&p, 1, timeout) < 0 && errno != EINTR)
        return -1;
    while ((n = read(master_pipe[0], sigs, sizeof(sigs))) > 0)
        for (ssize_t i = 0; i < n; i++)
            master_on_signal_event(m, sigs[i]);
    return 0;
}

static void
master_loop(struct master *m)
{
    for (;;) {
        if (master_wait_events(m) < 0) {
            master_fatal(m, "poll on the signal pipe failed");
        }
        master_reap(m);
        if (m->stopping && master_count(m) == 0)
            return;
        if (m->stopping && !m->killed && sb_now_ms() >= m->stop_deadline_ms) {
            log_warn("workers still running after the stop timeout: killing");
            master_kill_all(m, SIGKILL);
            m->killed = 1;
        }
        master_fill(m);
        master_timeouts(m);
        master_check_ready(m);
    }
}

int
master_run(const struct cfg *cfg, struct app *app, struct listener *ls,
           size_t n_ls)
{
    struct master *m = calloc(1, sizeof(*m));
    int status;

    if (m == NULL || master_signals() < 0 ||
        sb_open(&m->board, MASTER_MAX_WORKERS, cfg->threads) < 0 ||
        handoff_open(m->env.handoff) < 0) {
        log_error("cannot start the master: %s", strerror(errno));
        free(m);
        return 1;
    }
    m->cfg = cfg;
    m->app = app;
    m->sb = m->board.slots;
    m->env.cfg = cfg;
    m->env.app = app;
    m->env.ls = ls;
    m->env.n_ls = n_ls;
    m->env.board = &m->board; /* handoff[] was set by handoff_open */
    m->env.master = getpid();
    m->target = cfg->workers;
    for (size_t i = 0; i < n_ls; i++)
        log_notice("listening on %s", ls[i].name);
    master_loop(m);
    log_notice("stopped");
    status = m->exit_status;
    sb_close(&m->board);
    close(m->env.handoff[0]);
    close(m->env.handoff[1]);
    free(m);
    close(master_pipe[0]);
    close(master_pipe[1]);
    return status;
}
