/* handlers.h: handlers compiled from source text for a unit suite, once,
 * into a temporary directory that the suite's fixture removes.  Shared by
 * the suites that load real handlers (app, master, tmpl, worker). */
#ifndef FORKD_TEST_HANDLERS_H
#define FORKD_TEST_HANDLERS_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct test_handler {
    const char *name;   /* NAME.so in the directory */
    const char *source; /* C, with forkd.h from app/ */
};

/* Make dir (a buffer of at least 64 bytes) from the template
 * "/tmp/forkd-test-WHAT-XXXXXX", world-readable so that workers running as
 * nobody load from it, and build each handler there.  -shared links with
 * undefined symbols allowed (the default): a handler that lacks one fails
 * only at dlopen. */
static inline void
test_handlers_build(char *dir, const char *what, const struct test_handler *h,
                    size_t n)
{
    char path[128], cmd[512];
    FILE *f;

    snprintf(dir, 64, "/tmp/forkd-test-%s-XXXXXX", what);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0755), 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s.c", dir, h[i].name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(h[i].source, f);
        ck_assert_int_eq(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -I app -o %s/%s.so %s",
                 dir, h[i].name, path);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    }
}

static inline void
test_handlers_remove(const char *dir)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    /* warn_unused_result: a (void) cast does not silence it */
    int rc = system(cmd); /* a leftover temp dir is harmless */
    (void)rc;
}

#endif
