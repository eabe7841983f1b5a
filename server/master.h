/* master: the arbiter.  Forks the workers, keeps their number, turns
 * signals into events for its loop, kills workers that overrun timeout,
 * and stops quickly or gracefully.  Never runs handler code. */
#ifndef FORKD_MASTER_H
#define FORKD_MASTER_H

#include <stddef.h>

struct cfg;
struct app;
struct listener;

/* Run the master until it is told to stop or the workers cannot start.
 * Returns the process exit status (0 after a requested stop). */
int master_run(const struct cfg *cfg, struct app *app, struct listener *ls,
               size_t n_ls);

#endif
