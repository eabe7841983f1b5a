#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int daemon_pipe = -1; /* to the waiting parent, in the child */

static void
daemon_stdio_null(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

int
daemon_detach(void)
{
    int fds[2];
    pid_t pid;
    char ok = 0;

    if (pipe2(fds, O_CLOEXEC) < 0 || (pid = fork()) < 0)
        return -1;
    if (pid > 0) {
        int status;
        close(fds[1]);
        /* A byte: the daemon is serving.  EOF without it: it failed (its
         * reason is in the error log, or on our stderr before that). */
        ssize_t n = read(fds[0], &ok, 1);
        if (n <= 0)
            (void)waitpid(pid, &status, WNOHANG);
        _exit(n == 1 && ok == 1 ? 0 : 1);
    }
    close(fds[0]);
    daemon_pipe = fds[1];
    /* Now, not at ready: the workers forked meanwhile must not keep the
     * caller's terminal or pipe (a $(forkd -D) would wait for them). */
    daemon_stdio_null();
    return setsid() < 0 ? -1 : 0;
}

void
daemon_ready(int ok)
{
    char b = ok ? 1 : 0;

    if (daemon_pipe < 0)
        return;
    daemon_write_best_effort(daemon_pipe, &b, 1); /* the parent may be gone */
    close(daemon_pipe);
    daemon_pipe = -1;
}

pid_t
daemon_pidfile_read(const char *path)
{
    char buf[32];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    long pid;

    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    pid = strtol(buf, NULL, 10);
    return pid > 0 ? (pid_t)pid : -1;
}

int
daemon_pidfile_write(const char *path, pid_t allow_pid,
                     char err[DAEMON_ERR_MAX])
{
    char tmp[4096], line[32];
    pid_t old = daemon_pidfile_read(path);
    int fd, len;

    if (old > 0 && old != getpid() && old != allow_pid &&
        (kill(old, 0) == 0 || errno == EPERM)) {
        snprintf(err, DAEMON_ERR_MAX,
                 "pid %d in it is alive: is forkd already running?", (int)old);
        errno = EEXIST;
        return -1;
    }
    /* A name nobody can guess, created here and never followed: in a
     * directory others may write to, a predictable temporary name would
     * let them plant a symlink that root then writes through. */
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) < 0 || write(fd, line, (size_t)len) != len ||
        close(fd) < 0 || rename(tmp, path) < 0) {
        snprintf(err, DAEMON_ERR_MAX, "cannot write: %s", strerror(errno));
        if (fd >= 0)
            (void)unlink(tmp);
        return -1;
    }
    return 0;
}

void
daemon_pidfile_remove(const char *path)
{
    if (path && path[0] && daemon_pidfile_read(path) == getpid())
        (void)unlink(path);
}

/* A decimal id, or -1. */
static long
daemon_number(const char *s)
{
    char *end;
    long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    return errno || *end || v > 0x7fffffff ? -1 : v;
}

/* user and group (names, or numbers without an entry) to ids; the user's
 * own group unless group is given; *name: the user's passwd name, for its
 * supplementary groups, or NULL. */
static int
daemon_ids_named(const char *user, const char *group, uid_t *uid, gid_t *gid,
                 const char **name, char err[DAEMON_ERR_MAX])
{
    struct passwd *pw = NULL;
    struct group *gr;
    long n;

    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    *name = NULL;
    if (user && user[0]) {
        if ((pw = getpwnam(user)) == NULL && (n = daemon_number(user)) >= 0)
            pw = getpwuid((uid_t)n);
        if (pw != NULL) {
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
            *name = pw->pw_name;
        } else if ((n = daemon_number(user)) >= 0 && group && group[0]) {
            *uid = (uid_t)n; /* a bare uid, as containers use */
        } else {
            snprintf(err, DAEMON_ERR_MAX,
                     n >= 0 ? "user: uid %s has no passwd entry: set group too"
                            : "user: no user \"%s\"",
                     user);
            return -1;
        }
    }
    if (group && group[0]) {
        if ((gr = getgrnam(group)) != NULL)
            *gid = gr->gr_gid;
        else if ((n = daemon_number(group)) >= 0)
            *gid = (gid_t)n;
        else {
            snprintf(err, DAEMON_ERR_MAX, "group: no group \"%s\"", group);
            return -1;
        }
    }
    return 0;
}

static int
daemon_ids(const char *user, const char *group, uid_t *uid, gid_t *gid,
           char err[DAEMON_ERR_MAX])
{
    const char *name;

    return daemon_ids_named(user, group, uid, gid, &name, err);
}

int
daemon_check_ids(const char *user, const char *group, char err[DAEMON_ERR_MAX])
{
    uid_t uid;
    gid_t gid;

    return daemon_ids(user, group, &uid, &gid, err);
}

int
daemon_chown(const char *path, const char *user, const char *group,
             char err[DAEMON_ERR_MAX])
{
    uid_t uid;
    gid_t gid;

    if (daemon_ids(user, group, &uid, &gid, err) < 0)
        return -1;
    if (user == NULL || user[0] == '\0')
        uid = (uid_t)-1; /* group only: keep the owner */
    return chown(path, uid, gid);
}

const char *
daemon_worker_user(const char *user)
{
    if (user && user[0])
        return user;
    return geteuid() == 0 ? "nobody" : "";
}

int
daemon_creds(const char *user, const char *group, struct daemon_creds *c,
             char err[DAEMON_ERR_MAX])
{
    const char *name;

    c->n_groups = 0;
    if (daemon_ids_named(user, group, &c->uid, &c->gid, &name, err) < 0)
        return -1;
    if (c->uid == (uid_t)-1)
        return 0;
    if (name == NULL) { /* a bare uid: its group only */
        c->groups[0] = c->gid;
        c->n_groups = 1;
        return 0;
    }
    c->n_groups = DAEMON_MAX_GROUPS;
    if (getgrouplist(name, c->gid, c->groups, &c->n_groups) < 0) {
        snprintf(err, DAEMON_ERR_MAX, "user: \"%s\" is in more than %d groups",
                 user, DAEMON_MAX_GROUPS);
        return -1;
    }
    return 0;
}

int
daemon_drop(const struct daemon_creds *c, char err[DAEMON_ERR_MAX])
{
    /* Group first: once the uid is dropped, the gid can no longer be. */
    if (c->gid != (gid_t)-1 &&
        (setgroups(0, NULL) < 0 || setresgid(c->gid, c->gid, c->gid) < 0)) {
        snprintf(err, DAEMON_ERR_MAX, "group: cannot switch: %s",
                 strerror(errno));
        return -1;
    }
    if (c->uid != (uid_t)-1 && (setgroups((size_t)c->n_groups, c->groups) < 0 ||
                                setresuid(c->uid, c->uid, c->uid) < 0)) {
        snprintf(err, DAEMON_ERR_MAX, "user: cannot switch: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}

int
daemon_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len;
    int fd, rc;

    if (path == NULL || path[0] == '\0')
        return 0;
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    rc = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
    return rc < 0 ? -1 : 0;
}

int
daemon_listen_fds(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    long n;

    if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid())
        return 0;
    n = strtol(fds, NULL, 10);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n <= 0 || n > 1000)
        return 0;
    for (int fd = 3; fd < 3 + n; fd++)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return (int)n;
}

int
daemon_raise_nofile(unsigned long need, unsigned long *hard)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    *hard = rl.rlim_max == RLIM_INFINITY ? (unsigned long)-1
                                         : (unsigned long)rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_cur == RLIM_INFINITY)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        errno = EMFILE;
        return -1;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

void
daemon_write_best_effort(int fd, const void *buf, size_t n)
{
    if (write(fd, buf, n) < 0) {
        /* nothing to do: see daemon.h */
    }
}
