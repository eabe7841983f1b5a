/* master: the arbiter.  Forks the workers, keeps their number, turns
 * signals into events for its loop, reloads the configuration and the
 * handler (HUP), starts a new binary (USR2), kills workers that overrun
 * timeout, and stops quickly or gracefully.  Never runs handler code. */
#ifndef FORKD_MASTER_H
#define FORKD_MASTER_H

#include <stddef.h>

#include "app.h"
#include "cfg.h"

struct cfg;
struct listener;

struct master_hooks {
    /* Build the configuration anew, as at start-up (the same file and
     * command line).  Returns 0, or -1 with the message in err. */
    int (*configure)(struct cfg *c, char err[CFG_ERR_MAX], void *arg);
    void *arg;
    char *const *argv; /* to start a new binary on USR2: argv[0] is it */
    int handoff[2];    /* inherited from an upgrading master, or -1 */
    int inherit_all;   /* the sockets came from systemd: pass them all */
};

/* What a handler check found (master_check_app). */
struct master_app_info {
    unsigned api_version;
    unsigned flags;
    int has_preload; /* API 2 preload hook: a template may fork workers */
};

/* Load cfg's handler in a child process that has become the workers' user
 * and check its descriptor there (app_open), so that the master never
 * runs handler code, not even a .so's constructors (DESIGN 6); with
 * run_init (--check), also run its init with the [app] options, and fini.
 * Returns 0 with what it found in *info, or -1 with a message in err. */
int master_check_app(const struct cfg *cfg, int run_init,
                     struct master_app_info *info, char err[APP_ERR_MAX]);

/* Run the master until it is told to stop or the workers cannot start.
 * info is what master_check_app found in the handler.
 * Takes ownership of *cfg and *app (moved: the caller must not fini them).
 * *keep_sockets is set when a new master took over the listening sockets
 * (after USR2), so that unix socket files must not be removed.  Returns
 * the process exit status (0 after a requested stop). */
int master_run(struct cfg *cfg, struct app *app,
               const struct master_app_info *info, struct listener *ls,
               size_t n_ls, const struct master_hooks *hooks,
               int *keep_sockets);

#endif
