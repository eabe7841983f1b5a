#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "conn.h"
#include "environ.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "req.h"
#include "scoreboard.h"

#define WORKER_EVENTS 64
#define WORKER_BODY_SPACE 16384 /* buffer room after a full head */
#define WORKER_DRAIN_MAX 65536  /* unread body bytes drained for keep-alive */
#define WORKER_ARENA 16384
#define WORKER_LOG_FLUSH_MS 100
#define WORKER_LINGER_MS 2000 /* input discarded after an error, at most */
#define WORKER_WATCH_MS 5     /* the watchdog's period */
#define WORKER_HANDOFF_MS 5   /* a handler busy longer gives its waiters up */
#define WORKER_WATCH_STACK 65536

/* A list of waiting connections, oldest first; every member has the same
 * timeout, so the head has the nearest deadline. */
struct worker_list {
    struct conn *head, *tail;
};

struct worker {
    const struct cfg *cfg;
    struct app *app;
    struct listener *ls;
    size_t n_ls;
    int handoff_tx, handoff_rx;
    struct sb_slot *slot;
    int ep;
    struct conn *conns; /* max_connections + 1, the spare for accept */
    size_t n_conns;
    struct conn *free_conns;
    size_t n_waiting; /* connections not in free_conns */
    struct worker_list idle, reading, closing;
    char **free_bufs; /* buffers not lent to a connection */
    size_t n_free_bufs, n_bufs, buf_cap;
    struct forkd_req req;
    struct http_limits limits;
    uint64_t now_ms;
    uint64_t log_since_ms; /* first unflushed access-log line, or 0 */
    int stopping;
    int refused;  /* the last request was answered by the server itself */
    int pid, tid; /* cached: getpid() is a syscall */
    /* Keep-alive without head-of-line blocking (DESIGN 2): the main thread
     * holds lock except inside a handler; the watchdog thread takes it only
     * then, to hand the worker's waiting connections to idle workers. */
    pthread_mutex_t lock;
    pthread_t watchdog;
    int has_watchdog;
    atomic_bool watchdog_stop;
    _Atomic uint64_t busy_since_ms; /* 0 when not in a handler */
    struct conn *active;            /* the connection being served */
};

static volatile sig_atomic_t worker_quit;
static volatile sig_atomic_t worker_reopen;
/* The mask during epoll_pwait: QUIT and USR1 are blocked everywhere else,
 * so they arrive only between requests and never interrupt a handler's
 * own system calls, and a signal cannot slip in between the flag check
 * and the wait. */
static sigset_t worker_wait_mask;

static void
worker_on_signal(int sig)
{
    if (sig == SIGQUIT)
        worker_quit = 1;
    else if (sig == SIGUSR1)
        worker_reopen = 1;
}

/* After fork: the master's handlers and mask must not leak into the
 * worker.  TERM/INT keep their default (die at once: the quick stop). */
static void
worker_signals(void)
{
    struct sigaction sa = {.sa_handler = worker_on_signal,
                           .sa_flags = SA_RESTART};
    static const int dfl[] = {SIGTERM, SIGINT, SIGCHLD, SIGALRM};
    static const int ign[] = {SIGPIPE,  SIGHUP,  SIGUSR2,
                              SIGWINCH, SIGTTIN, SIGTTOU};
    sigset_t blocked;

    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        signal(dfl[i], SIG_DFL);
    for (size_t i = 0; i < sizeof(ign) / sizeof(ign[0]); i++)
        signal(ign[i], SIG_IGN);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&worker_wait_mask);
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGQUIT);
    sigaddset(&blocked, SIGUSR1);
    sigprocmask(SIG_SETMASK, &blocked, NULL);
}

/* --- lists and buffers --------------------------------------------------- */

static void
worker_list_remove(struct worker_list *l, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void
worker_list_append(struct worker_list *l, struct conn *c)
{
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static struct worker_list *
worker_list_of(struct worker *w, struct conn *c)
{
    if (c->state == CONN_IDLE)
        return &w->idle;
    if (c->state == CONN_READING)
        return &w->reading;
    if (c->state == CONN_CLOSING)
        return &w->closing;
    return NULL;
}

/* Lend c a buffer.  Buffers are allocated on first need and then reused,
 * most recently used first, so a busy worker touches few of them. */
static int
worker_buf_get(struct worker *w, struct conn *c)
{
    if (c->buf)
        return 0;
    if (w->n_free_bufs > 0) {
        c->buf = w->free_bufs[--w->n_free_bufs];
    } else if ((c->buf = malloc(w->buf_cap)) == NULL) {
        return -1;
    } else {
        w->n_bufs++;
    }
    c->cap = w->buf_cap;
    c->len = 0;
    return 0;
}

static void
worker_buf_put(struct worker *w, struct conn *c)
{
    if (c->buf == NULL)
        return;
    w->free_bufs[w->n_free_bufs++] = c->buf;
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* --- connections --------------------------------------------------------- */

static void
worker_close(struct worker *w, struct conn *c)
{
    struct worker_list *l = worker_list_of(w, c);

    if (l)
        worker_list_remove(l, c);
    close(c->fd); /* also leaves the epoll set */
    worker_buf_put(w, c);
    c->fd = -1;
    c->state = CONN_FREE;
    c->in_epoll = 0;
    c->next = w->free_conns;
    w->free_conns = c;
    w->n_waiting--;
}

/* Move c to state (IDLE or READING) with its deadline, watched by epoll. */
static int
worker_park(struct worker *w, struct conn *c, enum conn_state state)
{
    struct worker_list *l = worker_list_of(w, c);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

    if (!c->in_epoll) {
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            return -1;
        c->in_epoll = 1;
    }
    if (l && c->state == state)
        return 0; /* a head still arriving keeps its first deadline */
    if (l)
        worker_list_remove(l, c);
    c->state = state;
    if (state == CONN_IDLE) {
        worker_buf_put(w, c);
        c->deadline_ms = w->now_ms + w->cfg->keepalive_s * 1000ull;
    } else if (state == CONN_CLOSING) {
        worker_buf_put(w, c);
        c->deadline_ms = w->now_ms + WORKER_LINGER_MS;
    } else {
        c->deadline_ms = w->now_ms + w->cfg->header_timeout_s * 1000ull;
    }
    worker_list_append(worker_list_of(w, c), c);
    return 0;
}

/* Close c after an answer that left client bytes unread.  A plain close
 * would send RST, which can destroy the answer in the client's receive
 * buffer before it is read: shut down our side, keep discarding input in
 * the poller until the client closes or WORKER_LINGER_MS (as nginx's
 * lingering close).  It never holds the worker. */
static void
worker_linger(struct worker *w, struct conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0 || worker_park(w, c, CONN_CLOSING) < 0)
        worker_close(w, c);
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
}

static void
worker_access_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;

    for (; s && *s && n + 5 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\x%02X", ch);
        else
            out[n++] = (char)ch;
    }
    if (n == 0)
        out[n++] = '-';
    out[n] = '\0';
}

/* One access-log line: combined format plus pid, thread, start, duration. */
static void
worker_access(struct worker *w, struct conn *c, const struct http_head *h,
              int status, uint64_t body_bytes, uint64_t start_us,
              uint64_t dur_us)
{
    char line[2048], ref[256], ua[256], req[1024], when[64];
    struct forkd_req *r = &w->req;
    /* Headers are looked at only in a head that was parsed to the end. */
    int full = h && !w->refused;
    time_t sec = (time_t)(start_us / 1000000);
    struct tm tm;
    int n;

    if (!log_has_access())
        return;
    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    if (h) {
        snprintf(line, sizeof(line), "%s %s %s", h->method, h->target,
                 h->protocol);
        worker_access_escape(req, sizeof(req), line);
    } else {
        strcpy(req, "-");
    }
    worker_access_escape(ref, sizeof(ref),
                         full ? forkd_getenv(r, "HTTP_REFERER") : NULL);
    worker_access_escape(ua, sizeof(ua),
                         full ? forkd_getenv(r, "HTTP_USER_AGENT") : NULL);
    n = snprintf(line, sizeof(line),
                 "%s - - [%s] \"%s\" %d %" PRIu64 " \"%s\" \"%s\" pid=%d "
                 "tid=%d start=%" PRIu64 ".%06" PRIu64 " us=%" PRIu64,
                 c->remote_addr, when, req, status, body_bytes, ref, ua, w->pid,
                 w->tid, start_us / 1000000, start_us % 1000000, dur_us);
    log_access(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
    if (w->log_since_ms == 0)
        w->log_since_ms = w->now_ms;
}

static uint64_t
worker_clock_us(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Answer a request the server refuses itself, then the connection closes. */
static void
worker_refuse(struct worker *w, struct conn *c, int status,
              const struct http_head *h)
{
    uint64_t start = log_has_access() ? worker_clock_us(CLOCK_REALTIME) : 0;
    int head_only = h && h->method && strcmp(h->method, "HEAD") == 0;

    w->refused = 1;
    (void)response_send_error(c, status, head_only, w->cfg->send_timeout_s);
    log_info("%s %s: refused request with %d", c->remote_addr, c->remote_port,
             status);
    worker_access(w, c, h && h->protocol ? h : NULL, status,
                  strlen(response_reason(status)) + 1, start, 0);
}

static void
worker_request_init(struct worker *w, struct conn *c)
{
    struct forkd_req *req = &w->req;

    arena_reset(&req->arena);
    response_init(&req->resp, req->body_buf);
    req->conn = c;
    w->refused = 0;
    req->continue_sent = 0;
    req->body_status = 0;
    req->env = NULL;
    req->n_env = 0;
}

/* Serve the request whose head is c->buf[0..head_len).  Returns 1 if the
 * connection may carry another request. */
static int
worker_serve(struct worker *w, struct conn *c, size_t head_len)
{
    struct forkd_req *req = &w->req;
    int status, rc, keep;

    c->state = CONN_ACTIVE;
    c->head_len = c->body_off = head_len;
    worker_request_init(w, c);
    status =
        http_parse_head(&req->head, c->buf, head_len, req->headers, &w->limits);
    if (status == 0)
        status = environ_setup(req);
    if (status != 0) {
        worker_refuse(w, c, status, &req->head);
        return 0;
    }
    req->keep_alive = req->head.keep_alive && w->cfg->keepalive_s > 0 &&
                      !w->stopping && !worker_quit;
    req->start_mono_us = worker_clock_us(CLOCK_MONOTONIC);
    req->start_us = log_has_access() ? worker_clock_us(CLOCK_REALTIME) : 0;
    sb_busy(w->slot, req->head.method, req->head.target);
    w->active = c;
    atomic_store_explicit(&w->busy_since_ms, w->now_ms, memory_order_release);
    pthread_mutex_unlock(&w->lock);
    rc = w->app->desc->handle(req, w->app->state);
    pthread_mutex_lock(&w->lock);
    atomic_store_explicit(&w->busy_since_ms, 0, memory_order_relaxed);
    w->active = NULL;
    keep = response_finish(req, rc) == 0;
    if (keep && !req->head.body_done)
        keep = conn_drain_body(req, WORKER_DRAIN_MAX, 1) == 0;
    sb_idle(w->slot);
    c->requests++;
    if (log_has_access()) {
        const struct response *r = &req->resp;
        uint64_t body = r->status >= 400 && r->failed
                            ? strlen(response_reason(r->status)) + 1
                        : r->no_body ? 0
                                     : r->body_count;
        worker_access(w, c, &req->head, r->status, body, req->start_us,
                      worker_clock_us(CLOCK_MONOTONIC) - req->start_mono_us);
    }
    return keep;
}

/* Close c after its last request: lingering if input is left unread. */
static void
worker_end(struct worker *w, struct conn *c)
{
    if (w->refused || c->body_off < c->len || !w->req.head.body_done)
        worker_linger(w, c);
    else
        worker_close(w, c);
}

/* Serve every complete request in c's buffer; park c when it waits. */
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

static void
worker_process(struct worker *w, struct conn *c)
{
    for (;;) {
        size_t head_len;
        int status;
        if (c->scan.pos == 0 && worker_skip_empty_lines(c)) {
            if (worker_park(w, c, CONN_READING) < 0)
                worker_close(w, c);
            return;
        }
        enum http_scan_result r = http_scan_head(
            &c->scan, c->buf, c->len, &w->limits, &head_len, &status);

        if (r == HTTP_SCAN_MORE) {
            if (worker_park(w, c, CONN_READING) < 0)
                worker_close(w, c);
            return;
        }
        if (r == HTTP_SCAN_ERROR) {
            worker_refuse(w, c, status, NULL);
            worker_end(w, c);
            return;
        }
        struct worker_list *l = worker_list_of(w, c);
        if (l)
            worker_list_remove(l, c);
        if (!worker_serve(w, c, head_len)) {
            worker_end(w, c);
            return;
        }
        /* Pipelined bytes are served now; else wait without a read that
         * would only say EAGAIN. */
        if (conn_consume(c) == 0) {
            if (worker_park(w, c, CONN_IDLE) < 0)
                worker_close(w, c);
            return;
        }
    }
}

/* Bytes may have arrived on c. */
static void
worker_readable(struct worker *w, struct conn *c)
{
    ssize_t n;

    if (c->state == CONN_CLOSING) {
        worker_discard(w, c);
        return;
    }
    if (worker_buf_get(w, c) < 0) {
        log_error("out of memory for a connection buffer");
        worker_close(w, c);
        return;
    }
    n = conn_read(c);
    if (n > 0) {
        worker_process(w, c);
        return;
    }
    if (n < 0 && errno == EAGAIN) {
        if (c->len == 0)
            worker_buf_put(w, c);
        if (worker_park(w, c,
                        c->state == CONN_IDLE ? CONN_IDLE : CONN_READING) < 0)
            worker_close(w, c);
        return;
    }
    /* EOF or reset: a client leaving while idle is normal; mid-head it
     * is logged at debug only, as nginx does. */
    if (c->len > 0)
        log_debug("%s %s: closed in the middle of a request head",
                  c->remote_addr, c->remote_port);
    worker_close(w, c);
}

/* Make room for one more connection by closing the oldest waiting one,
 * idle keep-alive first. */
static void
worker_evict(struct worker *w)
{
    struct conn *c = w->closing.head ? w->closing.head
                     : w->idle.head  ? w->idle.head
                                     : w->reading.head;

    if (c) {
        log_info("max_connections (%u) reached: closing %s %s",
                 w->cfg->max_connections, c->remote_addr, c->remote_port);
        worker_close(w, c);
    }
}

static void
worker_accept(struct worker *w, struct listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct conn *c;
    int fd;

    if (w->free_conns == NULL)
        worker_evict(w);
    fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                 SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("accept on %s: %s", l->name, strerror(errno));
        return;
    }
    c = w->free_conns;
    w->free_conns = c->next;
    w->n_waiting++;
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->state = CONN_FREE; /* in no list until parked */
    c->listener = (unsigned)(l - w->ls);
    c->server_name = l->host;
    c->server_port = l->port;
    conn_set_peer(c, (struct sockaddr *)&ss, len);
    worker_readable(w, c);
}

/* --- handoff ------------------------------------------------------------- */

/* Take a connection a busy worker passed on (we are idle). */
static void
worker_take(struct worker *w)
{
    struct handoff_meta meta;
    struct conn *c;
    int fd;

    if (w->free_conns == NULL)
        worker_evict(w);
    c = w->free_conns;
    memset(&c->scan, 0, sizeof(c->scan));
    c->buf = NULL;
    if (worker_buf_get(w, c) < 0)
        return;
    if (handoff_recv(w->handoff_rx, &fd, &meta, c->buf, c->cap) < 0) {
        if (errno != EAGAIN)
            log_warn("handoff: %s", strerror(errno));
        worker_buf_put(w, c);
        return;
    }
    w->free_conns = c->next;
    w->n_waiting++;
    c->fd = fd;
    c->len = meta.len;
    c->state = CONN_FREE;
    c->in_epoll = 0;
    c->requests = 0;
    c->prev = c->next = NULL;
    memcpy(c->remote_addr, meta.remote_addr, sizeof(c->remote_addr));
    memcpy(c->remote_port, meta.remote_port, sizeof(c->remote_port));
    c->remote_addr[sizeof(c->remote_addr) - 1] = '\0';
    c->remote_port[sizeof(c->remote_port) - 1] = '\0';
    meta.listener = meta.listener < w->n_ls ? meta.listener : 0;
    c->listener = meta.listener;
    c->server_name = w->ls[meta.listener].host;
    c->server_port = w->ls[meta.listener].port;
    worker_readable(w, c);
}

/* Pass c, which has bytes waiting while this worker is busy, to the
 * handoff queue that idle workers read.  Runs in the watchdog thread. */
static void
worker_give(struct worker *w, struct conn *c)
{
    struct handoff_meta meta = {.len = (uint32_t)c->len,
                                .listener = c->listener};

    memcpy(meta.remote_addr, c->remote_addr, sizeof(meta.remote_addr));
    memcpy(meta.remote_port, c->remote_port, sizeof(meta.remote_port));
    if (handoff_send(w->handoff_tx, c->fd, &meta, c->buf) < 0) {
        log_debug("handoff of %s %s: %s", c->remote_addr, c->remote_port,
                  strerror(errno));
        return; /* it stays here and waits for this worker */
    }
    worker_close(w, c);
}

static int
worker_is_listener(struct worker *w, void *ptr)
{
    return (char *)ptr >= (char *)w->ls &&
           (char *)ptr < (char *)(w->ls + w->n_ls);
}

/* An epoll event of the worker's own, not a connection's. */
static int
worker_is_own(struct worker *w, void *ptr)
{
    return ptr == &w->handoff_rx || worker_is_listener(w, ptr);
}

/* The handler has been busy for a while: give every waiting connection
 * that has a request coming (never the one being served) away. */
static void
worker_give_ready(struct worker *w)
{
    struct epoll_event evs[WORKER_EVENTS];
    int n = epoll_wait(w->ep, evs, WORKER_EVENTS, 0);

    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (worker_is_own(w, c) || c == w->active)
            continue;
        if (c->state == CONN_IDLE || c->state == CONN_READING)
            worker_give(w, c);
    }
}

static void *
worker_watch(void *arg)
{
    struct worker *w = arg;
    const struct timespec period = {0, WORKER_WATCH_MS * 1000000L};

    while (!atomic_load(&w->watchdog_stop)) {
        nanosleep(&period, NULL);
        uint64_t since =
            atomic_load_explicit(&w->busy_since_ms, memory_order_acquire);
        if (since == 0 || sb_now_ms() < since + WORKER_HANDOFF_MS)
            continue;
        if (pthread_mutex_trylock(&w->lock) != 0)
            continue;
        if (atomic_load(&w->busy_since_ms) != 0 && w->n_waiting > 1)
            worker_give_ready(w);
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

static int
worker_start_watchdog(struct worker *w)
{
    pthread_attr_t attr;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_WATCH_STACK);
    rc = pthread_create(&w->watchdog, &attr, worker_watch, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    w->has_watchdog = 1;
    return 0;
}

static void
worker_stop_watchdog(struct worker *w)
{
    if (!w->has_watchdog)
        return;
    atomic_store(&w->watchdog_stop, 1);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->watchdog, NULL);
    pthread_mutex_lock(&w->lock);
    w->has_watchdog = 0;
}

/* --- the loop ------------------------------------------------------------ */

static int
worker_timeout_ms(struct worker *w)
{
    uint64_t next = w->now_ms + 1000; /* heartbeat at least every second */

    if (w->idle.head && w->idle.head->deadline_ms < next)
        next = w->idle.head->deadline_ms;
    if (w->reading.head && w->reading.head->deadline_ms < next)
        next = w->reading.head->deadline_ms;
    if (w->closing.head && w->closing.head->deadline_ms < next)
        next = w->closing.head->deadline_ms;
    if (w->log_since_ms && w->log_since_ms + WORKER_LOG_FLUSH_MS < next)
        next = w->log_since_ms + WORKER_LOG_FLUSH_MS;
    return next <= w->now_ms ? 0 : (int)(next - w->now_ms) + 1;
}

static void
worker_expire(struct worker *w)
{
    struct conn *c;

    while ((c = w->idle.head) && c->deadline_ms <= w->now_ms)
        worker_close(w, c);
    while ((c = w->closing.head) && c->deadline_ms <= w->now_ms)
        worker_close(w, c);
    while ((c = w->reading.head) && c->deadline_ms <= w->now_ms) {
        if (c->len > 0) {
            log_info("%s %s: header_timeout (%us): closing with 408",
                     c->remote_addr, c->remote_port, w->cfg->header_timeout_s);
            (void)response_send_error(c, 408, 0, 1);
        }
        worker_close(w, c);
    }
    if (w->log_since_ms && w->log_since_ms + WORKER_LOG_FLUSH_MS <= w->now_ms) {
        log_access_flush();
        w->log_since_ms = 0;
    }
}

/* Graceful stop: no new connections; idle and half-received ones close
 * (none has a request in flight: requests finish before we get here). */
static void
worker_begin_stop(struct worker *w)
{
    w->stopping = 1;
    w->slot->state = SB_STOPPING;
    for (size_t i = 0; i < w->n_ls; i++)
        (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, w->ls[i].fd, NULL);
    (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, w->handoff_rx, NULL);
    while (w->idle.head)
        worker_close(w, w->idle.head);
    while (w->reading.head)
        worker_close(w, w->reading.head);
    while (w->closing.head)
        worker_close(w, w->closing.head);
}

static void
worker_loop(struct worker *w)
{
    struct epoll_event evs[WORKER_EVENTS];

    while (!w->stopping) {
        int n = epoll_pwait(w->ep, evs, WORKER_EVENTS, worker_timeout_ms(w),
                            &worker_wait_mask);
        w->now_ms = sb_now_ms();
        w->slot->heartbeat_ms = w->now_ms;
        if (n < 0 && errno != EINTR) {
            log_error("epoll_pwait: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &w->handoff_rx)
                worker_take(w);
            else if (worker_is_listener(w, p))
                worker_accept(w, p);
            else
                worker_readable(w, p);
        }
        if (worker_reopen) {
            worker_reopen = 0;
            (void)log_reopen(); /* the master reports failures */
        }
        if (worker_quit)
            worker_begin_stop(w);
        worker_expire(w);
    }
}

/* --- set-up -------------------------------------------------------------- */

static int
worker_setup(struct worker *w)
{
    const struct cfg *cfg = w->cfg;
    struct epoll_event ev = {.events = EPOLLIN};
    size_t n = (size_t)cfg->max_connections + 1;

    w->limits =
        (struct http_limits){cfg->limit_request_line, cfg->limit_request_fields,
                             cfg->limit_request_field_size,
                             cfg->limit_request_head, cfg->limit_request_body};
    w->buf_cap = cfg->limit_request_head + WORKER_BODY_SPACE;
    w->conns = calloc(n, sizeof(*w->conns));
    w->free_bufs = calloc(n, sizeof(*w->free_bufs));
    w->req.headers = calloc(cfg->limit_request_fields, sizeof(*w->req.headers));
    w->req.body_buf = malloc(RESPONSE_BODY_BUF);
    if (!w->conns || !w->free_bufs || !w->req.headers || !w->req.body_buf ||
        arena_init(&w->req.arena, WORKER_ARENA) < 0)
        return -1;
    for (size_t i = n; i-- > 0;) {
        w->conns[i].fd = -1;
        w->conns[i].next = w->free_conns;
        w->free_conns = &w->conns[i];
    }
    w->req.cfg = cfg;
    w->req.limits = &w->limits;
    w->req.multiprocess = cfg->workers > 1;
    if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    /* Invariant: a busy worker never accepts (DESIGN 2).  The worker only
     * looks at the shared listen queue from epoll_wait, which it calls
     * only between requests.  Not EPOLLEXCLUSIVE: a worker woken for one
     * connection absorbs the wake-ups of those arriving before it leaves
     * epoll_wait, and they would wait for it while others are idle.  Every
     * idle worker wakes instead, and the losers' accept4 says EAGAIN. */
    for (size_t i = 0; i < w->n_ls; i++) {
        ev.data.ptr = &w->ls[i];
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->ls[i].fd, &ev) < 0)
            return -1;
    }
    ev.data.ptr = &w->handoff_rx;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->handoff_rx, &ev) < 0)
        return -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_lock(&w->lock);
    if (worker_start_watchdog(w) < 0)
        return -1;
    w->now_ms = sb_now_ms();
    w->pid = (int)getpid();
    w->tid = (int)gettid();
    snprintf(w->req.worker_pid, sizeof(w->req.worker_pid), "%d", w->pid);
    return 0;
}

static void
worker_teardown(struct worker *w)
{
    for (size_t i = 0; w->conns && i <= w->cfg->max_connections; i++)
        if (w->conns[i].state != CONN_FREE || w->conns[i].fd >= 0)
            worker_close(w, &w->conns[i]);
    for (size_t i = 0; i < w->n_free_bufs; i++)
        free(w->free_bufs[i]);
    free(w->free_bufs);
    free(w->conns);
    free(w->req.headers);
    free(w->req.body_buf);
    arena_fini(&w->req.arena);
    if (w->ep >= 0)
        close(w->ep);
}

void
worker_run(const struct worker_env *env, struct sb_slot *slot, int index)
{
    struct worker w = {.cfg = env->cfg,
                       .app = env->app,
                       .ls = env->ls,
                       .n_ls = env->n_ls,
                       .handoff_tx = env->handoff[0],
                       .handoff_rx = env->handoff[1],
                       .slot = slot,
                       .ep = -1};
    const struct cfg *cfg = env->cfg;
    struct app *app = env->app;
    int status = 0;

    worker_signals();
    slot->pid = getpid();
    slot->state = SB_BOOTING;
    if (worker_setup(&w) < 0) {
        log_error("worker %d: cannot start: %s", index, strerror(errno));
        _exit(WORKER_EXIT_BOOT);
    }
    if (app_init(app, cfg->opts, cfg->n_opts) < 0) {
        log_error("worker %d: %s: init failed", index, app->path);
        _exit(WORKER_EXIT_BOOT);
    }
    slot->heartbeat_ms = sb_now_ms();
    slot->state = SB_IDLE;
    log_debug("worker %d ready", index);
    worker_loop(&w);
    if (!w.stopping)
        status = 1;
    worker_stop_watchdog(&w);
    app_fini(app);
    worker_teardown(&w);
    log_close();
    exit(status);
}
