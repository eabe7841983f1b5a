/* tmpl: the template process of a generation whose handler preloads
 * (forkd_app.preload, handler API 2; the wsgi handler's preload = yes).
 * The master forks it once per generation; it becomes the workers' user,
 * loads the handler and runs preload, then forks each worker the master
 * asks for, so that the workers share what preload loaded, copy-on-write.
 * The root master runs no handler code (DESIGN 6).
 *
 * A worker is forked through a middle process that exits at once, so that
 * the worker becomes the master's child (the master is a subreaper): the
 * master reaps it, and signals only pids that are its own children and run
 * as the workers' user, whatever the template says (DESIGN 8). */
#ifndef FORKD_TMPL_H
#define FORKD_TMPL_H

#include <stdint.h>
#include <sys/types.h>

struct worker_env;

/* What the master knows of a generation's template. */
enum tmpl_mode {
    TMPL_FORK, /* no preload: the master forks the workers itself */
    TMPL_ASK,  /* the handler has preload: a template decides */
    TMPL_USE   /* the template preloaded: it forks the workers */
};

struct tmpl {
    enum tmpl_mode mode;
    pid_t pid; /* 0: none running (or reaped) */
    int fd;    /* the master's end of the command socket, -1: none */
};

/* What the template tells the master. */
enum tmpl_what {
    TMPL_READY = 1,    /* preload returned 1: ask for workers */
    TMPL_NO_PRELOAD,   /* preload returned 0: it exits */
    TMPL_SPAWNED,      /* worker slot is pid */
    TMPL_SPAWN_FAILED, /* worker slot could not be forked: err */
};

struct tmpl_msg {
    uint32_t what;
    uint32_t slot;
    int32_t pid;
    int32_t err;
};

/* Fork the template of env's generation into *t.  In the child,
 * close_fds(arg) runs first (the master's own descriptors), then the
 * template's life, which never returns.  Returns 0, or -1 with errno. */
int tmpl_start(struct tmpl *t, const struct worker_env *env,
               void (*close_fds)(void *arg), void *arg);

/* Ask for worker slot, which gets the descriptor chan (its end of the log
 * channel) and the current log files; the caller keeps its own.  Returns
 * 0 or -1. */
int tmpl_spawn(struct tmpl *t, unsigned slot, int chan);

/* One message from the template in *m: 1; 0 when there is none now; -1
 * when the template closed its end or sent garbage (t->fd is closed). */
int tmpl_recv(struct tmpl *t, struct tmpl_msg *m);

/* Whether pid is a child of this process, not reaped yet, whose user ids
 * are all uid ((uid_t)-1: any): the only pids from a template the master
 * may act on.  An unreaped child's pid cannot be reused. */
int tmpl_owns(pid_t pid, uid_t uid);

/* SIGTERM it and close the socket; the pid stays for the reaper. */
void tmpl_stop(struct tmpl *t);

#endif
