/* stats: the master's stats endpoint (stats = ADDR in [server], off by
 * default): GET /metrics in Prometheus's text exposition format, GET
 * /status as JSON, built from the scoreboard, the master's own totals and
 * the listen queues.  It runs in the master's loop and serves numbers,
 * never a handler (DESIGN 6): every client is non-blocking and bounded in
 * number, size and time, so that none can stall the master. */
#ifndef FORKD_STATS_H
#define FORKD_STATS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scoreboard.h"

struct listener;

#define STATS_CLIENTS 8
#define STATS_TIMEOUT_MS 2000
#define STATS_REQ_MAX 2048

/* Why workers were replaced, for forkd_worker_restarts_total. */
enum stats_reason {
    STATS_CRASH,   /* killed by a signal the master did not send */
    STATS_TIMEOUT, /* killed for a request over timeout */
    STATS_EXIT,    /* exited with an error of its own */
    STATS_RECYCLE, /* max_requests, or TTOU */
    STATS_RELOAD,  /* retired by HUP */
    STATS_N_REASONS
};

/* One listening socket's accept queue, sampled. */
struct stats_queue {
    unsigned now, peak, max; /* waiting connections; the backlog */
    int known;               /* now and max could be read */
};

/* The summed counters every STATS_SNAP_MS over the last minute: the
 * request rate and latency percentiles of /status come from the newest
 * against the oldest. */
#define STATS_SNAP_MS 5000
#define STATS_SNAPS 13

struct stats_snap {
    uint64_t at_ms; /* 0: empty */
    struct sb_counts c;
};

/* What the master knows beyond the scoreboard. */
struct stats_view {
    const struct sb *board;
    const pid_t *pid; /* the master's table: pid > 0 is a live worker */
    size_t n_slots;
    struct sb_counts dead;                   /* of the workers gone */
    uint64_t restarts[STATS_N_REASONS];      /* workers replaced, by reason */
    uint64_t handoffs_given, handoffs_taken; /* of the workers gone */
    uint64_t spread_given;                   /* the same */
    unsigned generation, target;
    uint64_t start_s; /* the master's start, wall clock */
    const struct listener *ls;
    struct stats_queue *queue; /* n_ls, updated by stats_sample */
    size_t n_ls;
    uint64_t host_overflows; /* TcpExt ListenOverflows, read per response */
    struct stats_snap snaps[STATS_SNAPS]; /* a ring, by stats_sample */
    unsigned next_snap;
};

struct stats_client {
    int fd;
    uint64_t deadline_ms;
    size_t len; /* of req */
    char *out;  /* the response, malloc'd once the request is in */
    size_t out_len, sent;
    char req[STATS_REQ_MAX];
};

struct stats {
    int fd;              /* listening, -1: off */
    char unix_path[108]; /* to unlink at close, or "" */
    struct stats_client c[STATS_CLIENTS];
};

/* Bind and listen on addr (a unix path or a loopback HOST:PORT).  0, or
 * -1 with errno. */
int stats_open(struct stats *s, const char *addr);

/* Stop serving; unlink a unix socket's path if unlink_path. */
void stats_close(struct stats *s, int unlink_path);

/* Before stats_open: nothing open. */
void stats_init(struct stats *s);

/* The descriptors to poll (the listener while there is room, each
 * client): stored in p[0..n), n returned (at most 1 + STATS_CLIENTS). */
size_t stats_pollfds(const struct stats *s, struct pollfd *p);

/* Accept, read, answer and expire, without ever blocking. */
void stats_serve(struct stats *s, struct stats_view *v, uint64_t now_ms);

/* Read the accept queue of every listener into v->queue, and take a
 * snapshot of the counters if the last is STATS_SNAP_MS old. */
void stats_sample(struct stats_view *v);

/* The bodies, for tests and for stats_serve: malloc'd, *len set; NULL if
 * out of memory. */
char *stats_metrics(struct stats_view *v, size_t *len);
char *stats_status(struct stats_view *v, size_t *len);

/* /status?text: the screen of forkd status. */
char *stats_screen(struct stats_view *v, size_t *len);

#endif
