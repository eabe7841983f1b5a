/* app: the handler shared object: dlopen, the forkd_app descriptor and its
 * checks, and the API calls that belong to no other module (options,
 * arena, logging).  The only module that touches dlopen. */
#ifndef FORKD_APP_H
#define FORKD_APP_H

#include <stddef.h>

#include "forkd.h"

#define APP_ERR_MAX 512

struct app {
    void *dl;                     /* dlopen handle; owned */
    const struct forkd_app *desc; /* inside dl */
    char *path;                   /* owned */
    void *state;                  /* from init, for handle and fini */
    int initialized;              /* init succeeded: fini is due */
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

/* Run the handler's init with the options.  Returns 0 or -1. */
int app_init(struct app *a, const struct forkd_option *opts, size_t n);

/* Run fini if init succeeded. */
void app_fini(struct app *a);

/* dlclose and forget. */
void app_close(struct app *a);

#endif
