/* scoreboard: shared memory with one slot per worker and one entry per
 * handler thread, written by the worker (state, heartbeat, the request each
 * thread runs and since when) and read by the master (boot, timeouts).
 * Plain stores of aligned words: no locks, no syscalls. */
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

struct sb_slot {
    volatile pid_t pid;
    volatile int state;             /* enum sb_state */
    volatile uint64_t heartbeat_ms; /* monotonic */
    uint64_t requests;              /* served; atomic adds */
    volatile unsigned n_threads;    /* handler threads, set at boot */
};

struct sb_thread {
    volatile uint64_t req_start_ms; /* monotonic; 0 when idle */
    char request[SB_REQUEST_MAX];   /* "GET /path", may be torn */
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

/* Worker side: a thread starts a request ("METHOD TARGET") or ends it. */
void sb_busy(struct sb_thread *t, const char *method, const char *target,
             uint64_t now_ms);
void sb_idle(struct sb_slot *s, struct sb_thread *t);

#endif
