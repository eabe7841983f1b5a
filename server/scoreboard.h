/* scoreboard: shared memory with one slot per worker and one entry per
 * handler thread, written by the worker (state, heartbeat, the request each
 * thread runs and since when, what it served: counters and a latency
 * histogram) and read by the master (boot, timeouts, the stats endpoint).
 * Each thread writes only its own entry, with plain stores of aligned
 * words: no locks, no syscalls.  Readers tolerate a torn read and act on
 * nothing they read here (DESIGN 8). */
#ifndef FORKD_SCOREBOARD_H
#define FORKD_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sb_state {
    SB_EMPTY = 0, /* no worker */
    SB_BOOTING,   /* forked, app init not done */
    SB_IDLE,      /* serving (or waiting for work) */
    SB_STOPPING   /* graceful exit under way, or killed */
};

#define SB_REQUEST_MAX 96
#define SB_REMOTE_MAX 48

/* The latency histogram's upper bounds in microseconds, log-scaled from
 * 100 us to 60 s; a last bucket holds the rest (+Inf). */
#define SB_HIST_BOUNDS                                                         \
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,      \
        500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000
#define SB_HIST_N 19 /* the bounds and +Inf */

struct sb_slot {
    volatile pid_t pid;
    volatile int state;             /* enum sb_state */
    volatile uint64_t heartbeat_ms; /* monotonic */
    uint64_t requests;              /* served; atomic adds */
    volatile unsigned n_threads;    /* handler threads, set at boot */
    volatile unsigned gen;          /* the generation it runs, set at boot */
    volatile uint64_t started_s;    /* wall clock at boot */
    uint64_t handoffs_given;        /* connections passed to another */
    uint64_t handoffs_taken;        /* and taken from one */
    /* The spread (spread.h): connections held, whether the worker reads
     * its inbox, and what was sent there (by other workers, atomic adds)
     * and taken from it. */
    volatile unsigned conns;
    volatile int inbox;
    uint64_t inbox_sent;
    uint64_t inbox_taken;
    uint64_t spread_given; /* new connections passed to another's inbox */
    /* Set by the master after it sent the worker a signal: read it now,
     * not at the signalfd's turn among hundreds of ready connections. */
    volatile int knock;
};

/* What one handler thread served; the master sums them. */
struct sb_counts {
    uint64_t requests;
    uint64_t bytes;     /* response body bytes */
    uint64_t status[5]; /* by class: 1xx .. 5xx */
    uint64_t hist[SB_HIST_N];
    uint64_t dur_us; /* the sum of the durations */
};

struct sb_thread {
    volatile uint64_t req_start_ms; /* monotonic; 0 when idle */
    char request[SB_REQUEST_MAX];   /* "GET /path", may be torn */
    char remote[SB_REMOTE_MAX];     /* its client, may be torn */
    struct sb_counts counts;
};

struct sb {
    struct sb_slot *slots;     /* n_slots */
    struct sb_thread *threads; /* n_slots * n_threads */
    size_t n_slots, n_threads;
};

/* Map zeroed slots and thread entries shared across fork.  Returns 0 or
 * -1. */
int sb_open(struct sb *sb, size_t n_slots, size_t n_threads);
void sb_close(struct sb *sb);

/* The entry of thread t of worker slot i. */
struct sb_thread *sb_thread(const struct sb *sb, size_t i, size_t t);

/* Clear slot i and its threads for a new worker. */
void sb_reset(struct sb *sb, size_t i);

/* Monotonic milliseconds (CLOCK_MONOTONIC_COARSE, no syscall). */
uint64_t sb_now_ms(void);

/* Handler threads not in a request, over the serving workers other than
 * slot except: how many handed-off connections would be taken at once. */
unsigned sb_idle_threads(const struct sb *sb, size_t except);

/* Worker side: a thread starts a request ("METHOD TARGET" from remote)
 * or ends it. */
void sb_busy(struct sb_thread *t, const char *method, const char *target,
             const char *remote, uint64_t now_ms);
void sb_idle(struct sb_slot *s, struct sb_thread *t);

/* Worker side: a response went out (status, body bytes, duration). */
void sb_count(struct sb_counts *c, int status, uint64_t bytes, uint64_t dur_us);

/* Reader side: add c to *sum. */
void sb_add_counts(struct sb_counts *sum, const struct sb_counts *c);

/* The upper bound of histogram bucket i in microseconds (0 for +Inf). */
uint64_t sb_hist_bound(unsigned i);

#endif
