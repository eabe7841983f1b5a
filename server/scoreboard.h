/* scoreboard: shared memory with one slot per worker, written by the
 * worker (state, heartbeat, current request) and read by the master (boot,
 * timeouts).  Plain stores of aligned words: no locks, no syscalls. */
#ifndef FORKD_SCOREBOARD_H
#define FORKD_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sb_state {
    SB_EMPTY = 0, /* no worker */
    SB_BOOTING,   /* forked, app init not done */
    SB_IDLE,      /* waiting for work */
    SB_BUSY,      /* in a handler */
    SB_STOPPING   /* graceful exit under way */
};

#define SB_REQUEST_MAX 96

struct sb_slot {
    volatile pid_t pid;
    volatile int state;             /* enum sb_state */
    volatile uint64_t heartbeat_ms; /* monotonic */
    volatile uint64_t requests;     /* served */
    volatile uint64_t req_start_ms; /* monotonic, of the current request */
    char request[SB_REQUEST_MAX];   /* "GET /path", may be torn */
};

/* Map n zeroed slots shared across fork.  Returns NULL on error. */
struct sb_slot *sb_new(size_t n);
void sb_free(struct sb_slot *sb, size_t n);

/* Monotonic milliseconds (CLOCK_MONOTONIC_COARSE, no syscall). */
uint64_t sb_now_ms(void);

/* Worker side: a request starts (line is "METHOD TARGET") or ends. */
void sb_busy(struct sb_slot *s, const char *method, const char *target);
void sb_idle(struct sb_slot *s);

#endif
