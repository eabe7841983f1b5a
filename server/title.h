/* title: the process titles that ps and top show, as nginx, unicorn and
 * gunicorn set them: "forkd: master -c /etc/forkd/forkd.ini",
 * "forkd: worker 3 (gen 2)", "forkd: template (gen 2)".  The title is
 * written over the memory of argv and environ, so main parses (and USR2
 * runs again) a copy of argv. */
#ifndef FORKD_TITLE_H
#define FORKD_TITLE_H

/* Note where argv and environ lie and move environ to the heap.  Returns
 * a copy of argv (argc strings and a NULL) for main to use from then on,
 * or argv itself if out of memory (titles are then not set). */
char **title_init(int argc, char **argv);

/* "forkd: " and the rest, as printf, cut to the room argv and environ
 * had; the process name (comm) stays "forkd". */
void title_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The command line after argv[0], as the master's title shows it. */
const char *title_args(void);

#endif
