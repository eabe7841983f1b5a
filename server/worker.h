/* worker: a worker process: its poller of waiting connections, the accept
 * loop on the shared listen queue, and the synchronous serving of one
 * request at a time through the handler. */
#ifndef FORKD_WORKER_H
#define FORKD_WORKER_H

#include <stddef.h>
#include <sys/types.h>

#include "daemon.h"

struct cfg;
struct app;
struct listener;
struct sb;

/* Exit status of a worker whose app could not start: the master stops. */
#define WORKER_EXIT_BOOT 3

/* How long a worker forked by the template waits for the master to take
 * it (worker_run). */
#define WORKER_ADOPT_MS 5000

/* What the master gives every worker; all of it owned by the master. */
struct worker_env {
    const struct cfg *cfg;
    struct app *app;
    struct listener *ls;
    size_t n_ls;
    int handoff[2]; /* see handoff.h: [0] sends, [1] receives */
    /* Each worker slot's inbox (spread.h), [0] sends, [1] receives, -1s
     * for none: those opened before this worker (or its template) was
     * forked. */
    const int (*inbox)[2];
    size_t n_inbox;
    struct sb *board;
    pid_t master;              /* the parent, whose death ends the worker */
    unsigned gen;              /* the generation (1, then one more per HUP) */
    struct daemon_creds creds; /* who the worker becomes before init */
};

/* Run a worker in the freshly forked child: reset signals, init the app,
 * serve until told to stop.  log_chan: the worker's end of its datagram
 * socket pair with the master, which sends reopened log files there on
 * USR1.  preloaded and middle: NULL and 0 in a child of the master, which
 * loads the handler as the workers' user; in a child of the template
 * (tmpl.h), the handler it preloaded, already as that user, and the pid
 * of the middle process whose exit makes the worker the master's child;
 * such a worker waits for a message without files on log_chan, the
 * master's word that it took it (WORKER_ADOPT_MS at most).  Never
 * returns. */
void worker_run(const struct worker_env *env, int index, int log_chan,
                struct app *preloaded, pid_t middle) __attribute__((noreturn));

/* Become the workers' user (when the master is root) and die with the
 * master: before any handler code runs.  0, or -1 with a message. */
int worker_drop(const struct worker_env *env, char err[DAEMON_ERR_MAX]);

#endif
