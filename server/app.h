/* app: the handler shared object: dlopen, the forkd_app descriptor and its
 * checks, and the API calls that belong to no other module (options,
 * arena, logging).  The only module that touches dlopen. */
#ifndef FORKD_APP_H
#define FORKD_APP_H

#include <stddef.h>

#include "forkd.h"

struct cfg;

#define APP_ERR_MAX 512

struct app {
    void *dl;                     /* dlopen handle; owned */
    const struct forkd_app *desc; /* inside dl */
    char *path;                   /* owned */
    void *state;     /* from preload and init, for handle and fini */
    int initialized; /* init succeeded: fini is due */
};

/* Load the .so at path and check its descriptor: present, the right
 * api_version, a handle function, FORKD_APP_THREADSAFE if threads > 1.
 * Returns 0, or -1 with a message (without the path) in err. */
int app_open(struct app *a, const char *path, unsigned threads,
             char err[APP_ERR_MAX]);

/* Record path without loading it: the master keeps only the path, as
 * handler code (a .so's constructors too) runs only in children.
 * Returns 0 or -1 (ENOMEM). */
int app_set_path(struct app *a, const char *path);

/* Whether the loaded handler has a preload hook (API version 2). */
int app_has_preload(const struct app *a);

/* Run the handler's preload hook with c's [app] options, if any, in the
 * template process: returns 1 (fork the workers from here; a->state is what
 * init gets), 0 (no preload: start workers as usual) or -1 (refused; it logged
 * why). */
int app_preload(struct app *a, const struct cfg *c);

/* Tell the handler where a worker fork is (after app_preload returned 1). */
void app_atfork(struct app *a, enum forkd_fork_phase phase);

/* Run the handler's init with c's [app] options; a->state is passed in
 * as it is (NULL, or what preload left) and kept.  Returns 0 or -1. */
int app_init(struct app *a, const struct cfg *c);

/* Run fini if init succeeded. */
void app_fini(struct app *a);

/* dlclose and forget. */
void app_close(struct app *a);

#endif
