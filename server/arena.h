/* arena: the per-request memory behind forkd_alloc.  One block is kept for
 * the worker's life; larger requests get extra blocks, freed at reset, so
 * the hello path never calls malloc. */
#ifndef FORKD_ARENA_H
#define FORKD_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *first; /* kept across resets; owned */
    struct arena_block *extra; /* freed at reset; owned */
    size_t used;               /* bytes used in first */
    size_t cap;                /* bytes in first */
};

/* Allocate the first block of cap bytes.  Returns 0 or -1 (ENOMEM). */
int arena_init(struct arena *a, size_t cap);

/* Free every block. */
void arena_fini(struct arena *a);

/* Release everything allocated since the last reset. */
void arena_reset(struct arena *a);

/* n bytes aligned to max_align_t, or NULL (ENOMEM, or overflow). */
void *arena_alloc(struct arena *a, size_t n);

/* A NUL-terminated copy of s[0..len), or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

#endif
