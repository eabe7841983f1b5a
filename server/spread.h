/* spread: even out the connections the workers hold.  A worker that
 * accepts a new connection while another worker holds at least two fewer
 * (counting those on their way to it) passes it to that worker's inbox, a
 * socket pair per worker slot that only the slot's worker reads, so that
 * no race between woken workers decides who keeps it (doc/spread.md).
 * The master opens the inboxes before it forks the workers that use them
 * and keeps both ends: a connection waiting in the inbox of a worker that
 * died is passed to the shared handoff queue (spread_rescue).  Never
 * logs. */
#ifndef FORKD_SPREAD_H
#define FORKD_SPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "scoreboard.h"

/* Worker slots with an inbox: the first ones, which hold every worker of
 * up to 64 (128 during a reload, when old and new run side by side). */
#define SPREAD_SLOTS 128

/* Open slot i's inbox: inbox[0] sends, inbox[1] receives; non-blocking
 * and close-on-exec.  0 or -1. */
int spread_open(int inbox[2]);

/* Connections held by slot s, counting those sent to its inbox and not
 * yet taken. */
unsigned spread_load(const struct sb_slot *s);

/* The slot the worker in slot me, holding mine connections (the new one
 * included), should pass a new connection to, or -1 to keep it.
 * inbox[0..n) are the inboxes this worker can send to (-1: none).  A candidate
 * runs, reads its inbox, holds at least two fewer and has a thread free or in
 * a request younger than busy_ms: a worker whose every thread is stuck
 * takes nothing new (DESIGN 2). */
int spread_pick(const struct sb *board, const int (*inbox)[2], size_t n,
                size_t me, unsigned mine, uint64_t now_ms, uint64_t busy_ms);

/* Pass every connection waiting in inbox rx to the handoff queue tx,
 * where any worker takes it.  The number passed. */
unsigned spread_rescue(int rx, int tx);

#endif
