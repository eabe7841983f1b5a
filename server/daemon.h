/* daemon: what makes the master a daemon: detaching, the pidfile, dropping
 * privileges, systemd's notify protocol and the sockets it (or an upgrading
 * forkd) hands over.  Never logs: errors come back as -1 and errno, with a
 * message where the caller cannot tell the cases apart. */
#ifndef FORKD_DAEMON_H
#define FORKD_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

#define DAEMON_ERR_MAX 256

/* Fork into the background: the parent waits until daemon_ready is called
 * in the child (exit 0) or the child dies (exit 1) and never returns.  The
 * child gets a new session and returns 0.  Returns -1 if fork failed. */
int daemon_detach(void);

/* write(2) when its failure is nobody's concern (a wake-up byte on a pipe
 * that is full, a report to a parent that may be gone): the result is
 * dropped here, once, as -D_FORTIFY_SOURCE's warn_unused_result wants
 * it dropped.  Async-signal-safe. */
void daemon_write_best_effort(int fd, const void *buf, size_t n);

/* In the detached child: tell the waiting parent whether we started; point
 * stdin, stdout and stderr at /dev/null.  No-op when not detached. */
void daemon_ready(int ok);

/* Write our pid to path atomically (temp file and rename).  Refuses (-1,
 * EEXIST, message in err) if the file names a live process other than
 * allow_pid. */
int daemon_pidfile_write(const char *path, pid_t allow_pid,
                         char err[DAEMON_ERR_MAX]);

/* Remove path if it still holds our pid. */
void daemon_pidfile_remove(const char *path);

/* The pid in path, or -1. */
pid_t daemon_pidfile_read(const char *path);

/* The user workers run as: user when set, else "nobody" when the master
 * is root (workers never keep root unless the configuration says
 * user = root), else "" (the master's). */
const char *daemon_worker_user(const char *user);

#define DAEMON_MAX_GROUPS 256

/* Who workers become: looked up once in the master, so that workers never
 * load the name service (its buffers would be private memory in each). */
struct daemon_creds {
    uid_t uid;    /* (uid_t)-1: keep */
    gid_t gid;    /* (gid_t)-1: keep */
    int n_groups; /* supplementary groups of the user, with uid only */
    gid_t groups[DAEMON_MAX_GROUPS];
};

/* Look user and group (names or numbers; either may be NULL or "") up
 * into *c.  Returns 0 or -1 with a message in err. */
int daemon_creds(const char *user, const char *group, struct daemon_creds *c,
                 char err[DAEMON_ERR_MAX]);

/* Switch to *c: groups first, then the uid.  Returns 0 or -1 with a
 * message in err. */
int daemon_drop(const struct daemon_creds *c, char err[DAEMON_ERR_MAX]);

/* chown path to user and group (either may be NULL or ""): 0 or -1. */
int daemon_chown(const char *path, const char *user, const char *group,
                 char err[DAEMON_ERR_MAX]);

/* Look a user or group up without switching: 0 or -1 with err. */
int daemon_check_ids(const char *user, const char *group,
                     char err[DAEMON_ERR_MAX]);

/* Send state ("READY=1", "RELOADING=1", "STOPPING=1", "MAINPID=N\n...")
 * to $NOTIFY_SOCKET if it is set.  Returns 0 (also when unset) or -1. */
int daemon_notify(const char *state);

/* Make sure a process may open need descriptors: raise RLIMIT_NOFILE's
 * soft limit to need if it is lower (workers inherit it).  Returns 0, or
 * -1 with the hard limit in *hard when even that is lower. */
int daemon_raise_nofile(unsigned long need, unsigned long *hard);

/* The sockets systemd passed (LISTEN_FDS for our LISTEN_PID), starting at
 * fd 3: their count, 0 if none.  The variables are removed so workers and
 * children do not see them. */
int daemon_listen_fds(void);

#endif
