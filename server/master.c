#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "daemon.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "scoreboard.h"
#include "spread.h"
#include "stats.h"
#include "title.h"
#include "tmpl.h"
#include "worker.h"

#define MASTER_MAX_WORKERS 1024
#define MASTER_QUICK_STOP_MS 5000
#define MASTER_MAX_EARLY_DEATHS 10
#define MASTER_BACKOFF_MAX_MS 5000
#define MASTER_IDLE_WAIT_MS 1000

/* A configuration and its handler, and the workers started with them.  A
 * reload makes a new generation; the old one's workers retire once the
 * new one's are all up. */
struct master_gen {
    struct cfg cfg;
    struct app app;
    struct worker_env env;
    struct tmpl tmpl; /* who forks its workers (tmpl.h) */
    unsigned id;
};

struct master {
    struct master_gen *cur;  /* what new workers run */
    struct master_gen *prev; /* during a reload: what the old ones run */
    const struct master_hooks *hooks;
    struct sb_slot *sb; /* MASTER_MAX_WORKERS slots, in board */
    struct sb board;
    /* Invariant: the master signals only its own children (DESIGN 8).
     * Workers can write the scoreboard, so its pids are for display:
     * these, set at fork and cleared when waitpid reaps, are the only
     * pids kill() is ever given. */
    pid_t pid[MASTER_MAX_WORKERS];               /* -1: asked of the template */
    unsigned char booted[MASTER_MAX_WORKERS];    /* seen past app init */
    unsigned char timed_out[MASTER_MAX_WORKERS]; /* SIGKILL sent once */
    unsigned gen_of[MASTER_MAX_WORKERS];
    unsigned char retiring[MASTER_MAX_WORKERS];
    int chan[MASTER_MAX_WORKERS]; /* the master's end of each log channel */
    int inbox[SPREAD_SLOTS][2];   /* each slot's, once opened (spread.h) */
    unsigned next_gen;
    unsigned target; /* workers wanted of the current generation */
    int ready;       /* the ready line was logged */
    int stopping;    /* 0, SIGTERM (quick) or SIGQUIT (graceful) */
    uint64_t stop_deadline_ms;
    int killed;               /* SIGKILL sent to what was left */
    unsigned early_deaths;    /* in a row */
    uint64_t respawn_at_ms;   /* backoff after early deaths */
    uint64_t timeout_wait_ms; /* until a running request may time out */
    pid_t successor;          /* the new master started by USR2 */
    int handed_over;          /* a successor took the sockets */
    int exit_status;
    struct stats stats;           /* the stats endpoint, if stats is set */
    struct stats_view view;       /* what it shows beyond the scoreboard */
    uint64_t stats_retry_ms;      /* after an upgrade: bind again then */
    struct stats_queue queue[64]; /* of each listener, sampled */
};

/* The self-pipe: signal handlers only write the signal number here. */
static int master_pipe[2] = {-1, -1};

static void
master_on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;

    /* A full pipe: the event is pending already. */
    daemon_write_best_effort(master_pipe[1], &b, 1);
    errno = saved;
}

static int
master_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT,  SIGQUIT,  SIGCHLD, SIGHUP,
                               SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU};
    struct sigaction sa = {.sa_handler = master_on_signal,
                           .sa_flags = SA_RESTART};

    sigset_t none;

    if (pipe2(master_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    signal(SIGPIPE, SIG_IGN);
    /* A master started by USR2 inherits the blocked mask of the fork. */
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
master_gen_free(struct master_gen *g)
{
    if (g == NULL)
        return;
    tmpl_stop(&g->tmpl); /* reaped as any stray child */
    app_close(&g->app);
    cfg_fini(&g->cfg);
    free(g);
}

/* Whether worker i got past app init.  Its scoreboard state says so, but
 * only as data: it decides nothing beyond this worker's own readiness. */
static int
master_is_booted(struct master *m, unsigned i)
{
    int state = m->sb[i].state;

    /* A worker that served max_requests at once may be STOPPING already. */
    if (!m->booted[i] && m->pid[i] > 0 &&
        (state == SB_IDLE || state == SB_STOPPING))
        m->booted[i] = 1;
    return m->booted[i];
}

/* Workers of the current generation that are not on their way out. */
static unsigned
master_count_current(struct master *m, int booted_only)
{
    unsigned n = 0;

    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->pid[i] != 0 && m->gen_of[i] == m->cur->id && !m->retiring[i] &&
            (!booted_only || master_is_booted(m, i)))
            n++;
    return n;
}

static int
master_count(struct master *m)
{
    int n = 0;

    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        n += m->pid[i] != 0;
    n += m->cur->tmpl.pid > 0;
    return n + (m->prev != NULL && m->prev->tmpl.pid > 0);
}

/* Signal the workers of generation gen (0: all). */
static void
master_kill(struct master *m, unsigned gen, int sig)
{
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->pid[i] > 0 && (gen == 0 || m->gen_of[i] == gen))
            (void)kill(m->pid[i], sig); /* not reaped yet: still ours */
    if (gen == 0 && m->cur->tmpl.pid > 0)
        (void)kill(m->cur->tmpl.pid, sig);
    if (gen == 0 && m->prev != NULL && m->prev->tmpl.pid > 0)
        (void)kill(m->prev->tmpl.pid, sig);
}

/* Ask worker i to finish its requests and leave; SIGUSR2 makes it hand
 * its waiting connections to the other workers instead of closing them. */
static void
master_retire(struct master *m, unsigned i, int give_away)
{
    m->retiring[i] = 1;
    (void)kill(m->pid[i], give_away ? SIGUSR2 : SIGQUIT);
    m->sb[i].knock = 1; /* after the kill: the signal is pending now */
}

/* In a child (worker or template): close what only the master uses. */
static void
master_close_own(void *arg)
{
    struct master *m = arg;

    close(master_pipe[0]);
    close(master_pipe[1]);
    for (unsigned j = 0; j < MASTER_MAX_WORKERS; j++)
        if (m->chan[j] >= 0)
            close(m->chan[j]);
    if (m->cur->tmpl.fd >= 0)
        close(m->cur->tmpl.fd);
    if (m->prev != NULL && m->prev->tmpl.fd >= 0)
        close(m->prev->tmpl.fd);
    stats_close(&m->stats, 0); /* the master's alone */
}

/* In the child: keep only this worker's end of its log channel. */
static void
master_child(struct master *m, unsigned i, int chan[2])
{
    master_close_own(m);
    close(chan[0]);
    worker_run(&m->cur->env, (int)i, chan[1], NULL, 0);
}

/* Slot i for a new worker of the current generation, with its log
 * channel in chan.  0 or -1. */
static int
master_prepare_slot(struct master *m, unsigned i, int chan[2])
{
    sb_reset(&m->board, i);
    m->gen_of[i] = m->cur->id;
    m->retiring[i] = 0;
    m->booted[i] = 0;
    m->timed_out[i] = 0;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   chan) < 0) {
        log_error("socketpair: %s", strerror(errno));
        return -1;
    }
    m->sb[i].state = SB_BOOTING;
    return 0;
}

/* Ask the template for worker i; its pid comes in a message later. */
static void
master_spawn_from_tmpl(struct master *m, unsigned i)
{
    int chan[2];

    if (master_prepare_slot(m, i, chan) < 0)
        return;
    if (tmpl_spawn(&m->cur->tmpl, i, chan[1]) < 0) {
        log_error("worker %u: cannot ask the template for it: %s", i,
                  strerror(errno));
        m->sb[i].state = SB_EMPTY;
        close(chan[0]);
        close(chan[1]);
        return;
    }
    close(chan[1]);
    m->chan[i] = chan[0];
    m->pid[i] = -1;
}

static void
master_spawn(struct master *m, unsigned i)
{
    sigset_t all, old;
    int chan[2];
    pid_t pid;

    if (m->cur->tmpl.mode == TMPL_USE) {
        master_spawn_from_tmpl(m, i);
        return;
    }
    if (master_prepare_slot(m, i, chan) < 0)
        return;
    /* Until the child has its own handlers, a signal sent to it (a TTOU
     * right after a TTIN, say) would run the master's and land in the
     * master's pipe: keep them blocked across fork; worker_run sets the
     * worker's mask. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    if ((pid = fork()) == 0)
        master_child(m, i, chan);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(chan[1]);
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        m->sb[i].state = SB_EMPTY;
        close(chan[0]);
        return;
    }
    m->chan[i] = chan[0];
    m->pid[i] = pid;
    m->sb[i].pid = pid;
    log_info("worker %u started (pid %d)", i, (int)pid);
}

/* Whether workers of the current generation can be started now: at once
 * without a template; once its template has preloaded, else (started
 * here if need be). */
static int
master_tmpl_ready(struct master *m)
{
    struct tmpl *t = &m->cur->tmpl;

    if (t->mode == TMPL_FORK)
        return 1;
    if (t->pid > 0)
        return t->mode == TMPL_USE && t->fd >= 0;
    /* Its workers are forked from it and must become the master's
     * children when their middle process exits. */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    t->mode = TMPL_ASK;
    if (tmpl_start(t, &m->cur->env, master_close_own, m) < 0) {
        log_error("cannot fork the template: %s", strerror(errno));
        return 0;
    }
    log_info("template started (pid %d)", (int)t->pid);
    return 0;
}

/* Open the inboxes of the slots the next n workers will take, before
 * they (or the template that forks them) are forked: a worker knows the
 * inboxes opened before it.  One that cannot be opened leaves its slot
 * out of the spread. */
static void
master_open_inboxes(struct master *m, unsigned n)
{
    for (unsigned i = 0; i < SPREAD_SLOTS && n > 0; i++) {
        if (m->pid[i] != 0)
            continue;
        n--;
        if (m->inbox[i][0] < 0 && spread_open(m->inbox[i]) < 0) {
            log_warn("worker %u: no inbox: %s", i, strerror(errno));
            m->inbox[i][0] = m->inbox[i][1] = -1;
        }
    }
}

/* Start the workers of the current generation that are missing. */
static void
master_fill(struct master *m)
{
    unsigned have;

    if (m->stopping || sb_now_ms() < m->respawn_at_ms)
        return;
    have = master_count_current(m, 0);
    if (have < m->target)
        master_open_inboxes(m, m->target - have);
    if (!master_tmpl_ready(m))
        return;
    for (unsigned i = 0; i < MASTER_MAX_WORKERS && have < m->target; i++) {
        if (m->pid[i] == 0) {
            master_spawn(m, i);
            have++;
        }
    }
}

static void
master_stop(struct master *m, int sig)
{
    if (m->stopping == SIGTERM || m->stopping == sig)
        return; /* a quick stop is never made slower */
    m->stopping = sig;
    tmpl_stop(&m->cur->tmpl); /* it serves no request */
    if (m->prev != NULL)
        tmpl_stop(&m->prev->tmpl);
    /* After a hand-over the service goes on in the new master: systemd
     * would stop the whole unit on this master's STOPPING=1. */
    if (m->successor <= 0)
        (void)daemon_notify("STOPPING=1");
    if (sig == SIGQUIT) {
        log_notice("graceful stop: waiting up to %us for requests in flight",
                   m->cur->cfg.graceful_timeout_s);
        m->stop_deadline_ms =
            sb_now_ms() + m->cur->cfg.graceful_timeout_s * 1000ull;
        /* After an upgrade the new master's workers take the waiting
         * connections; without one they are closed. */
        for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
            if (m->pid[i] > 0)
                master_retire(m, i, m->successor > 0);
        return;
    }
    log_notice("stopping");
    m->stop_deadline_ms = sb_now_ms() + MASTER_QUICK_STOP_MS;
    master_kill(m, 0, SIGTERM);
}

static void
master_fatal(struct master *m, const char *why)
{
    log_error("%s; stopping", why);
    m->exit_status = 1;
    master_stop(m, SIGTERM);
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

/* The new generation cannot start: stop its workers, keep the old one. */
static void
master_abort_reload(struct master *m)
{
    log_error("reload failed: the new handler did not start in a worker; "
              "the running one keeps serving");
    master_kill(m, m->cur->id, SIGTERM);
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->gen_of[i] == m->cur->id)
            m->retiring[i] = 1;
    master_gen_free(m->cur);
    m->cur = m->prev;
    m->prev = NULL;
    m->target = m->cur->cfg.workers;
    (void)daemon_notify("READY=1");
}

/* A worker that never finished init (or a template that never preloaded)
 * failed at boot: back off, give up. */
static void
master_on_boot_failure(struct master *m, const char *who, int boot)
{
    if (boot && !m->ready) {
        master_fatal(m, "the handler could not start");
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
    log_warn("%s died at boot (%u in a row): next start in %llu ms", who,
             m->early_deaths, (unsigned long long)backoff);
}

/* Slot i is empty again: what its worker served stays counted. */
static void
master_slot_free(struct master *m, unsigned i)
{
    for (unsigned t = 0; m->pid[i] > 0 && t < m->board.n_threads; t++)
        sb_add_counts(&m->view.dead, &sb_thread(&m->board, i, t)->counts);
    if (m->pid[i] > 0) {
        m->view.handoffs_given += m->sb[i].handoffs_given;
        m->view.handoffs_taken += m->sb[i].handoffs_taken;
        m->view.spread_given += m->sb[i].spread_given;
    }
    /* Sent to the inbox of a worker that has gone, or was going: another
     * worker takes them from the handoff queue.  The master only moves
     * the messages; it never looks at what they carry (DESIGN 8). */
    if (i < SPREAD_SLOTS && m->inbox[i][1] >= 0) {
        unsigned n = spread_rescue(m->inbox[i][1], m->cur->env.handoff[0]);
        if (n > 0)
            log_info("worker %u: %u connections in its inbox passed on", i, n);
    }
    sb_reset(&m->board, i);
    m->pid[i] = 0;
    if (m->chan[i] >= 0)
        close(m->chan[i]);
    m->chan[i] = -1;
    m->retiring[i] = 0;
}

static void
master_on_exit(struct master *m, unsigned i, pid_t pid, int status)
{
    int boot = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT;
    int early = !master_is_booted(m, i);
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int current = m->gen_of[i] == m->cur->id && !m->retiring[i];
    char who[32];

    master_log_exit(i, pid, status,
                    m->stopping || !current || (clean && !early));
    if (!m->stopping)
        m->view.restarts[m->timed_out[i]              ? STATS_TIMEOUT
                         : WIFSIGNALED(status)        ? STATS_CRASH
                         : !clean                     ? STATS_EXIT
                         : m->gen_of[i] != m->cur->id ? STATS_RELOAD
                                                      : STATS_RECYCLE]++;
    master_slot_free(m, i);
    if (m->stopping || !current)
        return;
    if (early && m->prev) {
        master_abort_reload(m);
        return;
    }
    snprintf(who, sizeof(who), "worker %u", i);
    if (early)
        master_on_boot_failure(m, who, boot);
    else
        m->early_deaths = 0;
}

/* Whether the template of g may say that worker slot i is pid: the slot
 * waits for it, and pid is a child of this master running as the
 * workers' user, and none of its others (DESIGN 8). */
static int
master_tmpl_pid_ok(struct master *m, struct master_gen *g, unsigned i,
                   pid_t pid)
{
    if (i >= MASTER_MAX_WORKERS || m->pid[i] != -1 || m->gen_of[i] != g->id)
        return 0;
    if (pid <= 0 || pid == m->successor || pid == m->cur->tmpl.pid ||
        (m->prev != NULL && pid == m->prev->tmpl.pid))
        return 0;
    for (unsigned j = 0; j < MASTER_MAX_WORKERS; j++)
        if (m->pid[j] == pid)
            return 0;
    return tmpl_owns(pid, g->env.creds.uid);
}

static void
master_on_tmpl_msg(struct master *m, struct master_gen *g,
                   const struct tmpl_msg *msg)
{
    unsigned i = msg->slot;
    char who[32];

    if (msg->what == TMPL_READY && g->tmpl.mode == TMPL_ASK) {
        g->tmpl.mode = TMPL_USE;
    } else if (msg->what == TMPL_NO_PRELOAD && g->tmpl.mode == TMPL_ASK) {
        g->tmpl.mode = TMPL_FORK; /* it exits; the master forks workers */
    } else if (msg->what == TMPL_SPAWNED &&
               master_tmpl_pid_ok(m, g, i, msg->pid)) {
        static const int none[2] = {-1, -1};
        m->pid[i] = msg->pid;
        m->sb[i].pid = msg->pid;
        /* The worker waits for this word before it serves (worker_run). */
        if (handoff_send_fds(m->chan[i], none, 2) < 0)
            log_warn("worker %u (pid %d): cannot tell it to start: %s", i,
                     (int)msg->pid, strerror(errno));
        log_info("worker %u started (pid %d) from the template", i,
                 (int)msg->pid);
        if (m->stopping)
            master_retire(m, i, 0);
    } else if (msg->what == TMPL_SPAWN_FAILED && i < MASTER_MAX_WORKERS &&
               m->pid[i] == -1 && m->gen_of[i] == g->id) {
        log_error("worker %u: the template could not fork it: %s", i,
                  strerror(msg->err));
        master_slot_free(m, i);
        snprintf(who, sizeof(who), "worker %u", i);
        master_on_boot_failure(m, who, 0);
    } else {
        log_error("template (pid %d) sent a message that is not an answer "
                  "to the master (%u for worker %u, pid %d): stopping it",
                  (int)g->tmpl.pid, msg->what, i, (int)msg->pid);
        tmpl_stop(&g->tmpl);
        /* The next one will likely do the same: not at once, nor for ever. */
        master_on_boot_failure(m, "the template", 0);
    }
}

static void
master_tmpl_read(struct master *m, struct master_gen *g)
{
    struct tmpl_msg msg;

    if (g == NULL)
        return;
    while (g->tmpl.fd >= 0 && tmpl_recv(&g->tmpl, &msg) > 0)
        master_on_tmpl_msg(m, g, &msg);
}

/* The template of a generation exited: its workers keep serving; a new
 * one is started when a worker is next needed. */
static int
master_on_tmpl_exit(struct master *m, pid_t pid, int status)
{
    struct master_gen *g = pid == m->cur->tmpl.pid ? m->cur
                           : m->prev != NULL && pid == m->prev->tmpl.pid
                               ? m->prev
                               : NULL;
    enum tmpl_mode mode;

    if (g == NULL)
        return 0;
    mode = g->tmpl.mode;
    /* Reaped: its pid is no longer ours to signal (DESIGN 8), only its
     * socket is left to close. */
    g->tmpl.pid = 0;
    tmpl_stop(&g->tmpl);
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->pid[i] == -1 && m->gen_of[i] == g->id)
            master_slot_free(m, i);
    if (mode == TMPL_FORK || m->stopping || g != m->cur) {
        log_info("template (pid %d) exited", (int)pid);
        return 1;
    }
    if (WIFSIGNALED(status))
        log_warn("template (pid %d) killed by signal %d (%s)", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        log_warn("template (pid %d) exited with status %d", (int)pid,
                 WEXITSTATUS(status));
    g->tmpl.mode = TMPL_ASK;
    if (mode == TMPL_USE) /* its workers serve on; the next needs a new one */
        log_notice("a new template starts when a worker is next needed");
    else if (m->prev != NULL)
        master_abort_reload(m);
    else
        master_on_boot_failure(m, "the template",
                               WIFEXITED(status) &&
                                   WEXITSTATUS(status) == WORKER_EXIT_BOOT);
    return 1;
}

/* The new master started by USR2 died before taking over. */
static void
master_on_successor_exit(struct master *m, int status)
{
    const char *pidfile = m->cur->cfg.pidfile;
    char old[4096];

    log_error("upgrade failed: the new master (pid %d) exited with status "
              "%d; this one keeps serving",
              (int)m->successor,
              WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    m->successor = 0;
    if (pidfile[0]) {
        snprintf(old, sizeof(old), "%s.oldbin", pidfile);
        if (rename(old, pidfile) < 0)
            log_warn("pidfile: cannot restore %s: %s", pidfile,
                     strerror(errno));
    }
}

static void
master_reap(struct master *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == m->successor) {
            master_on_successor_exit(m, status);
            continue;
        }
        if (master_on_tmpl_exit(m, pid, status))
            continue;
        for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++) {
            if (m->pid[i] == pid) {
                master_on_exit(m, i, pid, status);
                break;
            }
        }
    }
}

/* Keys a reload cannot change in a running master: they keep their value
 * and the operator is told to restart or upgrade (USR2). */
static void
master_keep_fixed(struct master *m, struct cfg *n)
{
    const struct cfg *o = &m->cur->cfg;
    int binds = n->n_binds != o->n_binds;

    for (size_t i = 0; !binds && i < n->n_binds; i++)
        binds = strcmp(n->binds[i], o->binds[i]) != 0;
    if (binds)
        log_warn("reload: bind changed: the sockets stay as they are until "
                 "a restart or an upgrade (USR2)");
    if (n->threads > m->board.n_threads) {
        log_warn("reload: threads = %u is more than at start-up (%zu): "
                 "keeping %u",
                 n->threads, m->board.n_threads, o->threads);
        n->threads = o->threads;
    }
    if (strcmp(n->user, o->user) || strcmp(n->group, o->group) ||
        strcmp(n->pidfile, o->pidfile) || n->daemon != o->daemon)
        log_warn("reload: user, group, pidfile and daemon take effect at "
                 "the next start only");
}

static void
master_reload(struct master *m)
{
    struct master_gen *g;
    char err[CFG_ERR_MAX > APP_ERR_MAX ? CFG_ERR_MAX : APP_ERR_MAX] =
        "out of memory";

    if (m->prev || m->stopping) {
        log_warn("reload: %s; HUP ignored",
                 m->prev ? "a reload is already under way" : "stopping");
        return;
    }
    log_notice("reload: reading the configuration again");
    (void)daemon_notify("RELOADING=1");
    if ((g = calloc(1, sizeof(*g))) == NULL ||
        m->hooks->configure(&g->cfg, err, m->hooks->arg) < 0) {
        log_error("reload failed: %s; the running configuration stays",
                  g ? err : "out of memory");
        free(g);
        (void)daemon_notify("READY=1");
        return;
    }
    master_keep_fixed(m, &g->cfg);
    unsigned long hard;
    if (daemon_raise_nofile(cfg_nofile_need(&g->cfg), &hard) < 0) {
        log_error("reload failed: max_connections = %u needs more open "
                  "files than the hard limit (%lu); the running "
                  "configuration stays",
                  g->cfg.max_connections, hard);
        cfg_fini(&g->cfg);
        free(g);
        (void)daemon_notify("READY=1");
        return;
    }
    struct master_app_info info;
    if (master_check_app(&g->cfg, 0, &info, err) < 0 ||
        app_set_path(&g->app, g->cfg.app_path) < 0) {
        log_error("reload failed: %s: %s; the running handler stays",
                  g->cfg.app_path, err);
        app_close(&g->app);
        cfg_fini(&g->cfg);
        free(g);
        (void)daemon_notify("READY=1");
        return;
    }
    if (log_open(g->cfg.error_log, g->cfg.access_log, g->cfg.log_level) < 0)
        log_error("reload: cannot open the new logs (%s): keeping the old ones",
                  strerror(errno));
    g->tmpl = (struct tmpl){info.has_preload ? TMPL_ASK : TMPL_FORK, 0, -1};
    g->env = m->cur->env;
    g->env.cfg = &g->cfg;
    g->env.app = &g->app;
    g->id = g->env.gen = ++m->next_gen;
    m->prev = m->cur;
    m->cur = g;
    m->target = g->cfg.workers;
    m->early_deaths = 0;
    m->respawn_at_ms = 0;
    log_notice("reload: starting %u workers with %s", m->target,
               g->cfg.app_path);
}

/* The new generation is up: retire the old one. */
static void
master_finish_reload(struct master *m)
{
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->pid[i] > 0 && m->gen_of[i] != m->cur->id && !m->retiring[i])
            master_retire(m, i, 1);
    master_gen_free(m->prev);
    m->prev = NULL;
    log_notice("reload done: %u workers, app %s", m->target, m->cur->app.path);
    (void)daemon_notify("READY=1");
}

/* USR2: start the binary again (argv[0], perhaps replaced on disk since)
 * with the listening sockets and the handoff pair inherited.  Both
 * masters serve until the operator sends QUIT to one of them. */
static void
master_upgrade(struct master *m)
{
    const struct worker_env *e = &m->cur->env;
    const char *pidfile = m->cur->cfg.pidfile;
    char fds[4096] = "", hand[64], old[4096];
    size_t len = 0;
    pid_t pid;

    if (m->successor || m->stopping) {
        log_warn("upgrade: %s; USR2 ignored",
                 m->successor ? "a new master is already running" : "stopping");
        return;
    }
    for (size_t i = 0; i < e->n_ls && len < sizeof(fds) - 16; i++)
        len += (size_t)snprintf(fds + len, sizeof(fds) - len, "%s%d",
                                i ? "," : "", e->ls[i].fd);
    snprintf(hand, sizeof(hand), "%d,%d", e->handoff[0], e->handoff[1]);
    snprintf(old, sizeof(old), "%s.oldbin", pidfile);
    if (pidfile[0] && rename(pidfile, old) < 0)
        log_warn("upgrade: cannot rename %s: %s", pidfile, strerror(errno));
    sigset_t all, oldmask;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &oldmask);
    if ((pid = fork()) == 0) {
        close(master_pipe[0]);
        close(master_pipe[1]);
        for (size_t i = 0; i < e->n_ls; i++)
            (void)fcntl(e->ls[i].fd, F_SETFD, 0);
        (void)fcntl(e->handoff[0], F_SETFD, 0);
        (void)fcntl(e->handoff[1], F_SETFD, 0);
        setenv("FORKD_INHERIT", fds, 1);
        setenv("FORKD_HANDOFF", hand, 1);
        if (m->hooks->inherit_all)
            setenv("FORKD_INHERIT_ALL", "1", 1); /* systemd's sockets */
        execvp(m->hooks->argv[0], m->hooks->argv);
        log_error("upgrade: cannot run %s: %s", m->hooks->argv[0],
                  strerror(errno));
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    if (pid < 0) {
        log_error("upgrade: fork: %s", strerror(errno));
        if (pidfile[0])
            (void)rename(old, pidfile);
        return;
    }
    m->successor = pid;
    m->handed_over = 1;
    log_notice("upgrade: started %s as pid %d; send QUIT to this master "
               "(pid %d) once it serves",
               m->hooks->argv[0], (int)pid, (int)getpid());
}

/* TTIN/TTOU: one worker more or less; WINCH: none (HUP brings them back). */
static void
master_resize(struct master *m, int target)
{
    if (target < 0 || target > MASTER_MAX_WORKERS)
        return;
    m->target = (unsigned)target;
    for (unsigned i = MASTER_MAX_WORKERS;
         i-- > 0 && master_count_current(m, 0) > m->target;)
        if (m->pid[i] > 0 && m->gen_of[i] == m->cur->id && !m->retiring[i])
            master_retire(m, i, m->target > 0);
    log_notice("workers: %u", m->target);
}

/* USR1 (logrotate): reopen the logs here, then hand the files to every
 * worker, which puts them in place of its own: workers that dropped
 * privileges could not open them in a directory only root may enter. */
static void
master_reopen_logs(struct master *m)
{
    int fds[2];

    if (log_reopen() < 0)
        log_error("reopening logs: %s", strerror(errno));
    log_files(&fds[0], &fds[1]);
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++) {
        if (m->pid[i] <= 0)
            continue;
        if (m->chan[i] >= 0 && handoff_send_fds(m->chan[i], fds, 2) < 0)
            log_warn("worker %u (pid %d): cannot pass the reopened logs: %s", i,
                     (int)m->pid[i], strerror(errno));
        (void)kill(m->pid[i], SIGUSR1);
        m->sb[i].knock = 1;
    }
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
    case SIGHUP:
        master_reload(m);
        break;
    case SIGUSR2:
        master_upgrade(m);
        break;
    case SIGUSR1:
        master_reopen_logs(m);
        break;
    case SIGTTIN:
    case SIGTTOU:
    case SIGWINCH:
        if (!m->stopping && !m->prev)
            master_resize(m, sig == SIGWINCH  ? 0
                             : sig == SIGTTIN ? (int)m->target + 1
                             : m->target > 1  ? (int)m->target - 1
                                              : 1);
        break;
    default:
        break;
    }
}

/* The request a thread's entry shows, made printable: the worker wrote
 * it and may have written anything. */
static void
master_request_text(const struct sb_thread *th, char out[SB_REQUEST_MAX])
{
    size_t i;

    for (i = 0; i < SB_REQUEST_MAX - 1 && th->request[i]; i++) {
        unsigned char c = (unsigned char)th->request[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[i] = '\0';
}

/* Invariant: a request never runs longer than timeout (DESIGN: the
 * scoreboard).  The worker stamps the start of each request in its
 * thread's entry; a stuck handler cannot stop that check, only SIGKILL
 * stops it.  What the entry says can at worst get this worker killed:
 * the pid killed is the master's own record of the child in that slot. */
static void
master_timeouts(struct master *m)
{
    uint64_t now = sb_now_ms(), limit = m->cur->cfg.timeout_s * 1000ull;
    char request[SB_REQUEST_MAX];

    /* A request that starts later cannot time out within a second. */
    m->timeout_wait_ms = MASTER_IDLE_WAIT_MS;
    if (limit == 0)
        return;
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++) {
        if (m->pid[i] <= 0 || m->timed_out[i] || m->sb[i].state == SB_STOPPING)
            continue;
        for (unsigned t = 0; t < m->board.n_threads; t++) {
            const struct sb_thread *th = sb_thread(&m->board, i, t);
            uint64_t start = th->req_start_ms;
            if (start == 0 || start > now)
                continue;
            if (now - start <= limit) {
                if (start + limit + 1 - now < m->timeout_wait_ms)
                    m->timeout_wait_ms = start + limit + 1 - now;
                continue;
            }
            master_request_text(th, request);
            log_warn("worker %u (pid %d) killed: %s ran %llus > timeout %us", i,
                     (int)m->pid[i], request,
                     (unsigned long long)(now - start) / 1000,
                     m->cur->cfg.timeout_s);
            (void)kill(m->pid[i], SIGKILL);
            m->timed_out[i] = 1;
            break;
        }
    }
}

static void
master_check_ready(struct master *m)
{
    char state[64];

    if (m->stopping || master_count_current(m, 1) < m->target)
        return;
    if (m->prev) {
        master_finish_reload(m);
        return;
    }
    if (m->ready)
        return;
    m->ready = 1;
    log_notice("ready: %u workers, app %s", m->target, m->cur->app.path);
    snprintf(state, sizeof(state), "READY=1\nMAINPID=%d", (int)getpid());
    (void)daemon_notify(state);
    daemon_ready(1);
}

/* The stats endpoint's part of the loop: (re)open it, sample the listen
 * queues for their peak, serve its clients. */
static void
master_stats(struct master *m)
{
    const char *addr = m->cur->cfg.stats;
    uint64_t now = sb_now_ms();

    if (addr[0] == '\0')
        return;
    if (m->stats.fd < 0 && now >= m->stats_retry_ms) {
        /* After USR2 the old master may hold it a while yet. */
        if (stats_open(&m->stats, addr) == 0)
            log_notice("stats on %s", addr);
        m->stats_retry_ms = now + 1000;
    }
    m->view.board = &m->board;
    m->view.pid = m->pid;
    m->view.n_slots = MASTER_MAX_WORKERS;
    m->view.generation = m->cur->id;
    m->view.target = m->target;
    m->view.ls = m->cur->env.ls;
    m->view.n_ls = m->cur->env.n_ls < 64 ? m->cur->env.n_ls : 64;
    m->view.queue = m->queue;
    stats_sample(&m->view);
    stats_serve(&m->stats, &m->view, now);
}

/* How long the loop may sleep: with nothing to do but wait for requests
 * to time out, until the first could (at most a second: an idle master
 * wakes once a second); while starting, reloading or stopping, 20 ms. */
static int
master_wait_ms(const struct master *m)
{
    uint64_t now = sb_now_ms(), wait = m->timeout_wait_ms;

    if (!m->ready || m->prev || m->stopping)
        return 20;
    if (m->respawn_at_ms > now && m->respawn_at_ms - now < wait)
        wait = m->respawn_at_ms - now;
    return wait > 0 ? (int)wait : 1; /* timeout_wait_ms <= 1000 */
}

static int
master_wait_events(struct master *m)
{
    struct pollfd p[3 + 1 + STATS_CLIENTS] = {
        {.fd = master_pipe[0], .events = POLLIN},
        {.fd = m->cur->tmpl.fd, .events = POLLIN},
        {.fd = m->prev ? m->prev->tmpl.fd : -1, .events = POLLIN}};
    unsigned char sigs[64];
    int timeout = master_wait_ms(m);
    size_t n_p = 3 + stats_pollfds(&m->stats, p + 3);
    ssize_t n;

    if (poll(p, n_p, timeout) < 0 && errno != EINTR)
        return -1;
    master_tmpl_read(m, m->cur);
    master_tmpl_read(m, m->prev);
    master_stats(m);
    while ((n = read(master_pipe[0], sigs, sizeof(sigs))) > 0)
        for (ssize_t i = 0; i < n; i++)
            master_on_signal_event(m, sigs[i]);
    return 0;
}

static void
master_loop(struct master *m)
{
    for (;;) {
        if (master_wait_events(m) < 0)
            master_fatal(m, "poll on the signal pipe failed");
        master_reap(m);
        if (m->stopping && master_count(m) == 0)
            return;
        if (m->stopping && !m->killed && sb_now_ms() >= m->stop_deadline_ms) {
            log_warn("workers still running after the stop timeout: killing");
            master_kill(m, 0, SIGKILL);
            m->killed = 1;
        }
        master_fill(m);
        master_timeouts(m);
        master_check_ready(m);
    }
}

static int
master_init(struct master *m, struct cfg *cfg, struct app *app,
            const struct master_app_info *info, struct listener *ls,
            size_t n_ls, const struct master_hooks *h)
{
    if ((m->cur = calloc(1, sizeof(*m->cur))) == NULL || master_signals() < 0 ||
        sb_open(&m->board, MASTER_MAX_WORKERS, cfg->threads) < 0)
        return -1;
    if (h->handoff[0] >= 0) {
        m->cur->env.handoff[0] = h->handoff[0];
        m->cur->env.handoff[1] = h->handoff[1];
    } else if (handoff_open(m->cur->env.handoff) < 0) {
        return -1;
    }
    m->cur->cfg = *cfg; /* moved */
    m->cur->app = *app;
    m->cur->tmpl =
        (struct tmpl){info->has_preload ? TMPL_ASK : TMPL_FORK, 0, -1};
    m->cur->id = m->next_gen = m->cur->env.gen = 1;
    m->hooks = h;
    m->sb = m->board.slots;
    m->cur->env.cfg = &m->cur->cfg;
    m->cur->env.app = &m->cur->app;
    m->cur->env.ls = ls;
    m->cur->env.n_ls = n_ls;
    m->cur->env.board = &m->board;
    m->cur->env.master = getpid();
    /* Once, here: workers only switch (user changes need a restart). */
    char err[DAEMON_ERR_MAX];
    if (daemon_creds(daemon_worker_user(cfg->user), cfg->group,
                     &m->cur->env.creds, err) < 0) {
        log_error("%s", err);
        errno = EINVAL;
        return -1;
    }
    m->target = cfg->workers;
    for (unsigned i = 0; i < MASTER_MAX_WORKERS; i++)
        m->chan[i] = -1;
    for (unsigned i = 0; i < SPREAD_SLOTS; i++)
        m->inbox[i][0] = m->inbox[i][1] = -1;
    m->cur->env.inbox = m->inbox;
    m->cur->env.n_inbox = SPREAD_SLOTS;
    m->view.start_s = (uint64_t)time(NULL);
    stats_init(&m->stats);
    /* Bound like the listeners, as root: a first start that cannot
     * stops; an upgraded master binds it once the old one lets go. */
    if (cfg->stats[0] && stats_open(&m->stats, cfg->stats) < 0 &&
        h->handoff[0] < 0) {
        log_error("stats = %s: cannot listen: %s", cfg->stats, strerror(errno));
        errno = EINVAL;
        return -1;
    }
    if (m->stats.fd >= 0)
        log_notice("stats on %s", cfg->stats);
    return 0;
}

/* What the check child writes to the master, in one write. */
struct master_check_result {
    int ok;
    struct master_app_info info;
    char err[APP_ERR_MAX];
};

/* The child of master_check_app: become the workers' user, load, report
 * through fd. */
static void
master_check_child(const struct cfg *cfg, int run_init, int fd)
{
    struct master_check_result r = {0};
    struct daemon_creds creds = {.uid = (uid_t)-1, .gid = (gid_t)-1};
    char err[DAEMON_ERR_MAX > APP_ERR_MAX ? DAEMON_ERR_MAX : APP_ERR_MAX];
    struct app app;
    const char *user = daemon_worker_user(cfg->user); /* while root */

    title_set("check %s", cfg->app_path);
    if (daemon_creds(user, cfg->group, &creds, err) < 0 ||
        ((creds.uid != (uid_t)-1 || creds.gid != (gid_t)-1) &&
         daemon_drop(&creds, err) < 0)) {
        snprintf(r.err, sizeof(r.err), "%s", err);
    } else if (app_open(&app, cfg->app_path, cfg->threads, err) == 0) {
        r.ok = 1;
        r.info.api_version = app.desc->api_version;
        r.info.flags = app.desc->flags;
        r.info.has_preload = app_has_preload(&app);
        /* What a start runs: preload (in the template), then init with
         * what preload left, here in one process. */
        if (run_init && app_preload(&app, cfg) < 0) {
            r.ok = 0; /* the handler logged why */
            snprintf(r.err, sizeof(r.err),
                     "preload failed with these [app] options");
        } else if (run_init && app_init(&app, cfg) < 0) {
            r.ok = 0;
            snprintf(r.err, sizeof(r.err),
                     "init failed with these [app] options");
        }
        app_fini(&app);
    } else if (creds.uid != (uid_t)-1) {
        /* Workers load it as their user: say so, a file only root can
         * read is the common case. */
        size_t k =
            (size_t)snprintf(r.err, sizeof(r.err), "as user %.64s: ", user);
        memcpy(r.err + k, err, strnlen(err, sizeof(r.err) - k - 1));
    } else {
        snprintf(r.err, sizeof(r.err), "%s", err);
    }
    daemon_write_best_effort(fd, &r, sizeof(r)); /* a pipe takes it at once */
    _exit(0);
}

int
master_check_app(const struct cfg *cfg, int run_init,
                 struct master_app_info *info, char err[APP_ERR_MAX])
{
    struct master_check_result r = {0};
    int p[2], status = 0;
    pid_t pid;
    ssize_t n;

    if (pipe2(p, O_CLOEXEC) < 0)
        goto fail;
    if ((pid = fork()) == 0) {
        close(p[0]);
        master_check_child(cfg, run_init, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        goto fail;
    }
    do
        n = read(p[0], &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(r)) {
        if (WIFSIGNALED(status))
            snprintf(err, APP_ERR_MAX, "loading it killed the process: %s",
                     strsignal(WTERMSIG(status)));
        else
            snprintf(err, APP_ERR_MAX,
                     "loading it ended the process "
                     "(status %d) before it was checked",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    r.err[sizeof(r.err) - 1] = '\0';
    if (!r.ok) {
        snprintf(err, APP_ERR_MAX, "%s", r.err);
        return -1;
    }
    *info = r.info;
    return 0;
fail:
    snprintf(err, APP_ERR_MAX, "cannot check it: %s", strerror(errno));
    return -1;
}

static void
master_log_user(const struct cfg *c)
{
    const char *user = daemon_worker_user(c->user);

    if (geteuid() != 0)
        return;
    if (c->user[0] == '\0')
        log_notice("workers run as %s (user = root keeps them root)", user);
    else if (strcmp(user, "root") == 0 || strcmp(user, "0") == 0)
        log_notice("workers run as root: user = %s says so", user);
}

int
master_run(struct cfg *cfg, struct app *app, const struct master_app_info *info,
           struct listener *ls, size_t n_ls, const struct master_hooks *hooks,
           int *keep_sockets)
{
    struct master *m = calloc(1, sizeof(*m));
    int status;

    if (m == NULL || master_init(m, cfg, app, info, ls, n_ls, hooks) < 0) {
        log_error("cannot start the master: %s", strerror(errno));
        daemon_ready(0);
        free(m ? m->cur : NULL);
        free(m);
        return 1;
    }
    title_set("master %s", title_args());
    for (size_t i = 0; i < n_ls; i++)
        log_notice("listening on %s", ls[i].name);
    master_log_user(&m->cur->cfg);
    master_loop(m);
    log_notice("stopped");
    daemon_ready(0); /* no-op once ready was sent */
    status = m->exit_status;
    *keep_sockets = m->handed_over && m->successor > 0;
    stats_close(&m->stats, !*keep_sockets);
    sb_close(&m->board);
    close(m->cur->env.handoff[0]);
    close(m->cur->env.handoff[1]);
    for (unsigned i = 0; i < SPREAD_SLOTS; i++)
        for (int e = 0; e < 2; e++)
            if (m->inbox[i][e] >= 0)
                close(m->inbox[i][e]);
    master_gen_free(m->prev);
    master_gen_free(m->cur);
    free(m);
    close(master_pipe[0]);
    close(master_pipe[1]);
    return status;
}
