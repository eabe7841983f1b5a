#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "app.h"
#include "cfg.h"
#include "conn.h"
#include "daemon.h"
#include "environ.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "pool.h"
#include "req.h"
#include "scoreboard.h"
#include "spread.h"
#include "title.h"

#define WORKER_EVENTS 64
#define WORKER_BODY_SPACE 16384 /* buffer room after a full head */
#define WORKER_DRAIN_MAX 65536  /* unread body bytes drained for keep-alive */
#define WORKER_DRAIN_MS 5000    /* ... within this time in all, else closed */
#define WORKER_ARENA 16384
#define WORKER_LOG_FLUSH_MS 100
#define WORKER_LINGER_MS 2000 /* input discarded after an error, at most */
#define WORKER_WATCH_MS 5     /* the watchdog's period */
/* Periods without a request before the watchdog sleeps until one starts:
 * an idle worker wakes once a second (its epoll timeout), not 200 times. */
#define WORKER_WATCH_QUIET (1000 / WORKER_WATCH_MS)
#define WORKER_HANDOFF_MS 5 /* busy longer: waiting requests go elsewhere */
#define WORKER_HANDOFF_CPU_MS 50 /* the same for a handler using the CPU */
#define WORKER_WATCH_STACK 65536
#define WORKER_ACCEPT_PAUSE_MS 100 /* no accepts after EMFILE and the like */
#define WORKER_ACCEPT_LOG_MS 5000  /* one line per this about them */

/* epoll keys of the worker's own descriptors; connections use pool keys,
 * which never have the top bit. */
#define WORKER_KEY_OWN (1ull << 63)
#define WORKER_KEY_HANDOFF (WORKER_KEY_OWN | 0x10000)
#define WORKER_KEY_STOP (WORKER_KEY_OWN | 0x20000)
#define WORKER_KEY_SIGNAL (WORKER_KEY_OWN | 0x30000)
#define WORKER_KEY_INBOX (WORKER_KEY_OWN | 0x40000)

struct worker;

/* One handler slot: a thread (the process's main thread for the first)
 * with its own request, arena and scoreboard entry. */
struct worker_thread {
    struct worker *w;
    unsigned index;
    pthread_t thread;
    int started;
    int tid;
    struct forkd_req req;
    struct sb_thread *sb;
    _Atomic uint64_t busy_since_ms; /* 0 when not in a handler */
    atomic_int stat_fd;             /* /proc/self/task/TID/stat, or -1 */
    uint64_t log_since_ms;          /* first unflushed access line, or 0 */
    int refused; /* the last request was answered by the server itself */
};

/* Invariant: one handler call at a time per thread, W x T in all (DESIGN
 * 1).  A thread runs a handler only from worker_serve, and serves one
 * connection at a time.
 *
 * Locking: every thread holds lock while it touches the pool, the lists
 * or the listen queue, and releases it only in epoll_wait and while it
 * serves a request (the connection is then ACTIVE: in no list and, in
 * threads mode, disarmed in epoll, so nobody else can reach it). */
struct worker {
    const struct cfg *cfg;
    struct app *app;
    struct listener *ls;
    size_t n_ls;
    int handoff_tx, handoff_rx;
    const int (*inbox)[2]; /* every slot's inbox (spread.h) */
    size_t n_inbox;
    int inbox_rx;        /* this worker's own, or -1 */
    uint64_t inbox_seen; /* its slot's inbox_sent when last emptied */
    int log_chan;        /* the master passes reopened log files here (USR1) */
    uint32_t excl;       /* EPOLLEXCLUSIVE where it helps, else 0 */
    uint64_t accept_resume_ms; /* accepts paused until then, or 0 */
    uint64_t accept_log_ms;    /* the last line about failing accepts */
    unsigned accept_fails;     /* since that line */
    int stop_fd; /* eventfd, written once to wake every thread at stop */
    int sig_fd;  /* signalfd: QUIT, USR1 and USR2 as events */
    struct sb_slot *slot;
    const struct sb *board;
    size_t index; /* of slot in board */
    int ep;
    struct pool pool;
    struct http_limits limits;
    uint64_t now_ms;
    int stopping;
    int finishing; /* stopping, with requests received still to serve */
    int pid;
    unsigned n_threads;
    unsigned max_requests; /* with its jitter; 0: no limit */
    struct worker_thread *threads;
    pthread_mutex_t lock;
    pthread_t watchdog;
    int has_watchdog;
    atomic_bool watchdog_stop;
    atomic_int watch_asleep; /* futex word: 1 while the watchdog waits for
                                a request to start */
};

static volatile sig_atomic_t worker_quit;
static volatile sig_atomic_t worker_retire; /* quit, giving connections away */
static volatile sig_atomic_t worker_reopen;

static void
worker_on_signal(int sig)
{
    if (sig == SIGQUIT)
        worker_quit = 1;
    else if (sig == SIGUSR2)
        worker_retire = worker_quit = 1;
    else if (sig == SIGUSR1)
        worker_reopen = 1;
}

/* The signals the master sends a worker to ask, not to kill: QUIT, USR1
 * and USR2 stay blocked in every thread, so that they never interrupt a
 * handler's own system calls, and arrive as events of a signalfd in the
 * epoll set.  Not epoll_pwait with them unblocked: it delivers a signal
 * only when it would block, so a worker that always has a ready
 * connection never saw QUIT and was killed at graceful_timeout. */
static void
worker_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

/* After fork: the master's handlers and mask must not leak into the
 * worker.  TERM/INT keep their default (die at once: the quick stop).  The
 * handler stays for QUIT, USR1 and USR2 in case a handler unblocks them:
 * their default would kill the worker. */
static void
worker_signals(void)
{
    struct sigaction sa = {.sa_handler = worker_on_signal,
                           .sa_flags = SA_RESTART};
    static const int dfl[] = {SIGTERM, SIGINT, SIGCHLD, SIGALRM};
    static const int ign[] = {SIGPIPE, SIGHUP, SIGWINCH, SIGTTIN, SIGTTOU};
    sigset_t blocked;

    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        signal(dfl[i], SIG_DFL);
    for (size_t i = 0; i < sizeof(ign) / sizeof(ign[0]); i++)
        signal(ign[i], SIG_IGN);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    worker_signal_set(&blocked);
    sigprocmask(SIG_SETMASK, &blocked, NULL);
}

static int
worker_signal_fd(void)
{
    sigset_t set;

    worker_signal_set(&set);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Wake the watchdog from its wait for a request (worker_watch_idle): one
 * system call after each quiet second, none while requests keep coming. */
static void
worker_watch_wake(struct worker *w)
{
    if (atomic_exchange(&w->watch_asleep, 0))
        syscall(SYS_futex, &w->watch_asleep, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
                0);
}

/* Whatever signals the signalfd holds, as the handler would have seen
 * them; the loop acts on the flags. */
static void
worker_read_signals(struct worker *w)
{
    struct signalfd_siginfo si;

    while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        worker_on_signal((int)si.ssi_signo);
}

static uint64_t
worker_clock_us(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* --- connections --------------------------------------------------------- */

static void
worker_close(struct worker *w, struct conn *c)
{
    pool_close(&w->pool, c);
    w->slot->conns = (unsigned)w->pool.used; /* for the spread */
}

/* Wait on c in state; its deadline follows from the state. */
static void
worker_park(struct worker *w, struct conn *c, enum conn_state state)
{
    uint64_t ms = state == CONN_IDLE       ? w->cfg->keepalive_s * 1000ull
                  : state == CONN_CLOSING  ? WORKER_LINGER_MS
                  : state == CONN_DRAINING ? WORKER_DRAIN_MS
                  : state == CONN_SENDING  ? w->cfg->send_timeout_s * 1000ull
                                           : w->cfg->header_timeout_s * 1000ull;

    if (pool_park(&w->pool, c, state, w->now_ms + ms) < 0)
        worker_close(w, c);
}

/* Close c after an answer that left client bytes unread.  A plain close
 * would send RST, which can destroy the answer in the client's receive
 * buffer before it is read: shut down our side, keep discarding input in
 * the poller until the client closes or WORKER_LINGER_MS (as nginx's
 * lingering close).  It never holds a handler thread. */
static void
worker_linger(struct worker *w, struct conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0)
        worker_close(w, c);
    else
        worker_park(w, c, CONN_CLOSING);
}

/* Invariant: nothing the poller does blocks (DESIGN 3): it runs with the
 * worker's lock held, and in threads mode every other thread waits for
 * that lock.  A refusal is written without waiting; what the client's
 * window does not take now waits here (SENDING) for room, at most
 * send_timeout, and the connection then lingers as after any refusal. */
static void
worker_send_refusal(struct worker *w, struct conn *c, int status, int head_only)
{
    char msg[RESPONSE_ERROR_MAX];
    size_t len = response_format_error(msg, status, head_only);
    ssize_t n = send(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);

    if (n < 0 && errno != EAGAIN && errno != EINTR)
        return; /* the client is gone: worker_end closes */
    if (n < 0)
        n = 0;
    if ((size_t)n == len || pool_buf_get(&w->pool, c) < 0)
        return;
    /* The input is not needed any more: the buffer holds what is left. */
    memcpy(c->buf, msg + n, len - (size_t)n);
    c->len = len - (size_t)n;
    c->out_off = 0;
    c->head_len = c->body_off = 0;
    c->draining = 0;
    c->sending = 1;
}

/* End c after an answer that left the client's input unread (a refusal,
 * an unread or failed body): first wait for room if part of a refusal is
 * still to go out, then linger. */
static void
worker_end_unread(struct worker *w, struct conn *c)
{
    if (c->sending)
        worker_park(w, c, CONN_SENDING);
    else
        worker_linger(w, c);
}

/* A refusal is waiting to go out on c, which has room now. */
static void
worker_flush(struct worker *w, struct conn *c)
{
    ssize_t n = send(c->fd, c->buf + c->out_off, c->len - c->out_off,
                     MSG_DONTWAIT | MSG_NOSIGNAL);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        worker_park(w, c, CONN_SENDING); /* re-armed in threads mode */
        return;
    }
    if (n < 0) {
        worker_close(w, c);
        return;
    }
    c->out_off += (size_t)n;
    if (c->out_off < c->len) {
        worker_park(w, c, CONN_SENDING);
        return;
    }
    c->sending = 0;
    pool_buf_put(&w->pool, c);
    worker_linger(w, c);
}

/* Discard what a closing connection sends; close it at EOF. */
static void
worker_discard(struct worker *w, struct conn *c)
{
    char sink[4096];
    ssize_t n;

    while ((n = read(c->fd, sink, sizeof(sink))) > 0)
        ;
    if (n == 0 || errno != EAGAIN)
        worker_close(w, c);
    else
        worker_park(w, c, CONN_CLOSING); /* re-armed in threads mode */
}

/* --- one request --------------------------------------------------------- */

static void
worker_access(struct worker_thread *t, struct conn *c,
              const struct http_head *h, int status, uint64_t body_bytes,
              uint64_t start_us, uint64_t dur_us)
{
    /* Headers are looked at only in a head that was parsed to the end. */
    int full = h && !t->refused;
    struct access_entry e = {
        .remote_addr = c->remote_addr,
        .head = h,
        .referer = full ? forkd_getenv(&t->req, "HTTP_REFERER") : NULL,
        .user_agent = full ? forkd_getenv(&t->req, "HTTP_USER_AGENT") : NULL,
        .status = status,
        .body_bytes = body_bytes,
        .start_us = start_us,
        .dur_us = dur_us,
        .pid = t->w->pid,
        .tid = t->tid,
        .format = t->w->cfg->access_log_format};

    if (e.format == ACCESS_JSON)
        e.request_id = environ_request_id(&t->req, full);

    access_log(&e);
    if (t->log_since_ms == 0)
        t->log_since_ms = sb_now_ms();
}

/* Answer a request the server refuses itself; the connection then ends. */
static void
worker_refuse(struct worker_thread *t, struct conn *c, int status,
              const struct http_head *h)
{
    struct worker *w = t->w;
    uint64_t start = log_has_access() ? worker_clock_us(CLOCK_REALTIME) : 0;
    /* A head refused before it was parsed may still be a HEAD request,
     * whose answer has no content (RFC 9110 9.3.2). */
    int head_only = h && h->method ? strcmp(h->method, "HEAD") == 0
                                   : c->buf && c->len >= 5 &&
                                         memcmp(c->buf, "HEAD ", 5) == 0;

    t->refused = 1;
    log_info("%s %s: refused request with %d", c->remote_addr, c->remote_port,
             status);
    sb_count(&t->sb->counts, status, strlen(response_reason(status)) + 1, 0);
    if (log_has_access())
        worker_access(t, c, h && h->protocol ? h : NULL, status,
                      strlen(response_reason(status)) + 1, start, 0);
    /* Last: what the client does not take now replaces the head, which
     * the access line above points into, in the buffer. */
    worker_send_refusal(w, c, status, head_only);
}

static void
worker_request_init(struct worker_thread *t, struct conn *c)
{
    struct forkd_req *req = &t->req;

    arena_reset(&req->arena);
    response_init(&req->resp, req->body_buf);
    req->conn = c;
    t->refused = 0;
    req->continue_sent = 0;
    req->body_status = 0;
    req->env = NULL;
    req->n_env = 0;
    req->request_id[0] = '\0';
}

/* The handler's part of a request, without the worker's lock. */
static int
worker_call(struct worker_thread *t, struct conn *c)
{
    struct worker *w = t->w;
    struct forkd_req *req = &t->req;
    int rc, keep;

    rc = w->app->desc->handle(req, w->app->state);
    keep = response_finish(req, rc) == 0;
    /* The rest of an unread body is discarded by the poller, not here: a
     * client sending it slowly must not hold a handler thread. */
    if (keep && !req->head.body_done)
        keep = conn_drain_start(req) == 0;
    c->requests++;
    const struct response *r = &req->resp;
    uint64_t body = r->status >= 400 && r->failed
                        ? strlen(response_reason(r->status)) + 1
                    : r->no_body ? 0
                                 : r->body_count;
    uint64_t dur = worker_clock_us(CLOCK_MONOTONIC) - req->start_mono_us;
    /* Plain stores to this thread's own entry (DESIGN: the scoreboard). */
    sb_count(&t->sb->counts, r->status, body, dur);
    if (log_has_access())
        worker_access(t, c, &req->head, r->status, body, req->start_us, dur);
    return keep;
}

/* Serve the request whose head is c->buf[0..head_len).  Returns 1 if the
 * connection may carry another request. */
static int
worker_serve(struct worker_thread *t, struct conn *c, size_t head_len)
{
    struct worker *w = t->w;
    struct forkd_req *req = &t->req;
    int status, keep;

    pool_activate(&w->pool, c);
    c->head_len = c->body_off = head_len;
    worker_request_init(t, c);
    status =
        http_parse_head(&req->head, c->buf, head_len, req->headers, &w->limits);
    if (status == 0)
        status = environ_setup(req);
    if (status != 0) {
        worker_refuse(t, c, status, &req->head);
        return 0;
    }
    req->keep_alive = req->head.keep_alive && w->cfg->keepalive_s > 0 &&
                      !w->stopping && !worker_quit;
    /* The vDSO's clocks: no system call.  The wall clock serves the
     * access log only. */
    req->start_mono_us = worker_clock_us(CLOCK_MONOTONIC);
    if (log_has_access())
        req->start_us = worker_clock_us(CLOCK_REALTIME);
    sb_busy(t->sb, req->head.method, req->head.target, c->remote_addr,
            w->now_ms);
    /* seq_cst, as the watchdog's store to watch_asleep then its load of
     * busy_since_ms: one of the two sides sees the other. */
    atomic_store(&t->busy_since_ms, w->now_ms ? w->now_ms : 1);
    if (atomic_load(&w->watch_asleep))
        worker_watch_wake(w); /* the first request after a quiet second */
    pthread_mutex_unlock(&w->lock);
    keep = worker_call(t, c);
    pthread_mutex_lock(&w->lock);
    atomic_store_explicit(&t->busy_since_ms, 0, memory_order_relaxed);
    sb_idle(w->slot, t->sb);
    w->now_ms = sb_now_ms();
    return keep;
}

/* Close c after its last request: once a refusal still waiting has gone
 * out, lingering if input is left unread. */
static void
worker_end(struct worker_thread *t, struct conn *c)
{
    if (t->refused || c->sending || c->body_off < c->len ||
        !t->req.head.body_done || t->req.body_status)
        worker_end_unread(t->w, c);
    else
        worker_close(t->w, c);
}

static int worker_give(struct worker *w, struct conn *c);

/* The worker began to stop while this thread served c (threads mode): a
 * retiring worker passes c on like its idle connections, as its response
 * promised keep-alive; a stopping one closes it. */
static void
worker_leave(struct worker_thread *t, struct conn *c)
{
    struct worker *w = t->w;
    size_t left = conn_consume(c);

    if (!worker_retire || !t->req.keep_alive || c->draining) {
        worker_end(t, c);
        return;
    }
    worker_park(w, c, left ? CONN_READING : CONN_IDLE);
    if (c->fd >= 0 && c->state != CONN_FREE && worker_give(w, c) != 0)
        worker_close(w, c);
}

/* Drop empty lines before a request line (RFC 9112 2.2: a server SHOULD
 * ignore them; some clients send a CRLF after a POST body).  Returns 1
 * while nothing but them has arrived. */
static int
worker_skip_empty_lines(struct conn *c)
{
    size_t i = 0;

    while (i + 1 < c->len && c->buf[i] == '\r' && c->buf[i + 1] == '\n')
        i += 2;
    if (i > 0) {
        memmove(c->buf, c->buf + i, c->len - i);
        c->len -= i;
    }
    return c->len == 0 || (c->len == 1 && c->buf[0] == '\r');
}

/* Discard the unread body at the start of c's buffer.  Returns 1 when it
 * has ended (what follows is the next request), else 0 with c parked or
 * closed. */
static int
worker_drain(struct worker *w, struct conn *c)
{
    int rc = conn_drain(c, w->limits.body, WORKER_DRAIN_MAX);

    if (rc < 0) {
        log_debug("%s %s: unread body too long or malformed: closing",
                  c->remote_addr, c->remote_port);
        worker_linger(w, c);
    } else if (rc == 0) {
        worker_park(w, c, CONN_DRAINING);
    }
    return rc > 0;
}

/* Serve every complete request in c's buffer; park c when it waits. */
static void
worker_process(struct worker_thread *t, struct conn *c)
{
    struct worker *w = t->w;

    for (;;) {
        size_t head_len;
        int status;
        if (c->draining) {
            if (!worker_drain(w, c))
                return;
            if (c->len == 0) {
                worker_park(w, c, CONN_IDLE); /* drained: kept alive */
                return;
            }
        }
        if (c->scan.pos == 0 && worker_skip_empty_lines(c)) {
            worker_park(w, c, CONN_READING);
            return;
        }
        enum http_scan_result r = http_scan_head(
            &c->scan, c->buf, c->len, &w->limits, &head_len, &status);
        if (r == HTTP_SCAN_MORE) {
            worker_park(w, c, CONN_READING);
            return;
        }
        if (r == HTTP_SCAN_ERROR) {
            worker_refuse(t, c, status, NULL);
            worker_end(t, c);
            return;
        }
        if (!worker_serve(t, c, head_len)) {
            worker_end(t, c);
            return;
        }
        if (w->stopping) {
            worker_leave(t, c);
            return;
        }
        /* Pipelined bytes are served now; else wait without a read that
         * would only say EAGAIN. */
        if (conn_consume(c) == 0) {
            worker_park(w, c, c->draining ? CONN_DRAINING : CONN_IDLE);
            return;
        }
    }
}

/* Bytes may have arrived on c. */
static void
worker_readable(struct worker_thread *t, struct conn *c)
{
    struct worker *w = t->w;
    ssize_t n;

    if (c->state == CONN_CLOSING) {
        worker_discard(w, c);
        return;
    }
    if (c->state == CONN_SENDING) {
        worker_flush(w, c);
        return;
    }
    if (pool_buf_get(&w->pool, c) < 0) {
        log_error("out of memory for a connection buffer");
        worker_close(w, c);
        return;
    }
    n = conn_read(c);
    if (n > 0) {
        worker_process(t, c);
        return;
    }
    if (n < 0 && errno == EAGAIN) {
        if (c->len == 0)
            pool_buf_put(&w->pool, c);
        worker_park(w, c,
                    c->state == CONN_IDLE || c->state == CONN_DRAINING
                        ? c->state
                        : CONN_READING);
        return;
    }
    /* EOF or reset: a client leaving while idle is normal; mid-head it
     * is logged at debug only, as nginx does. */
    if (c->len > 0)
        log_debug("%s %s: closed in the middle of a request head",
                  c->remote_addr, c->remote_port);
    worker_close(w, c);
}

/* A connection for fd, making room by closing the oldest waiting one if
 * max_connections are open (idle keep-alive before half-received). */
static struct conn *
worker_new_conn(struct worker *w, int fd)
{
    struct conn *c = pool_get(&w->pool, fd), *old;

    if (c == NULL && (old = pool_oldest(&w->pool)) != NULL) {
        log_info("max_connections (%u) reached: closing %s %s",
                 w->cfg->max_connections, old->remote_addr, old->remote_port);
        worker_close(w, old);
        c = pool_get(&w->pool, fd);
    }
    if (c == NULL) {
        log_warn("max_connections (%u) busy: refusing a connection",
                 w->cfg->max_connections);
        close(fd);
    }
    w->slot->conns = (unsigned)w->pool.used;
    return c;
}

static int worker_watch_queues(struct worker *w);
static void worker_unwatch_queues(struct worker *w);
static void worker_unwatch_listeners(struct worker *w);

/* Out of descriptors or memory, accept4 fails at once every time while
 * the connection stays queued: a level-triggered listener would make
 * every wait return, a core would spin and the log fill (500,000 lines a
 * second).  Stop watching the listeners for a while instead, as nginx
 * does, and log once per interval with a count.  The connections wait in
 * the listen queue, where other workers may take them.  The handoff queue
 * is left alone too: a descriptor received without room is closed by the
 * kernel, and its client's request lost. */
static void
worker_accept_pause(struct worker *w, struct listener *l, int err)
{
    w->accept_fails++;
    if (w->accept_log_ms == 0 ||
        w->now_ms >= w->accept_log_ms + WORKER_ACCEPT_LOG_MS) {
        log_warn("%s%s: %s (%u failures since the last such line): "
                 "accepting again in %d ms",
                 l ? "accept on " : "taking a handed-off connection",
                 l ? l->name : "", strerror(err), w->accept_fails,
                 WORKER_ACCEPT_PAUSE_MS);
        w->accept_log_ms = w->now_ms ? w->now_ms : 1;
        w->accept_fails = 0;
    }
    if (w->accept_resume_ms)
        return;
    worker_unwatch_queues(w);
    w->accept_resume_ms = w->now_ms + WORKER_ACCEPT_PAUSE_MS;
}

static void
worker_accept_resume(struct worker *w)
{
    w->accept_resume_ms = 0;
    if (w->stopping)
        return; /* the listeners stay out for good */
    if (worker_watch_queues(w) < 0)
        log_error("cannot watch the listen and handoff queues again: %s",
                  strerror(errno));
}

/* A new connection from l, or NULL (none waiting, or no room). */
static struct conn *
worker_accept_one(struct worker *w, struct listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct conn *c;
    int fd;

    fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                 SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM)
            worker_accept_pause(w, l, errno);
        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("accept on %s: %s", l->name, strerror(errno));
        return NULL;
    }
    if ((c = worker_new_conn(w, fd)) == NULL)
        return NULL;
    c->listener = (unsigned)(l - w->ls);
    c->server_name = l->host;
    c->server_port = l->port;
    conn_set_peer(c, (struct sockaddr *)&ss, len);
    c->trusted = conn_is_trusted(w->cfg->forwarded_allow_ips, c->remote_addr);
    return c;
}

static int worker_spread(struct worker *w, struct conn *c, uint64_t busy_ms);

/* Threads mode: the listen queue gets one turn per pass over the worker's
 * ready connections, and one accept per turn: under overload (every
 * worker holding more connections than threads) a connection waiting
 * there waits many passes while kept-alive ones are served again and
 * again.  So take every connection waiting there (while the pool has
 * room: none is closed to make it) and queue them in the poller (their
 * request is there: TCP_DEFER_ACCEPT), behind the requests already ready
 * here, half of them in the other workers' (the spread): one FIFO per
 * worker, of even length.  Invariant 2 still holds through the watchdog,
 * which hands waiting requests to workers with idle threads; without it
 * (handoff = no) nothing is taken early.  sleep 100 ms, 2 x 8 threads:
 * wrk -c100 -d10s (model 625 ms): p50/p99 0.90 s / 1.10 s with one
 * accept per turn, 0.50 s / 0.80 s with 64; wrk -c1000 (model 6.25 s):
 * p99 8.6 to 9.4 s with 64 and no spread, 6.23 to 6.28 s with this. */
static void
worker_accept_more(struct worker *w, struct listener *l)
{
    struct conn *c;

    if (w->n_threads == 1 || !w->cfg->handoff || w->pool.used <= w->n_threads)
        return;
    while (w->pool.used < w->cfg->max_connections) {
        if ((c = worker_accept_one(w, l)) == NULL)
            return;
        /* Every worker is busy: each gets an even share of the waiting
         * requests, which the watchdogs pass to a worker that turns
         * idle. */
        if (!worker_spread(w, c, UINT64_MAX))
            worker_park(w, c, CONN_READING);
    }
}

static void
worker_accept(struct worker_thread *t, struct listener *l)
{
    struct worker *w = t->w;
    struct conn *c = worker_accept_one(w, l);

    if (c == NULL || worker_spread(w, c, WORKER_HANDOFF_MS))
        return;
    worker_accept_more(w, l);
    worker_readable(t, c);
}

/* --- handoff (DESIGN: keep-alive without head-of-line blocking) ---------- */

/* A connection passed on through sock (the handoff queue or this worker's
 * inbox), in the pool with the bytes already read of its request, which
 * come through buf[0..cap).  NULL: none (or no room for it). */
static struct conn *
worker_receive(struct worker *w, int sock, char *buf, size_t cap)
{
    struct handoff_meta meta;
    struct conn *c;
    int fd;

    if (handoff_recv(sock, &fd, &meta, buf, cap) < 0) {
        if (errno == EMFILE)
            worker_accept_pause(w, NULL, errno); /* take no more for now */
        else if (errno != EAGAIN)
            log_warn("handoff: %s", strerror(errno));
        return NULL;
    }
    if (sock == w->inbox_rx)
        __atomic_fetch_add(&w->slot->inbox_taken, 1, __ATOMIC_RELAXED);
    else
        w->slot->handoffs_taken++; /* under the worker's lock */
    if ((c = worker_new_conn(w, fd)) == NULL)
        return NULL;
    if (pool_buf_get(&w->pool, c) < 0 || meta.len > c->cap) {
        worker_close(w, c);
        return NULL;
    }
    memcpy(c->buf, buf, meta.len);
    c->len = meta.len;
    memcpy(c->remote_addr, meta.remote_addr, sizeof(c->remote_addr));
    memcpy(c->remote_port, meta.remote_port, sizeof(c->remote_port));
    c->remote_addr[sizeof(c->remote_addr) - 1] = '\0';
    c->remote_port[sizeof(c->remote_port) - 1] = '\0';
    c->trusted = conn_is_trusted(w->cfg->forwarded_allow_ips, c->remote_addr);
    c->listener = meta.listener < w->n_ls ? meta.listener : 0;
    c->server_name = w->ls[c->listener].host;
    c->server_port = w->ls[c->listener].port;
    return c;
}

/* Take a connection passed on through sock and serve it (this thread is
 * idle).  0 if there was none. */
static int
worker_take(struct worker_thread *t, int sock)
{
    struct conn *c =
        worker_receive(t->w, sock, t->req.body_buf, RESPONSE_BODY_BUF);

    if (c == NULL)
        return 0;
    /* A request that came whole (after a drained body) is served from the
     * buffer: no more bytes may come to wake us. */
    if (c->len > 0)
        worker_process(t, c);
    else
        worker_readable(t, c);
    return 1;
}

/* Move what waits in this worker's inbox to its poller, behind the
 * requests already there. */
static void
worker_inbox_to_poller(struct worker *w)
{
    char none[1];
    struct conn *c;

    w->inbox_seen = __atomic_load_n(&w->slot->inbox_sent, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < w->cfg->max_connections; i++) {
        if ((c = worker_receive(w, w->inbox_rx, none, 0)) == NULL)
            break;
        worker_park(w, c, CONN_READING);
    }
}

/* Threads mode: take every connection waiting in this worker's inbox
 * and serve the first.  The others wait in the poller behind the
 * requests already there: the inbox is one descriptor among all that are
 * ready and gets one turn per pass over them, so taking one per turn
 * would keep a connection there for many passes under overload (as for
 * the listen queue, worker_accept_more).  A single-threaded worker takes
 * one at a time and serves it at once: a connection left in the inbox
 * survives the worker's crash (the master passes it on), one moved to
 * its poller does not. */
static void
worker_take_inbox(struct worker_thread *t)
{
    if (t->w->n_threads > 1)
        worker_inbox_to_poller(t->w);
    worker_take(t, t->w->inbox_rx);
}

/* Between two events: a signal the master sent, and connections sent
 * here since the last look, are taken now rather than at the turn of the
 * signalfd or the inbox, which under overload comes once per pass over
 * hundreds of ready connections (a QUIT took 6 s to be seen with 1000
 * clients of a 100 ms handler).  Loads from the slot, no system call
 * while there is nothing. */
static void
worker_look_around(struct worker *w)
{
    if (w->slot->knock) {
        w->slot->knock = 0;
        worker_read_signals(w);
    }
    if (w->n_threads > 1 && w->inbox_rx >= 0 && !w->stopping &&
        __atomic_load_n(&w->slot->inbox_sent, __ATOMIC_RELAXED) !=
            w->inbox_seen)
        worker_inbox_to_poller(w);
}

/* Pass c, just accepted, to the inbox of a worker that holds fewer and
 * has a thread free or in a request younger than busy_ms (spread.h).
 * Returns 1 if it went, 0 if it stays here. */
static int
worker_spread(struct worker *w, struct conn *c, uint64_t busy_ms)
{
    struct handoff_meta meta = {.listener = c->listener};
    struct sb_slot *s;
    int k;

    if (w->n_inbox == 0 || w->stopping)
        return 0;
    k = spread_pick(w->board, w->inbox, w->n_inbox, w->index,
                    spread_load(w->slot), w->now_ms, busy_ms);
    if (k < 0)
        return 0;
    s = &w->board->slots[k];
    memcpy(meta.remote_addr, c->remote_addr, sizeof(meta.remote_addr));
    memcpy(meta.remote_port, c->remote_port, sizeof(meta.remote_port));
    /* Counted first: another acceptor sees it on its way. */
    __atomic_fetch_add(&s->inbox_sent, 1, __ATOMIC_RELAXED);
    if (handoff_send(w->inbox[k][0], c->fd, &meta, NULL) < 0) {
        __atomic_fetch_sub(&s->inbox_sent, 1, __ATOMIC_RELAXED);
        return 0;
    }
    w->slot->spread_given++; /* under the worker's lock */
    worker_close(w, c);
    return 1;
}

/* Pass c, which has a request coming while every thread of this worker is
 * busy, to the handoff queue that idle workers read.  Watchdog thread. */
static int
worker_give(struct worker *w, struct conn *c)
{
    struct handoff_meta meta = {.len = (uint32_t)c->len,
                                .listener = c->listener};

    memcpy(meta.remote_addr, c->remote_addr, sizeof(meta.remote_addr));
    memcpy(meta.remote_port, c->remote_port, sizeof(meta.remote_port));
    /* Leave the epoll set first: a socket in flight stays open, and
     * close() alone would leave it registered here, reported to this
     * worker and refused (EEXIST) if it ever came back. */
    if (c->in_epoll && epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL) == 0)
        c->in_epoll = 0;
    if (c->len <= RESPONSE_BODY_BUF &&
        handoff_send(w->handoff_tx, c->fd, &meta, c->buf) == 0) {
        worker_close(w, c);
        w->slot->handoffs_given++; /* under the worker's lock */
        return 0;
    }
    log_debug("handoff of %s %s: %s", c->remote_addr, c->remote_port,
              c->len > RESPONSE_BODY_BUF ? "too big" : strerror(errno));
    worker_park(w, c, c->state); /* it waits here; re-armed if oneshot */
    return -1;
}

/* A draining connection has bytes while this worker is busy: discard its
 * body here and pass on the request that follows it, as for any waiting
 * connection (DESIGN 2).  Watchdog thread, with the lock: nothing here
 * waits. */
static void
worker_give_drained(struct worker *w, struct conn *c)
{
    ssize_t n;

    if (pool_buf_get(&w->pool, c) < 0 || (n = conn_read(c)) == 0 ||
        (n < 0 && errno != EAGAIN)) {
        worker_close(w, c);
        return;
    }
    if (n < 0) {
        worker_park(w, c, CONN_DRAINING); /* re-armed in threads mode */
        return;
    }
    if (!worker_drain(w, c))
        return;
    if (c->len == 0) {
        worker_park(w, c, CONN_IDLE);
        return;
    }
    worker_park(w, c, CONN_READING);
    if (c->fd >= 0 && c->state == CONN_READING)
        worker_give(w, c);
}

/* A connection sent to this worker's inbox before it turned busy goes on
 * to the handoff queue, as any connection waiting here does. */
static void
worker_pass_inbox(struct worker *w)
{
    char none[1];
    struct conn *c = worker_receive(w, w->inbox_rx, none, 0);

    if (c == NULL)
        return;
    worker_park(w, c, CONN_READING);
    if (c->fd >= 0 && c->state == CONN_READING)
        worker_give(w, c); /* else it waits here */
}

/* Give every waiting connection that has bytes coming away. */
static void
worker_give_ready(struct worker *w, unsigned max)
{
    struct epoll_event evs[WORKER_EVENTS];
    int n = epoll_wait(w->ep, evs,
                       max < WORKER_EVENTS ? (int)max : WORKER_EVENTS, 0);

    for (int i = 0; i < n; i++) {
        struct conn *c = pool_lookup(&w->pool, evs[i].data.u64);
        if (evs[i].data.u64 == WORKER_KEY_INBOX)
            worker_pass_inbox(w);
        if (c == NULL || (evs[i].data.u64 & WORKER_KEY_OWN))
            continue;
        if ((c->state == CONN_IDLE || c->state == CONN_READING) && !c->draining)
            worker_give(w, c);
        else if (c->state == CONN_DRAINING)
            worker_give_drained(w, c);
        else if (c->state != CONN_ACTIVE)
            worker_park(w, c, c->state); /* re-armed in threads mode */
    }
}

/* Whether thread t is running or waiting for a CPU (state R), rather than
 * sleeping in I/O. */
static int
worker_is_running(struct worker_thread *t)
{
    char buf[256], *end;
    int fd = atomic_load(&t->stat_fd);
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    end = strrchr(buf, ')'); /* the name may hold anything but ends here */
    return end && end[1] == ' ' && end[2] == 'R';
}

/* Whether every thread has been in a handler for WORKER_HANDOFF_MS, so that
 * requests waiting here would be better served by an idle worker.  A
 * handler that is running (not sleeping in I/O) gets WORKER_HANDOFF_CPU_MS:
 * on a machine whose cores are all busy, a handler preempted for a few
 * milliseconds is no reason to move connections around. */
static int
worker_is_saturated(struct worker *w, uint64_t now)
{
    for (unsigned i = 0; i < w->n_threads; i++) {
        uint64_t since = atomic_load_explicit(&w->threads[i].busy_since_ms,
                                              memory_order_acquire);
        if (since == 0 || now < since + WORKER_HANDOFF_MS)
            return 0;
    }
    for (unsigned i = 0; i < w->n_threads; i++) {
        uint64_t since = atomic_load_explicit(&w->threads[i].busy_since_ms,
                                              memory_order_acquire);
        if (now < since + WORKER_HANDOFF_CPU_MS &&
            worker_is_running(&w->threads[i]))
            return 0;
    }
    return 1;
}

/* Pass on as many waiting requests as other workers have idle threads,
 * and only when the queue is empty.  When every worker is busy, moving
 * connections to the queue would only let the ones left behind overtake
 * them: a free thread takes one message from the queue per pass over its
 * own ready connections, which come back ready as soon as they are
 * answered (2 x 8 threads, 200 clients of a 100 ms handler: 176 of the
 * 200 connections sat in the queue). */
static void
worker_give_some(struct worker *w)
{
    unsigned idle = sb_idle_threads(w->board, w->index);
    int queued = 0;

    if (idle == 0 || ioctl(w->handoff_tx, SIOCOUTQ, &queued) < 0 || queued > 0)
        return;
    worker_give_ready(w, idle);
}

static int
worker_any_busy(struct worker *w)
{
    for (unsigned i = 0; i < w->n_threads; i++)
        if (atomic_load(&w->threads[i].busy_since_ms) != 0)
            return 1;
    return 0;
}

/* The watchdog's wait for the next request: a futex on watch_asleep,
 * which the thread that starts a request (or the stop) clears and wakes. */
static void
worker_watch_idle(struct worker *w)
{
    atomic_store(&w->watch_asleep, 1);
    if (worker_any_busy(w) || atomic_load(&w->watchdog_stop)) {
        atomic_store(&w->watch_asleep, 0);
        return;
    }
    while (atomic_load(&w->watch_asleep) == 1)
        syscall(SYS_futex, &w->watch_asleep, FUTEX_WAIT_PRIVATE, 1, NULL, NULL,
                0);
}

static void *
worker_watch(void *arg)
{
    struct worker *w = arg;
    const struct timespec period = {0, WORKER_WATCH_MS * 1000000L};
    uint64_t seen = 0;
    unsigned quiet = 0;

    while (!atomic_load(&w->watchdog_stop)) {
        uint64_t served = __atomic_load_n(&w->slot->requests, __ATOMIC_RELAXED);
        if (served != seen || worker_any_busy(w))
            quiet = 0;
        seen = served;
        if (++quiet > WORKER_WATCH_QUIET) {
            worker_watch_idle(w);
            quiet = 0;
            continue;
        }
        nanosleep(&period, NULL);
        if (!worker_is_saturated(w, sb_now_ms()) ||
            pthread_mutex_trylock(&w->lock) != 0)
            continue;
        if (worker_is_saturated(w, sb_now_ms()) && w->pool.used > w->n_threads)
            worker_give_some(w);
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

static int
worker_spawn(pthread_t *th, void *(*fn)(void *), void *arg, size_t stack)
{
    pthread_attr_t attr;
    int rc;

    pthread_attr_init(&attr);
    if (stack)
        pthread_attr_setstacksize(&attr, stack);
    rc = pthread_create(th, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* --- the loop ------------------------------------------------------------ */

static int
worker_timeout_ms(struct worker_thread *t)
{
    struct worker *w = t->w;
    uint64_t next = w->now_ms + 1000, d = pool_next_deadline(&w->pool);

    if (d < next)
        next = d;
    if (t->log_since_ms && t->log_since_ms + WORKER_LOG_FLUSH_MS < next)
        next = t->log_since_ms + WORKER_LOG_FLUSH_MS;
    if (w->accept_resume_ms && w->accept_resume_ms < next)
        next = w->accept_resume_ms;
    return next <= w->now_ms ? 0 : (int)(next - w->now_ms) + 1;
}

static void
worker_expire(struct worker_thread *t)
{
    struct worker *w = t->w;
    struct conn *c;

    while ((c = w->pool.idle.head) && c->deadline_ms <= w->now_ms)
        worker_close(w, c);
    while ((c = w->pool.closing.head) && c->deadline_ms <= w->now_ms)
        worker_close(w, c);
    while ((c = w->pool.sending.head) && c->deadline_ms <= w->now_ms)
        worker_close(w, c);
    while ((c = w->pool.draining.head) && c->deadline_ms <= w->now_ms) {
        log_debug("%s %s: unread body still coming after %d ms: closing",
                  c->remote_addr, c->remote_port, WORKER_DRAIN_MS);
        worker_linger(w, c);
    }
    while ((c = w->pool.reading.head) && c->deadline_ms <= w->now_ms) {
        if (c->len == 0) {
            worker_close(w, c);
            continue;
        }
        log_info("%s %s: header_timeout (%us): closing with 408",
                 c->remote_addr, c->remote_port, w->cfg->header_timeout_s);
        pool_activate(&w->pool, c);
        worker_send_refusal(w, c, 408, 0);
        worker_end_unread(w, c);
    }
    if (w->accept_resume_ms && w->accept_resume_ms <= w->now_ms)
        worker_accept_resume(w);
    if (t->log_since_ms && t->log_since_ms + WORKER_LOG_FLUSH_MS <= w->now_ms) {
        log_access_flush();
        t->log_since_ms = 0;
    }
}

/* Stopping: no acceptor sends here any more (the state says so).  What
 * was sent before waits with the connections that have a request coming,
 * to be passed on or served.  A connection sent in the moment between is
 * passed on by the master when this worker has gone (spread_rescue). */
static void
worker_empty_inbox(struct worker *w)
{
    if (w->inbox_rx < 0)
        return;
    w->slot->inbox = 0;
    worker_inbox_to_poller(w);
}

/* Graceful stop: no new connections; idle ones are closed, those with a
 * request coming (READING: taken from the listen queue or the inbox, or a
 * head half received) are served first, each answer closing its
 * connection (invariant 5: no request accepted is lost), within
 * header_timeout for a head still arriving; when the worker retires while
 * others serve on (reload, fewer workers, max_requests), every waiting
 * connection is given to them through the handoff queue instead, so that
 * a kept-alive client never finds its connection closed.  The other
 * threads wake through stop_fd and leave once nothing is left to serve. */
static void
worker_begin_stop(struct worker_thread *t, int give)
{
    struct worker *w = t->w;
    uint64_t one = 1;
    struct conn *c;

    w->stopping = 1;
    w->slot->state = SB_STOPPING;
    /* Without give, no worker serves on (a stop): connections passed on
     * before it, in the handoff queue and the inboxes, are this worker's
     * and the others' to serve while they finish. */
    if (give)
        worker_unwatch_queues(w);
    else
        worker_unwatch_listeners(w);
    worker_empty_inbox(w);
    while ((c = w->pool.closing.head) != NULL)
        worker_close(w, c);
    /* The reading ones come last. */
    while ((c = pool_oldest(&w->pool)) != NULL) {
        if (!give && c->state == CONN_READING)
            break;
        if (give && (c->state == CONN_IDLE || c->state == CONN_READING) &&
            worker_give(w, c) == 0)
            continue;
        worker_close(w, c);
    }
    w->finishing = !give && w->pool.reading.head != NULL;
    /* An eventfd written once: never full. */
    if (!w->finishing)
        daemon_write_best_effort(w->stop_fd, &one, sizeof(one));
}

/* The last request received before the stop was served (or its client
 * gave up, or header_timeout ended it): wake the other threads to
 * leave. */
static void
worker_finish(struct worker_thread *t)
{
    struct worker *w = t->w;
    uint64_t one = 1;

    if (!w->finishing || w->pool.reading.head != NULL)
        return;
    /* One passed on before the stop may still be on its way. */
    if (worker_take(t, w->handoff_rx) ||
        (w->inbox_rx >= 0 && worker_take(t, w->inbox_rx)))
        return;
    w->finishing = 0;
    daemon_write_best_effort(w->stop_fd, &one, sizeof(one));
}

static void
worker_event(struct worker_thread *t, uint64_t key)
{
    struct worker *w = t->w;
    struct conn *c;

    if (w->stopping && ((key & ~0xffffull) == WORKER_KEY_OWN ||
                        (!w->finishing && (key == WORKER_KEY_HANDOFF ||
                                           key == WORKER_KEY_INBOX)))) {
        /* out of the epoll set now, reported before */
    } else if (key == WORKER_KEY_HANDOFF) {
        worker_take(t, w->handoff_rx);
    } else if (key == WORKER_KEY_INBOX) {
        worker_take_inbox(t);
    } else if (key == WORKER_KEY_STOP) {
        /* the loop condition sees w->stopping */
    } else if (key == WORKER_KEY_SIGNAL) {
        worker_read_signals(w);
    } else if (key & WORKER_KEY_OWN) {
        worker_accept(t, &w->ls[key & 0xffff]);
    } else if ((c = pool_lookup(&w->pool, key)) != NULL &&
               c->state != CONN_ACTIVE) {
        worker_readable(t, c);
    }
}

/* USR1: the master reopened the logs and sent the files first (a worker
 * that dropped privileges may not be able to open them itself). */
static void
worker_adopt_logs(struct worker *w)
{
    int fds[2];

    while (handoff_recv_fds(w->log_chan, fds, 2) == 0)
        log_adopt(fds[0], fds[1]);
}

/* A thread's life: wait, take one piece of work, serve it.  In threads
 * mode each wait takes one event, so that the next ready connection goes
 * to the next idle thread rather than queueing behind this one. */
static void
worker_loop(struct worker_thread *t)
{
    struct worker *w = t->w;
    struct epoll_event evs[WORKER_EVENTS];
    int max = w->n_threads > 1 ? 1 : WORKER_EVENTS;

    pthread_mutex_lock(&w->lock);
    while (!w->stopping || w->finishing) {
        int timeout = worker_timeout_ms(t);
        pthread_mutex_unlock(&w->lock);
        int n = epoll_wait(w->ep, evs, max, timeout);
        int saved = errno;
        pthread_mutex_lock(&w->lock);
        w->now_ms = sb_now_ms();
        w->slot->heartbeat_ms = w->now_ms;
        if (n < 0 && saved != EINTR) {
            log_error("epoll_wait: %s", strerror(saved));
            break;
        }
        for (int i = 0; i < n && (!w->stopping || w->finishing); i++) {
            worker_event(t, evs[i].data.u64);
            worker_look_around(w);
        }
        if (worker_reopen) {
            worker_reopen = 0;
            worker_adopt_logs(w);
        }
        if (worker_quit && !w->stopping)
            worker_begin_stop(t, worker_retire);
        else if (w->max_requests && w->slot->requests >= w->max_requests &&
                 !w->stopping) {
            log_info("max_requests (%u) served: recycling this worker",
                     w->max_requests);
            worker_begin_stop(t, 1);
        }
        worker_expire(t);
        worker_finish(t);
    }
    pthread_mutex_unlock(&w->lock);
    log_access_flush();
}

/* The watchdog reads the thread's state from here (worker_is_running). */
static void
worker_open_stat(struct worker_thread *t)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", t->tid);
    atomic_store(&t->stat_fd, open(path, O_RDONLY | O_CLOEXEC));
}

static void *
worker_thread_main(void *arg)
{
    struct worker_thread *t = arg;

    t->tid = (int)gettid();
    worker_open_stat(t);
    worker_loop(t);
    return NULL;
}

/* --- set-up -------------------------------------------------------------- */

static int
worker_thread_init(struct worker *w, struct worker_thread *t, unsigned i,
                   const struct worker_env *env, int index)
{
    const struct cfg *cfg = w->cfg;

    t->w = w;
    t->index = i;
    atomic_store(&t->stat_fd, -1);
    t->sb = sb_thread(env->board, (size_t)index, i);
    t->req.cfg = cfg;
    t->req.limits = &w->limits;
    t->req.multiprocess = cfg->workers > 1;
    t->req.multithread = w->n_threads > 1;
    snprintf(t->req.worker_pid, sizeof(t->req.worker_pid), "%d", w->pid);
    /* Here, after the fork: every worker and thread its own sequence. */
    if (getrandom(&t->req.id_state, sizeof(t->req.id_state), 0) !=
        (ssize_t)sizeof(t->req.id_state))
        t->req.id_state = sb_now_ms() ^ ((uint64_t)w->pid << 32) ^ i;
    t->req.headers = calloc(cfg->limit_request_fields, sizeof(*t->req.headers));
    t->req.body_buf = malloc(RESPONSE_BODY_BUF);
    if (!t->req.headers || !t->req.body_buf)
        return -1;
    return arena_init(&t->req.arena, WORKER_ARENA);
}

static int
worker_watch_fd(struct worker *w, int fd, uint64_t key, uint32_t flags)
{
    struct epoll_event ev = {.events = EPOLLIN | flags, .data.u64 = key};

    return epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* The queues every worker shares (the listen sockets and the handoff
 * queue) and its own inbox.  Watched at start, left alone while accepts
 * are paused and for good at stop. */
static int
worker_watch_queues(struct worker *w)
{
    for (size_t i = 0; i < w->n_ls; i++)
        if (worker_watch_fd(w, w->ls[i].fd, WORKER_KEY_OWN | i, w->excl) < 0)
            return -1;
    if (w->inbox_rx >= 0 &&
        worker_watch_fd(w, w->inbox_rx, WORKER_KEY_INBOX, 0) < 0)
        return -1;
    return worker_watch_fd(w, w->handoff_rx, WORKER_KEY_HANDOFF, w->excl);
}

static void
worker_unwatch_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->n_ls; i++)
        (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, w->ls[i].fd, NULL);
}

static void
worker_unwatch_queues(struct worker *w)
{
    worker_unwatch_listeners(w);
    if (w->inbox_rx >= 0)
        (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, w->inbox_rx, NULL);
    (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, w->handoff_rx, NULL);
}

/* This worker's inbox, if its slot has one; the other slots' receiving
 * ends are only the master's business. */
static void
worker_inbox_setup(struct worker *w, const struct worker_env *env)
{
    w->inbox = env->inbox;
    w->n_inbox = 0;
    w->inbox_rx = -1;
    for (size_t i = 0; env->inbox && i < env->n_inbox; i++) {
        /* handoff = no: nothing moves between workers, this neither. */
        if (i == w->index && w->cfg->handoff)
            w->inbox_rx = env->inbox[i][1];
        else if (env->inbox[i][1] >= 0)
            close(env->inbox[i][1]);
    }
    if (w->cfg->handoff && env->inbox)
        w->n_inbox = env->n_inbox;
}

/* EPOLLEXCLUSIVE for the shared queues only where the kernel takes a woken
 * waiter off the wait queue at once (6.0): before that, a worker woken
 * for one connection would absorb the wake-ups of the next ones too. */
static uint32_t
worker_exclusive(void)
{
    struct utsname u;
    int major = 0;

    if (uname(&u) < 0 || sscanf(u.release, "%d", &major) != 1)
        return 0;
    return major >= 6 ? EPOLLEXCLUSIVE : 0;
}

static int
worker_setup(struct worker *w, const struct worker_env *env, int index)
{
    const struct cfg *cfg = w->cfg;

    w->limits =
        (struct http_limits){cfg->limit_request_line, cfg->limit_request_fields,
                             cfg->limit_request_field_size,
                             cfg->limit_request_head, cfg->limit_request_body};
    w->pid = (int)getpid();
    w->n_threads = cfg->threads;
    /* Jitter, so that workers started together are not recycled together. */
    w->max_requests = cfg->max_requests;
    if (cfg->max_requests && cfg->max_requests_jitter) {
        /* 64-bit: jitter + 1 and the sum both overflow 32 bits at the
         * keys' maximum (a division by zero, then a wrapped limit). */
        uint64_t r = (uint64_t)(uint32_t)w->pid * 2654435761u %
                     ((uint64_t)cfg->max_requests_jitter + 1);
        uint64_t sum = (uint64_t)cfg->max_requests + r;
        w->max_requests = sum > UINT32_MAX ? UINT32_MAX : (unsigned)sum;
    }
    w->threads = calloc(w->n_threads, sizeof(*w->threads));
    if (w->threads == NULL)
        return -1;
    for (unsigned i = 0; i < w->n_threads; i++)
        if (worker_thread_init(w, &w->threads[i], i, env, index) < 0)
            return -1;
    w->threads[0].tid = (int)gettid();
    worker_open_stat(&w->threads[0]);
    if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        (w->sig_fd = worker_signal_fd()) < 0 ||
        pool_init(&w->pool, (size_t)cfg->max_connections + 1,
                  cfg->limit_request_head + WORKER_BODY_SPACE, w->ep,
                  w->n_threads > 1) < 0)
        return -1;
    /* Invariant: a busy worker never accepts (DESIGN 2).  A thread looks
     * at the shared listen queue only from epoll_wait, which it calls only
     * between requests.  EPOLLEXCLUSIVE: a new connection wakes one worker
     * that has a thread waiting, not all of them (the losers' accept4 would
     * fail).  The kernel counts an exclusive wake-up as delivered only to
     * an epoll with a thread blocked in it, and (since 6.0) takes a woken
     * thread off the wait queue at once, so a connection arriving while
     * the first is being accepted goes to the next idle worker rather than
     * waiting for this one; busy workers still see the socket ready (level
     * triggered) when they come back.  The handoff queue is shared alike. */
    w->excl = worker_exclusive();
    worker_inbox_setup(w, env);
    if (worker_watch_queues(w) < 0 ||
        worker_watch_fd(w, w->stop_fd, WORKER_KEY_STOP, 0) < 0 ||
        worker_watch_fd(w, w->sig_fd, WORKER_KEY_SIGNAL, 0) < 0)
        return -1;
    w->now_ms = sb_now_ms();
    return pthread_mutex_init(&w->lock, NULL) == 0 ? 0 : -1;
}

/* Handler threads 1..T-1 and the watchdog; thread 0 is the caller. */
static int
worker_start_threads(struct worker *w)
{
    for (unsigned i = 1; i < w->n_threads; i++) {
        if (worker_spawn(&w->threads[i].thread, worker_thread_main,
                         &w->threads[i], 0) < 0)
            return -1;
        w->threads[i].started = 1;
    }
    if (!w->cfg->handoff)
        return 0; /* measured without it (scripts/bench): no watchdog */
    if (worker_spawn(&w->watchdog, worker_watch, w, WORKER_WATCH_STACK) < 0)
        return -1;
    w->has_watchdog = 1;
    return 0;
}

static void
worker_join_threads(struct worker *w)
{
    for (unsigned i = 1; i < w->n_threads; i++)
        if (w->threads[i].started)
            pthread_join(w->threads[i].thread, NULL);
    if (w->has_watchdog) {
        atomic_store(&w->watchdog_stop, 1);
        worker_watch_wake(w);
        pthread_join(w->watchdog, NULL);
    }
}

static void
worker_teardown(struct worker *w)
{
    pool_fini(&w->pool);
    for (unsigned i = 0; w->threads && i < w->n_threads; i++) {
        if (atomic_load(&w->threads[i].stat_fd) >= 0)
            close(atomic_load(&w->threads[i].stat_fd));
        free(w->threads[i].req.headers);
        free(w->threads[i].req.body_buf);
        arena_fini(&w->threads[i].req.arena);
    }
    free(w->threads);
    if (w->log_chan >= 0)
        close(w->log_chan);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->sig_fd >= 0)
        close(w->sig_fd);
    if (w->ep >= 0)
        close(w->ep);
}

int
worker_drop(const struct worker_env *env, char err[DAEMON_ERR_MAX])
{
    if (env->creds.uid == (uid_t)-1 && env->creds.gid == (gid_t)-1)
        return 0;
    if (daemon_drop(&env->creds, err) < 0)
        return -1;
    /* Invariant: workers are not dumpable (DESIGN 8).  The uid change
     * made this process undumpable, so its /proc files are root's and no
     * process of the workers' user can open /proc/PID/mem to write into
     * it.  The watchdog still reads its threads' state there: stat is
     * readable by all.  The change also cleared the parent-death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != env->master) {
        snprintf(err, DAEMON_ERR_MAX, "the master is gone");
        return -1;
    }
    return 0;
}

/* A worker forked by the template becomes the master's child when the
 * template's middle process exits, a moment after the fork: wait for
 * that, then die with the master as any worker does; then wait for the
 * master's word that it took this pid as its worker (the template could
 * die before it told the master: such a worker must not serve unknown to
 * it).  0, or -1 when that does not happen. */
static int
worker_adopted(const struct worker_env *env, pid_t middle, int log_chan)
{
    struct pollfd p = {.fd = log_chan, .events = POLLIN};
    int fds[2];

    for (int i = 0; middle > 0 && getppid() == middle && i < 5000; i++)
        usleep(1000);
    /* Set only now: the change of parent would have fired it. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != env->master)
        return -1;
    if (middle <= 0)
        return 0;
    while (poll(&p, 1, WORKER_ADOPT_MS) < 0)
        if (errno != EINTR)
            return -1;
    /* The word is a message without files on the log channel. */
    return handoff_recv_fds(log_chan, fds, 2) == 0 ? 0 : -1;
}

/* The handler, loaded here as the workers' user (the master only checked
 * it in a child like this one, and a file replaced since is what runs),
 * or the one the template preloaded, already as that user.  0 or -1. */
static int
worker_load(struct worker *w, const struct worker_env *env, struct app *app,
            struct app *preloaded)
{
    char err[DAEMON_ERR_MAX], app_err[APP_ERR_MAX];

    if (preloaded != NULL) {
        *app = *preloaded;
    } else if (worker_drop(env, err) < 0) {
        log_error("worker %zu: %s", w->index, err);
        return -1;
    } else if (app_open(app, env->app->path, w->cfg->threads, app_err) < 0) {
        log_error("worker %zu: %s: %s", w->index, env->app->path, app_err);
        return -1;
    }
    w->app = app;
    if (app_init(w->app, w->cfg) < 0) {
        log_error("worker %zu: %s: init failed", w->index, w->app->path);
        return -1;
    }
    return 0;
}

void
worker_run(const struct worker_env *env, int index, int log_chan,
           struct app *preloaded, pid_t middle)
{
    struct worker w = {.cfg = env->cfg,
                       .ls = env->ls,
                       .n_ls = env->n_ls,
                       .handoff_tx = env->handoff[0],
                       .handoff_rx = env->handoff[1],
                       .log_chan = log_chan,
                       .slot = &env->board->slots[index],
                       .board = env->board,
                       .index = (size_t)index,
                       .ep = -1,
                       .stop_fd = -1,
                       .sig_fd = -1};
    int status = 0;
    struct app app;

    worker_signals();
    title_set("worker %d (gen %u)", index, env->gen);
    /* A worker never outlives its master (killed with SIGKILL, say): it
     * would keep serving a listen queue nobody manages. */
    if (worker_adopted(env, middle, log_chan) < 0)
        _exit(WORKER_EXIT_BOOT);
    w.slot->pid = getpid();
    w.slot->state = SB_BOOTING;
    if (worker_setup(&w, env, index) < 0) {
        log_error("worker %d: cannot start: %s", index, strerror(errno));
        _exit(WORKER_EXIT_BOOT);
    }
    if (worker_load(&w, env, &app, preloaded) < 0)
        _exit(WORKER_EXIT_BOOT);
    if (worker_start_threads(&w) < 0) {
        log_error("worker %d: cannot start threads: %s", index,
                  strerror(errno));
        _exit(WORKER_EXIT_BOOT);
    }
    w.slot->heartbeat_ms = sb_now_ms();
    w.slot->n_threads = w.n_threads;
    w.slot->gen = env->gen;
    w.slot->started_s = (uint64_t)time(NULL);
    w.slot->inbox = w.inbox_rx >= 0;
    w.slot->state = SB_IDLE;
    log_debug("worker %d ready (%u threads)", index, w.n_threads);
    worker_loop(&w.threads[0]);
    if (!w.stopping)
        status = 1;
    if (!w.stopping) {
        pthread_mutex_lock(&w.lock);
        worker_begin_stop(&w.threads[0], 0); /* the other threads leave too */
        pthread_mutex_unlock(&w.lock);
    }
    worker_join_threads(&w);
    app_fini(w.app);
    worker_teardown(&w);
    app_close(&app);
    log_close();
    exit(status);
}
