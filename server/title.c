#include "title.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static char *title_start, *title_end; /* the memory argv and environ had */
static char **title_argv;             /* the copy main uses */
static char title_line[512];          /* argv[1..] joined */
/* environ's new home; kept here, as setenv and unsetenv may drop entries
 * or the array itself from environ. */
static char **title_env;
static char *title_env_block;

/* environ's n strings in one block, and a new array of them, or -1. */
static int
title_move_environ(size_t n)
{
    size_t size = 0, at = 0;

    for (size_t i = 0; i < n; i++)
        size += strlen(environ[i]) + 1;
    if ((title_env = calloc(n + 1, sizeof(*title_env))) == NULL ||
        (title_env_block = malloc(size ? size : 1)) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(environ[i]) + 1;
        title_env[i] = memcpy(title_env_block + at, environ[i], len);
        at += len;
    }
    return 0;
}

/* Copy a NULL-terminated array of n strings to the heap, or NULL. */
static char **
title_copy(char **v, size_t n)
{
    char **c = calloc(n + 1, sizeof(*c));

    for (size_t i = 0; c != NULL && i < n; i++) {
        if ((c[i] = strdup(v[i])) == NULL) {
            while (i > 0)
                free(c[--i]);
            free(c);
            return NULL;
        }
    }
    return c;
}

char **
title_init(int argc, char **argv)
{
    size_t n_env = 0, len = 0;
    char *end;

    while (environ != NULL && environ[n_env] != NULL)
        n_env++;
    if (argc < 1 || (title_argv = title_copy(argv, (size_t)argc)) == NULL ||
        title_move_environ(n_env) < 0)
        return title_argv ? title_argv : argv;
    /* Only the run of strings that lie back to back from argv[0] on. */
    end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc && argv[i] == end; i++)
        end += strlen(argv[i]) + 1;
    for (size_t i = 0; i < n_env && environ[i] == end; i++)
        end += strlen(environ[i]) + 1;
    environ = title_env;
    title_start = argv[0];
    title_end = end;
    for (int i = 1; i < argc && len < sizeof(title_line) - 1; i++)
        len += (size_t)snprintf(title_line + len, sizeof(title_line) - len,
                                "%s%s", i > 1 ? " " : "", argv[i]);
    return title_argv;
}

void
title_set(const char *fmt, ...)
{
    size_t room = (size_t)(title_end - title_start), n;
    va_list ap;

    if (title_start == NULL || room < 8)
        return;
    n = (size_t)snprintf(title_start, room, "forkd: ");
    va_start(ap, fmt);
    vsnprintf(title_start + n, room - n, fmt, ap);
    va_end(ap);
    n = strlen(title_start);
    /* NULs to the end: /proc/PID/cmdline then ends at the title. */
    memset(title_start + n, 0, room - n);
}

const char *
title_args(void)
{
    return title_line;
}
