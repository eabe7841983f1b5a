#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"

/* --- a growing text ---------------------------------------------------- */

struct stats_buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void stats_printf(struct stats_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stats_printf(struct stats_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (int tries = 0; !b->oom && tries < 2; tries++) {
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                      fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 16384) + (size_t)n;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* --- what is summed ---------------------------------------------------- */

struct stats_sum {
    struct sb_counts c;
    uint64_t given, taken, spread;
    unsigned workers[4]; /* by enum sb_state */
    unsigned busy, idle; /* handler threads of serving workers */
};

static size_t
stats_threads(const struct stats_view *v, size_t i)
{
    size_t n = v->board->slots[i].n_threads;

    return n < v->board->n_threads ? n : v->board->n_threads;
}

/* The name of a worker's scoreboard state, as every view shows it. */
static const char *
stats_state_name(int state)
{
    static const char *const names[] = {"empty", "booting", "serving",
                                        "stopping"};

    return (unsigned)state < 4 ? names[state] : names[0];
}

/* What worker slot i served, over its threads. */
static void
stats_worker_counts(const struct stats_view *v, size_t i, struct sb_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t t = 0; t < v->board->n_threads; t++)
        sb_add_counts(c, &sb_thread(v->board, i, t)->counts);
}

static void
stats_sum(const struct stats_view *v, struct stats_sum *s)
{
    memset(s, 0, sizeof(*s));
    s->c = v->dead;
    s->given = v->handoffs_given;
    s->taken = v->handoffs_taken;
    s->spread = v->spread_given;
    for (size_t i = 0; i < v->n_slots; i++) {
        const struct sb_slot *slot = &v->board->slots[i];
        if (v->pid[i] <= 0)
            continue;
        unsigned st = (unsigned)slot->state < 4 ? (unsigned)slot->state : 0;
        s->workers[st]++;
        s->given += slot->handoffs_given;
        s->taken += slot->handoffs_taken;
        s->spread += slot->spread_given;
        for (size_t t = 0; t < v->board->n_threads; t++) {
            const struct sb_thread *th = sb_thread(v->board, i, t);
            sb_add_counts(&s->c, &th->counts);
            if (t < stats_threads(v, i) && st == SB_IDLE)
                th->req_start_ms ? s->busy++ : s->idle++;
        }
    }
}

/* The Rss of pid in kB, 0 if unknown: data to show, read from /proc. */
static unsigned long
stats_rss_kb(pid_t pid)
{
    char path[64];
    unsigned long size = 0, rss = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024);
}

/* --- the listen queues ------------------------------------------------- */

/* A unix socket's queue through sock_diag: UNIX_DIAG_RQLEN of a listening
 * socket is its waiting connections and its backlog. */
static int
stats_unix_queue(int fd, struct stats_queue *q)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req r;
    } req = {0};
    union {
        struct nlmsghdr nlh;
        char buf[8192];
    } resp;
    struct stat st;
    int nl, ok = -1;
    ssize_t n;

    if (fstat(fd, &st) < 0 ||
        (nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
                     NETLINK_SOCK_DIAG)) < 0)
        return -1;
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_states = 1u << 10; /* TCP_LISTEN */
    req.r.udiag_ino = (unsigned)st.st_ino;
    req.r.udiag_show = UDIAG_SHOW_RQLEN;
    req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
    struct timeval tv = {0, 100000}; /* the master waits no longer */
    (void)setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(nl, &req, sizeof(req), 0) == (ssize_t)sizeof(req) &&
        (n = recv(nl, &resp, sizeof(resp), 0)) > 0) {
        struct nlmsghdr *h = &resp.nlh;
        if (NLMSG_OK(h, (size_t)n) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            struct unix_diag_msg *m = NLMSG_DATA(h);
            struct rtattr *a = (struct rtattr *)(m + 1);
            int left = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
            for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
                if (a->rta_type == UNIX_DIAG_RQLEN &&
                    RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                    struct unix_diag_rqlen *rq = RTA_DATA(a);
                    q->now = rq->udiag_rqueue;
                    q->max = rq->udiag_wqueue;
                    ok = 0;
                }
            }
        }
    }
    close(nl);
    return ok;
}

/* A TCP socket's: tcpi_unacked of a listening socket is its accept queue,
 * tcpi_sacked its backlog; the socket's drop count (SO_MEMINFO) is what
 * the kernel refused when it was full. */
static int
stats_tcp_queue(int fd, struct stats_queue *q)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return -1;
    q->now = ti.tcpi_unacked;
    q->max = ti.tcpi_sacked;
    return 0;
}

/* The kernel's count of connections dropped because a listen queue was
 * full: host-wide, as Linux counts it (a listening socket's own drop count
 * also holds the handshake ACKs TCP_DEFER_ACCEPT discards). */
static uint64_t
stats_host_overflows(void)
{
    char names[4096], values[4096];
    unsigned long long v = 0;
    FILE *f = fopen("/proc/net/netstat", "re");

    if (f == NULL)
        return 0;
    while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
        if (strncmp(names, "TcpExt:", 7) != 0)
            continue;
        char *sn, *sx;
        char *a = strtok_r(names + 7, " \n", &sn);
        char *b = strtok_r(values + 7, " \n", &sx);
        for (; a && b;
             a = strtok_r(NULL, " \n", &sn), b = strtok_r(NULL, " \n", &sx))
            if (strcmp(a, "ListenOverflows") == 0)
                v = strtoull(b, NULL, 10);
        break;
    }
    fclose(f);
    return v;
}

void
stats_sample(struct stats_view *v)
{
    uint64_t now = sb_now_ms();
    unsigned last = (v->next_snap + STATS_SNAPS - 1) % STATS_SNAPS;

    if (v->snaps[last].at_ms == 0 ||
        now - v->snaps[last].at_ms >= STATS_SNAP_MS) {
        struct stats_sum sum;
        stats_sum(v, &sum);
        v->snaps[v->next_snap].at_ms = now ? now : 1;
        v->snaps[v->next_snap].c = sum.c;
        v->next_snap = (v->next_snap + 1) % STATS_SNAPS;
    }
    for (size_t i = 0; i < v->n_ls; i++) {
        struct stats_queue *q = &v->queue[i];
        const struct listener *l = &v->ls[i];
        int rc = l->fd < 0              ? -1
                 : l->family == AF_UNIX ? stats_unix_queue(l->fd, q)
                                        : stats_tcp_queue(l->fd, q);
        q->known = rc == 0;
        if (q->known && q->now > q->peak)
            q->peak = q->now;
    }
}

/* --- /metrics ---------------------------------------------------------- */

static void
stats_metric(struct stats_buf *b, const char *name, const char *type,
             const char *help)
{
    stats_printf(b, "# HELP forkd_%s %s\n# TYPE forkd_%s %s\n", name, help,
                 name, type);
}

static void
stats_histogram(struct stats_buf *b, const struct sb_counts *c)
{
    uint64_t cum = 0;

    stats_metric(b, "request_duration_seconds", "histogram",
                 "Time from a request's whole head to its last byte.");
    for (unsigned i = 0; i < SB_HIST_N; i++) {
        cum += c->hist[i];
        if (i < SB_HIST_N - 1)
            stats_printf(b,
                         "forkd_request_duration_seconds_bucket{le=\"%g\"} "
                         "%llu\n",
                         (double)sb_hist_bound(i) / 1e6,
                         (unsigned long long)cum);
        else
            stats_printf(b,
                         "forkd_request_duration_seconds_bucket{le=\"+Inf\"} "
                         "%llu\n",
                         (unsigned long long)cum);
    }
    stats_printf(b, "forkd_request_duration_seconds_sum %.6f\n",
                 (double)c->dur_us / 1e6);
    stats_printf(b, "forkd_request_duration_seconds_count %llu\n",
                 (unsigned long long)cum);
}

static void
stats_queues(struct stats_buf *b, const struct stats_view *v)
{
    static const char *const what[][3] = {
        {"listen_queue_length", "gauge", "Connections waiting to be taken."},
        {"listen_queue_peak", "gauge", "The most seen waiting at once."},
        {"listen_queue_limit", "gauge", "The listen backlog."}};

    for (unsigned k = 0; k < 3; k++) {
        stats_metric(b, what[k][0], what[k][1], what[k][2]);
        for (size_t i = 0; i < v->n_ls; i++) {
            const struct stats_queue *q = &v->queue[i];
            unsigned long long x = k == 0 ? q->now : k == 1 ? q->peak : q->max;
            if (q->known)
                stats_printf(b, "forkd_%s{listener=\"%s\"} %llu\n", what[k][0],
                             v->ls[i].name, x);
        }
    }
    stats_metric(b, "host_listen_overflows_total", "counter",
                 "TCP connections the host dropped with a listen queue full "
                 "(every server's: Linux counts them host-wide).");
    stats_printf(b, "forkd_host_listen_overflows_total %llu\n",
                 (unsigned long long)v->host_overflows);
}

static void
stats_workers(struct stats_buf *b, const struct stats_view *v,
              const struct stats_sum *s)
{
    static const char *const reasons[] = {"crash", "timeout", "exit", "recycle",
                                          "reload"};

    stats_metric(b, "workers", "gauge", "Worker processes by state.");
    for (unsigned k = 1; k < 4; k++)
        stats_printf(b, "forkd_workers{state=\"%s\"} %u\n",
                     stats_state_name((int)k), s->workers[k]);
    stats_metric(b, "workers_wanted", "gauge", "Workers the master keeps.");
    stats_printf(b, "forkd_workers_wanted %u\n", v->target);
    stats_metric(b, "handler_threads", "gauge",
                 "Handler threads of serving workers, in a request or not.");
    stats_printf(b, "forkd_handler_threads{state=\"busy\"} %u\n", s->busy);
    stats_printf(b, "forkd_handler_threads{state=\"idle\"} %u\n", s->idle);
    stats_metric(b, "worker_restarts_total", "counter",
                 "Workers replaced, by why they ended.");
    for (unsigned k = 0; k < STATS_N_REASONS; k++)
        stats_printf(b, "forkd_worker_restarts_total{reason=\"%s\"} %llu\n",
                     reasons[k], (unsigned long long)v->restarts[k]);
    stats_metric(b, "worker_resident_bytes", "gauge",
                 "Resident memory of each worker.");
    for (size_t i = 0; i < v->n_slots; i++)
        if (v->pid[i] > 0)
            stats_printf(b, "forkd_worker_resident_bytes{slot=\"%zu\"} %lu\n",
                         i, stats_rss_kb(v->pid[i]) * 1024);
    stats_metric(b, "worker_connections", "gauge",
                 "Client connections each worker holds.");
    for (size_t i = 0; i < v->n_slots; i++)
        if (v->pid[i] > 0)
            stats_printf(b, "forkd_worker_connections{slot=\"%zu\"} %u\n", i,
                         v->board->slots[i].conns);
}

char *
stats_metrics(struct stats_view *v, size_t *len)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    struct stats_buf b = {0};
    struct stats_sum s;

    stats_sum(v, &s);
    stats_metric(&b, "requests_total", "counter",
                 "Responses sent, by status class.");
    for (unsigned k = 0; k < 5; k++)
        stats_printf(&b, "forkd_requests_total{code=\"%s\"} %llu\n", classes[k],
                     (unsigned long long)s.c.status[k]);
    stats_metric(&b, "response_body_bytes_total", "counter",
                 "Response body bytes sent.");
    stats_printf(&b, "forkd_response_body_bytes_total %llu\n",
                 (unsigned long long)s.c.bytes);
    stats_histogram(&b, &s.c);
    stats_workers(&b, v, &s);
    stats_queues(&b, v);
    stats_metric(&b, "handoffs_total", "counter",
                 "Waiting connections passed from a busy worker to another: "
                 "given, and taken by the other.");
    stats_printf(&b, "forkd_handoffs_total{direction=\"given\"} %llu\n",
                 (unsigned long long)s.given);
    stats_printf(&b, "forkd_handoffs_total{direction=\"taken\"} %llu\n",
                 (unsigned long long)s.taken);
    stats_metric(&b, "spread_total", "counter",
                 "New connections passed by the worker that accepted them to "
                 "one holding fewer.");
    stats_printf(&b, "forkd_spread_total %llu\n", (unsigned long long)s.spread);
    stats_metric(&b, "generation", "gauge",
                 "1 at start, one more at each reload (HUP).");
    stats_printf(&b, "forkd_generation %u\n", v->generation);
    stats_metric(&b, "start_time_seconds", "gauge",
                 "When the master started, in seconds since the epoch.");
    stats_printf(&b, "forkd_start_time_seconds %llu\n",
                 (unsigned long long)v->start_s);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* --- /status ----------------------------------------------------------- */

/* s as a JSON string's contents: the scoreboard's text is the workers'
 * and may hold anything. */
static void
stats_json_str(struct stats_buf *b, const char *s, size_t max)
{
    for (size_t i = 0; i < max && s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            stats_printf(b, "\\u%04x", ch);
        else
            stats_printf(b, "%c", ch);
    }
}

static void
stats_status_worker(struct stats_buf *b, const struct stats_view *v, size_t i,
                    uint64_t now_ms)
{
    const struct sb_slot *slot = &v->board->slots[i];
    struct sb_counts c;

    stats_worker_counts(v, i, &c);
    stats_printf(
        b,
        "{\"slot\":%zu,\"pid\":%d,\"state\":\"%s\",\"generation\":%u,"
        "\"started\":%llu,\"requests\":%llu,\"bytes\":%llu,"
        "\"status\":[%llu,%llu,%llu,%llu,%llu],\"handoffs_given\":%llu,"
        "\"handoffs_taken\":%llu,\"connections\":%u,\"spread_given\":%llu,"
        "\"rss_kb\":%lu,\"threads\":[",
        i, (int)v->pid[i], stats_state_name(slot->state), slot->gen,
        (unsigned long long)slot->started_s, (unsigned long long)c.requests,
        (unsigned long long)c.bytes, (unsigned long long)c.status[0],
        (unsigned long long)c.status[1], (unsigned long long)c.status[2],
        (unsigned long long)c.status[3], (unsigned long long)c.status[4],
        (unsigned long long)slot->handoffs_given,
        (unsigned long long)slot->handoffs_taken, slot->conns,
        (unsigned long long)slot->spread_given, stats_rss_kb(v->pid[i]));
    for (size_t t = 0; t < stats_threads(v, i); t++) {
        const struct sb_thread *th = sb_thread(v->board, i, t);
        uint64_t since = th->req_start_ms;
        stats_printf(b, "%s{\"requests\":%llu,", t ? "," : "",
                     (unsigned long long)th->counts.requests);
        if (since == 0 || since > now_ms) {
            stats_printf(b, "\"busy\":false}");
            continue;
        }
        stats_printf(b, "\"busy\":true,\"ms\":%llu,\"request\":\"",
                     (unsigned long long)(now_ms - since));
        stats_json_str(b, th->request, sizeof(th->request));
        stats_printf(b, "\",\"remote\":\"");
        stats_json_str(b, th->remote, sizeof(th->remote));
        stats_printf(b, "\"}");
    }
    stats_printf(b, "]}");
}

char *
stats_status(struct stats_view *v, size_t *len)
{
    struct stats_buf b = {0};
    struct stats_sum s;
    uint64_t now_ms = sb_now_ms();
    int first = 1;

    stats_sum(v, &s);
    stats_printf(
        &b,
        "{\"start_time\":%llu,\"now\":%llu,\"generation\":%u,"
        "\"workers_wanted\":%u,\"threads\":{\"busy\":%u,\"idle\":%u},"
        "\"requests\":%llu,\"bytes\":%llu,\"status\":[%llu,%llu,%llu,"
        "%llu,%llu],\"duration_sum_us\":%llu,\"histogram_us\":[",
        (unsigned long long)v->start_s, (unsigned long long)time(NULL),
        v->generation, v->target, s.busy, s.idle,
        (unsigned long long)s.c.requests, (unsigned long long)s.c.bytes,
        (unsigned long long)s.c.status[0], (unsigned long long)s.c.status[1],
        (unsigned long long)s.c.status[2], (unsigned long long)s.c.status[3],
        (unsigned long long)s.c.status[4], (unsigned long long)s.c.dur_us);
    for (unsigned i = 0; i < SB_HIST_N; i++)
        stats_printf(&b, "%s[%llu,%llu]", i ? "," : "",
                     (unsigned long long)sb_hist_bound(i),
                     (unsigned long long)s.c.hist[i]);
    stats_printf(&b, "],\"listeners\":[");
    for (size_t i = 0; i < v->n_ls; i++) {
        const struct stats_queue *q = &v->queue[i];
        stats_printf(&b, "%s{\"name\":\"", i ? "," : "");
        stats_json_str(&b, v->ls[i].name, sizeof(v->ls[i].name));
        stats_printf(&b,
                     "\",\"queue\":%u,\"peak\":%u,\"limit\":%u,"
                     "\"known\":%s}",
                     q->now, q->peak, q->max, q->known ? "true" : "false");
    }
    stats_printf(&b, "],\"host_listen_overflows\":%llu,\"workers\":[",
                 (unsigned long long)v->host_overflows);
    for (size_t i = 0; i < v->n_slots; i++) {
        if (v->pid[i] <= 0)
            continue;
        stats_printf(&b, "%s", first ? "" : ",");
        stats_status_worker(&b, v, i, now_ms);
        first = 0;
    }
    stats_printf(&b, "]}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* --- /status?text: the screen of forkd status --------------------------- */

/* The bound of the bucket where the p-th fraction of the requests in h
 * (n of them) falls, in microseconds; 0 for +Inf. */
static uint64_t
stats_percentile(const uint64_t *h, uint64_t n, double p)
{
    uint64_t cum = 0, want = (uint64_t)(p * (double)n + 0.999999);

    for (unsigned i = 0; i < SB_HIST_N; i++)
        if ((cum += h[i]) >= want)
            return sb_hist_bound(i);
    return 0;
}

static void
stats_dur(char *out, size_t cap, uint64_t us)
{
    if (us == 0)
        snprintf(out, cap, "> 60 s");
    else if (us < 1000)
        snprintf(out, cap, "%llu us", (unsigned long long)us);
    else if (us < 1000000)
        snprintf(out, cap, "%.3g ms", (double)us / 1e3);
    else
        snprintf(out, cap, "%.3g s", (double)us / 1e6);
}

/* Requests per second and p50/p99 over the last minute of snapshots. */
static void
stats_screen_minute(struct stats_buf *b, const struct stats_view *v,
                    const struct sb_counts *now)
{
    const struct stats_snap *old = NULL;
    uint64_t t = sb_now_ms(), h[SB_HIST_N], n;
    char p50[32], p99[32];

    for (unsigned k = 0; k < STATS_SNAPS; k++) {
        const struct stats_snap *x = &v->snaps[k];
        if (x->at_ms && t - x->at_ms <= 60000 + STATS_SNAP_MS &&
            (old == NULL || x->at_ms < old->at_ms))
            old = x;
    }
    if (old == NULL || t <= old->at_ms) {
        stats_printf(b, "last minute: no sample yet\n");
        return;
    }
    n = now->requests - old->c.requests;
    for (unsigned i = 0; i < SB_HIST_N; i++)
        h[i] = now->hist[i] - old->c.hist[i];
    stats_dur(p50, sizeof(p50), stats_percentile(h, n, 0.50));
    stats_dur(p99, sizeof(p99), stats_percentile(h, n, 0.99));
    stats_printf(b, "last %llu s: %.1f req/s",
                 (unsigned long long)(t - old->at_ms) / 1000,
                 (double)n * 1000.0 / (double)(t - old->at_ms));
    if (n)
        stats_printf(b, ", p50 <= %s, p99 <= %s", p50, p99);
    stats_printf(b, "\n");
}

static void
stats_screen_head(struct stats_buf *b, const struct stats_view *v,
                  const struct stats_sum *s)
{
    uint64_t up = (uint64_t)time(NULL) - v->start_s;

    stats_printf(b,
                 "forkd: up %lluh%02llum%02llus, generation %u; workers %u "
                 "serving of %u wanted (%u booting, %u stopping); threads "
                 "%u busy, %u idle\n",
                 (unsigned long long)up / 3600,
                 (unsigned long long)up / 60 % 60, (unsigned long long)up % 60,
                 v->generation, s->workers[SB_IDLE], v->target,
                 s->workers[SB_BOOTING], s->workers[SB_STOPPING], s->busy,
                 s->idle);
    for (size_t i = 0; i < v->n_ls; i++) {
        const struct stats_queue *q = &v->queue[i];
        if (q->known)
            stats_printf(b, "listen queue %s: %u now, %u peak (limit %u)\n",
                         v->ls[i].name, q->now, q->peak, q->max);
    }
    stats_printf(b, "listen queue overflows on this host (TCP): %llu\n",
                 (unsigned long long)v->host_overflows);
    stats_printf(
        b,
        "requests: %llu (2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu); "
        "hand-offs %llu\n",
        (unsigned long long)s->c.requests, (unsigned long long)s->c.status[1],
        (unsigned long long)s->c.status[2], (unsigned long long)s->c.status[3],
        (unsigned long long)s->c.status[4], (unsigned long long)s->given);
    stats_screen_minute(b, v, &s->c);
}

static void
stats_screen_worker(struct stats_buf *b, const struct stats_view *v, size_t i,
                    uint64_t now_ms)
{
    const struct sb_slot *slot = &v->board->slots[i];
    struct sb_counts c;

    stats_worker_counts(v, i, &c);
    stats_printf(b, "%4zu %7d %3u %-8s %9llu %8lu", i, (int)v->pid[i],
                 slot->gen, stats_state_name(slot->state),
                 (unsigned long long)c.requests, stats_rss_kb(v->pid[i]));
    for (size_t t = 0; t < stats_threads(v, i); t++) {
        const struct sb_thread *th = sb_thread(v->board, i, t);
        uint64_t since = th->req_start_ms;
        char dur[32];
        if (t > 0)
            stats_printf(b, "%*s", 44, "");
        if (since == 0 || since > now_ms) {
            stats_printf(b, " %3zu idle\n", t);
            continue;
        }
        stats_dur(dur, sizeof(dur), (now_ms - since) * 1000);
        stats_printf(b, " %3zu busy %9s  ", t, dur);
        stats_json_str(b, th->request, 60);
        stats_printf(b, " (");
        stats_json_str(b, th->remote, sizeof(th->remote));
        stats_printf(b, ")\n");
    }
    if (stats_threads(v, i) == 0)
        stats_printf(b, "\n");
}

char *
stats_screen(struct stats_view *v, size_t *len)
{
    struct stats_buf b = {0};
    struct stats_sum s;
    uint64_t now_ms = sb_now_ms();

    stats_sum(v, &s);
    stats_screen_head(&b, v, &s);
    stats_printf(&b, "\n%4s %7s %3s %-8s %9s %8s %4s %-4s %9s  %s\n", "slot",
                 "pid", "gen", "state", "requests", "rss kB", "thr", "", "for",
                 "request (client)");
    for (size_t i = 0; i < v->n_slots; i++)
        if (v->pid[i] > 0)
            stats_screen_worker(&b, v, i, now_ms);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* --- the endpoint ------------------------------------------------------ */

void
stats_init(struct stats *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    for (size_t i = 0; i < STATS_CLIENTS; i++)
        s->c[i].fd = -1;
}

int
stats_open(struct stats *s, const char *addr)
{
    struct listener l;

    stats_init(s);
    if (listen_open(&l, addr, 16) < 0)
        return -1;
    /* Only the socket and the path are kept. */
    s->fd = l.fd;
    l.fd = -1;
    if (l.unix_path)
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", l.unix_path);
    listen_close(&l, 0);
    (void)fcntl(s->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

static void
stats_drop(struct stats_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void
stats_close(struct stats *s, int unlink_path)
{
    for (size_t i = 0; i < STATS_CLIENTS; i++)
        stats_drop(&s->c[i]);
    if (s->fd >= 0) {
        close(s->fd);
        if (unlink_path && s->unix_path[0])
            (void)unlink(s->unix_path);
    }
    s->fd = -1;
}

size_t
stats_pollfds(const struct stats *s, struct pollfd *p)
{
    size_t n = 0, busy = 0;

    for (size_t i = 0; i < STATS_CLIENTS; i++) {
        if (s->c[i].fd < 0)
            continue;
        busy++;
        p[n].fd = s->c[i].fd;
        p[n++].events = s->c[i].out ? POLLOUT : POLLIN;
    }
    if (s->fd >= 0 && busy < STATS_CLIENTS) {
        p[n].fd = s->fd;
        p[n++].events = POLLIN;
    }
    return n;
}

/* The figures a response shows: the queues, and the host's overflow
 * count, read here rather than at every loop of the master. */
static void
stats_refresh(struct stats_view *v)
{
    stats_sample(v);
    v->host_overflows = stats_host_overflows();
}

/* The response to the request in c->req, ready in c->out. */
static void
stats_answer(struct stats_client *c, struct stats_view *v)
{
    const char *type = "text/plain; charset=utf-8", *status = "200 OK";
    char *body = NULL, head[256];
    size_t blen = 0;
    int n;

    if (strncmp(c->req, "GET /metrics ", 13) == 0) {
        stats_refresh(v);
        body = stats_metrics(v, &blen);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strncmp(c->req, "GET /status?text ", 17) == 0) {
        stats_refresh(v);
        body = stats_screen(v, &blen);
    } else if (strncmp(c->req, "GET /status ", 12) == 0) {
        stats_refresh(v);
        body = stats_status(v, &blen);
        type = "application/json";
    } else {
        status = strncmp(c->req, "GET ", 4) ? "405 Method Not Allowed"
                                            : "404 Not Found";
    }
    if (body == NULL && strcmp(status, "200 OK") == 0)
        status = "500 Internal Server Error";
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 status, type, blen);
    if ((c->out = malloc((size_t)n + blen)) != NULL) {
        memcpy(c->out, head, (size_t)n);
        if (blen)
            memcpy(c->out + n, body, blen);
        c->out_len = (size_t)n + blen;
    }
    free(body);
}

static void
stats_accept(struct stats *s, uint64_t now_ms)
{
    for (size_t i = 0; i < STATS_CLIENTS; i++) {
        if (s->c[i].fd >= 0)
            continue;
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        s->c[i].fd = fd;
        s->c[i].deadline_ms = now_ms + STATS_TIMEOUT_MS;
    }
}

/* Read what came, answer once the head is whole; write what fits. */
static void
stats_step(struct stats_client *c, struct stats_view *v)
{
    ssize_t n;

    if (c->out == NULL) {
        n = read(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            stats_drop(c);
            return;
        }
        c->len += n > 0 ? (size_t)n : 0;
        c->req[c->len] = '\0';
        if (strstr(c->req, "\r\n\r\n") == NULL &&
            strstr(c->req, "\n\n") == NULL) {
            if (c->len >= sizeof(c->req) - 1)
                stats_drop(c); /* a head this long is not a scraper's */
            return;
        }
        stats_answer(c, v);
        if (c->out == NULL) {
            stats_drop(c);
            return;
        }
    }
    n = send(c->fd, c->out + c->sent, c->out_len - c->sent,
             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
        c->sent += (size_t)n;
    if (c->sent == c->out_len || (n < 0 && errno != EAGAIN && errno != EINTR))
        stats_drop(c);
}

void
stats_serve(struct stats *s, struct stats_view *v, uint64_t now_ms)
{
    if (s->fd < 0)
        return;
    stats_accept(s, now_ms);
    for (size_t i = 0; i < STATS_CLIENTS; i++) {
        struct stats_client *c = &s->c[i];
        if (c->fd < 0)
            continue;
        if (now_ms >= c->deadline_ms) {
            stats_drop(c); /* slow or stuck: the master moves on */
            continue;
        }
        stats_step(c, v);
    }
}
