#include "arena.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *next;
    alignas(max_align_t) unsigned char data[];
};

#define ARENA_ALIGN (alignof(max_align_t))

int
arena_init(struct arena *a, size_t cap)
{
    memset(a, 0, sizeof(*a));
    a->first = malloc(sizeof(struct arena_block) + cap);
    if (a->first == NULL)
        return -1;
    a->first->next = NULL;
    a->cap = cap;
    return 0;
}

void
arena_reset(struct arena *a)
{
    while (a->extra) {
        struct arena_block *b = a->extra;
        a->extra = b->next;
        free(b);
    }
    a->used = 0;
}

void
arena_fini(struct arena *a)
{
    arena_reset(a);
    free(a->first);
    a->first = NULL;
    a->cap = 0;
}

void *
arena_alloc(struct arena *a, size_t n)
{
    size_t start = (a->used + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    struct arena_block *b;

    if (n == 0)
        n = 1;
    if (a->first && start <= a->cap && n <= a->cap - start) {
        a->used = start + n;
        return a->first->data + start;
    }
    /* Too big for what is left: a block of its own, freed at reset. */
    if (n > SIZE_MAX - sizeof(*b)) {
        errno = ENOMEM;
        return NULL;
    }
    if ((b = malloc(sizeof(*b) + n)) == NULL)
        return NULL;
    b->next = a->extra;
    a->extra = b;
    return b->data;
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p;

    if (len == SIZE_MAX || (p = arena_alloc(a, len + 1)) == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
