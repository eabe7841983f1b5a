/* test_daemon: the master's daemon duties: the pidfile (atomic write,
 * refusing a live pid, the stale and the allowed one, removing only our
 * own), user and group lookups (names, numbers, a bare uid that needs a
 * group), dropping to them (in a child), chown, the RLIMIT_NOFILE raise,
 * systemd's notify socket and LISTEN_FDS, and detaching: the waiting
 * parent exits 0 only when the daemon said it is ready. */
#include "daemon.h"

#include <check.h>
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

/* An id that no passwd or group entry has on a Debian system. */
#define DAEMON_TEST_BARE_ID "54321"

static char daemon_test_dir[64];

static void
daemon_test_setup(void)
{
    strcpy(daemon_test_dir, "/tmp/forkd-test-daemon-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(daemon_test_dir));
}

static void
daemon_test_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", daemon_test_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void
daemon_test_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", daemon_test_dir, name);
}

static void
daemon_test_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* A child that exits at once, reaped: its pid names no process (until
 * the kernel reuses it, which takes a wrap of the pid space). */
static pid_t
daemon_test_dead_pid(void)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return pid;
}

START_TEST(test_daemon_pidfile_write_read)
{
    char path[128], err[DAEMON_ERR_MAX] = "", text[64], want[64];
    struct stat st;
    FILE *f;

    daemon_test_path(path, sizeof(path), "forkd.pid");
    ck_assert_int_eq(daemon_pidfile_read(path), -1); /* none yet */
    ck_assert_int_eq(daemon_pidfile_write(path, 0, err), 0);
    ck_assert_int_eq(daemon_pidfile_read(path), getpid());
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
    fclose(f);
    snprintf(want, sizeof(want), "%d\n", (int)getpid());
    ck_assert_str_eq(text, want);
    /* Our own pid in it is no other forkd: written again. */
    ck_assert_int_eq(daemon_pidfile_write(path, 0, err), 0);
    ck_assert_int_eq(daemon_pidfile_read(path), getpid());
}
END_TEST

START_TEST(test_daemon_pidfile_refuses_live_pid)
{
    char path[128], text[32], err[DAEMON_ERR_MAX] = "";

    daemon_test_path(path, sizeof(path), "forkd.pid");
    snprintf(text, sizeof(text), "%d\n", (int)getppid()); /* the runner */
    daemon_test_write(path, text);
    errno = 0;
    ck_assert_int_eq(daemon_pidfile_write(path, 0, err), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_msg(strstr(err, "is alive") != NULL, "err: %s", err);
    ck_assert_int_eq(daemon_pidfile_read(path), getppid()); /* kept */
    /* The old master of an upgrade may stay in it (allow_pid). */
    ck_assert_int_eq(daemon_pidfile_write(path, getppid(), err), 0);
    ck_assert_int_eq(daemon_pidfile_read(path), getpid());
}
END_TEST

START_TEST(test_daemon_pidfile_replaces_stale_pid)
{
    char path[128], text[32], err[DAEMON_ERR_MAX] = "";

    daemon_test_path(path, sizeof(path), "forkd.pid");
    snprintf(text, sizeof(text), "%d\n", (int)daemon_test_dead_pid());
    daemon_test_write(path, text);
    ck_assert_int_eq(daemon_pidfile_write(path, 0, err), 0);
    ck_assert_int_eq(daemon_pidfile_read(path), getpid());
}
END_TEST

START_TEST(test_daemon_pidfile_read_garbage)
{
    char path[128];

    daemon_test_path(path, sizeof(path), "forkd.pid");
    daemon_test_write(path, "");
    ck_assert_int_eq(daemon_pidfile_read(path), -1);
    daemon_test_write(path, "forkd\n");
    ck_assert_int_eq(daemon_pidfile_read(path), -1);
    daemon_test_write(path, "-12\n");
    ck_assert_int_eq(daemon_pidfile_read(path), -1);
    daemon_test_write(path, "0\n");
    ck_assert_int_eq(daemon_pidfile_read(path), -1);
    daemon_test_write(path, "  42\n");
    ck_assert_int_eq(daemon_pidfile_read(path), 42);
}
END_TEST

START_TEST(test_daemon_pidfile_write_fails)
{
    char path[128], err[DAEMON_ERR_MAX] = "";

    daemon_test_path(path, sizeof(path), "no-such-dir/forkd.pid");
    ck_assert_int_eq(daemon_pidfile_write(path, 0, err), -1);
    ck_assert_msg(strstr(err, "cannot write") != NULL, "err: %s", err);
}
END_TEST

START_TEST(test_daemon_pidfile_remove_only_ours)
{
    char path[128], text[32], err[DAEMON_ERR_MAX];

    daemon_test_path(path, sizeof(path), "forkd.pid");
    snprintf(text, sizeof(text), "%d\n", (int)getppid());
    daemon_test_write(path, text);
    daemon_pidfile_remove(path); /* another process's: kept */
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(daemon_pidfile_write(path, getppid(), err), 0);
    daemon_pidfile_remove(path);
    ck_assert_int_eq(access(path, F_OK), -1);
    daemon_pidfile_remove(path); /* gone already: nothing */
    daemon_pidfile_remove("");   /* no pidfile configured */
    daemon_pidfile_remove(NULL);
}
END_TEST

START_TEST(test_daemon_worker_user)
{
    ck_assert_str_eq(daemon_worker_user("www-data"), "www-data");
    ck_assert_str_eq(daemon_worker_user(""), geteuid() == 0 ? "nobody" : "");
    ck_assert_str_eq(daemon_worker_user(NULL), geteuid() == 0 ? "nobody" : "");
}
END_TEST

START_TEST(test_daemon_creds_none)
{
    struct daemon_creds c;
    char err[DAEMON_ERR_MAX];

    ck_assert_int_eq(daemon_creds("", NULL, &c, err), 0);
    ck_assert_uint_eq(c.uid, (uid_t)-1);
    ck_assert_uint_eq(c.gid, (gid_t)-1);
    ck_assert_int_eq(c.n_groups, 0);
    ck_assert_int_eq(daemon_creds(NULL, "", &c, err), 0);
    ck_assert_uint_eq(c.uid, (uid_t)-1);
    ck_assert_uint_eq(c.gid, (gid_t)-1);
}
END_TEST

START_TEST(test_daemon_creds_named_user)
{
    struct passwd *pw = getpwnam("nobody");
    struct daemon_creds c;
    char err[DAEMON_ERR_MAX];
    int has_own = 0;

    ck_assert_ptr_nonnull(pw);
    ck_assert_int_eq(daemon_creds("nobody", NULL, &c, err), 0);
    ck_assert_uint_eq(c.uid, pw->pw_uid);
    ck_assert_uint_eq(c.gid, pw->pw_gid);
    ck_assert_int_ge(c.n_groups, 1);
    for (int i = 0; i < c.n_groups; i++)
        has_own |= c.groups[i] == pw->pw_gid;
    ck_assert_msg(has_own, "the user's own group is among its groups");
    /* A number with a passwd entry is that user; a group by number. */
    ck_assert_int_eq(daemon_creds("0", "4242", &c, err), 0);
    ck_assert_uint_eq(c.uid, 0);
    ck_assert_uint_eq(c.gid, 4242);
}
END_TEST

START_TEST(test_daemon_creds_bare_uid)
{
    struct daemon_creds c;
    char err[DAEMON_ERR_MAX] = "";

    ck_assert_ptr_null(getpwuid(54321));
    ck_assert_int_eq(
        daemon_creds(DAEMON_TEST_BARE_ID, DAEMON_TEST_BARE_ID, &c, err), 0);
    ck_assert_uint_eq(c.uid, 54321);
    ck_assert_uint_eq(c.gid, 54321);
    ck_assert_int_eq(c.n_groups, 1); /* its group only */
    ck_assert_uint_eq(c.groups[0], 54321);
    /* Without a group there is none to take from passwd. */
    ck_assert_int_eq(daemon_creds(DAEMON_TEST_BARE_ID, NULL, &c, err), -1);
    ck_assert_msg(strstr(err, "no passwd entry: set group too") != NULL,
                  "err: %s", err);
}
END_TEST

START_TEST(test_daemon_ids_unknown)
{
    char err[DAEMON_ERR_MAX] = "";

    ck_assert_int_eq(daemon_check_ids("no-such-user-forkd", NULL, err), -1);
    ck_assert_str_eq(err, "user: no user \"no-such-user-forkd\"");
    ck_assert_int_eq(daemon_check_ids("12x", "0", err), -1);
    ck_assert_str_eq(err, "user: no user \"12x\"");
    /* Over a 32-bit id: not a number. */
    ck_assert_int_eq(daemon_check_ids("99999999999", "0", err), -1);
    ck_assert_str_eq(err, "user: no user \"99999999999\"");
    ck_assert_int_eq(daemon_check_ids("nobody", "no-such-group-forkd", err),
                     -1);
    ck_assert_str_eq(err, "group: no group \"no-such-group-forkd\"");
    ck_assert_int_eq(daemon_check_ids("nobody", "nogroup", err), 0);
    ck_assert_int_eq(daemon_check_ids(NULL, "4242", err), 0);
    ck_assert_int_eq(daemon_check_ids("", "", err), 0);
}
END_TEST

START_TEST(test_daemon_drop_in_child)
{
    struct passwd *pw = getpwnam("nobody");
    struct daemon_creds c;
    char err[DAEMON_ERR_MAX] = "";
    int p[2], status;
    pid_t pid;
    long ids[3] = {0, 0, 0};

    ck_assert_ptr_nonnull(pw);
    ck_assert_int_eq(daemon_creds("nobody", NULL, &c, err), 0);
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        long got[3] = {-1, -1, -1};
        if (daemon_drop(&c, err) == 0) {
            got[0] = (long)getuid();
            got[1] = (long)geteuid();
            got[2] = (long)getegid();
        }
        ssize_t n = write(p[1], got, sizeof(got));
        exit(n == (ssize_t)sizeof(got) ? 0 : 1);
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], ids, sizeof(ids)), (ssize_t)sizeof(ids));
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (geteuid() == 0) {
        ck_assert_int_eq(ids[0], (long)pw->pw_uid);
        ck_assert_int_eq(ids[1], (long)pw->pw_uid);
        ck_assert_int_eq(ids[2], (long)pw->pw_gid);
    } else {
        ck_assert_int_eq(ids[0], -1); /* not root: the switch fails */
    }
    /* Nothing to switch: nothing done. */
    c.uid = (uid_t)-1;
    c.gid = (gid_t)-1;
    ck_assert_int_eq(daemon_drop(&c, err), 0);
}
END_TEST

START_TEST(test_daemon_drop_refused)
{
    struct daemon_creds c = {.uid = (uid_t)-1, .gid = (gid_t)-1};
    char err[DAEMON_ERR_MAX] = "";

    if (geteuid() == 0)
        return; /* root may switch to anything: test_daemon_drop_in_child */
    c.gid = 0;
    ck_assert_int_eq(daemon_drop(&c, err), -1);
    ck_assert_msg(strstr(err, "group: cannot switch") != NULL, "err: %s", err);
    c.gid = (gid_t)-1;
    c.uid = 0;
    ck_assert_int_eq(daemon_drop(&c, err), -1);
    ck_assert_msg(strstr(err, "user: cannot switch") != NULL, "err: %s", err);
}
END_TEST

START_TEST(test_daemon_chown_group_only)
{
    char path[128], group[32], err[DAEMON_ERR_MAX] = "";
    struct stat before, after;

    daemon_test_path(path, sizeof(path), "socket");
    daemon_test_write(path, "");
    ck_assert_int_eq(stat(path, &before), 0);
    snprintf(group, sizeof(group), "%u", (unsigned)getegid());
    ck_assert_int_eq(daemon_chown(path, NULL, group, err), 0);
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_uint_eq(after.st_uid, before.st_uid);
    ck_assert_uint_eq(after.st_gid, getegid());
    if (geteuid() == 0) {
        ck_assert_int_eq(daemon_chown(path, "nobody", "4242", err), 0);
        ck_assert_int_eq(stat(path, &after), 0);
        ck_assert_uint_eq(after.st_uid, getpwnam("nobody")->pw_uid);
        ck_assert_uint_eq(after.st_gid, 4242);
    }
    ck_assert_int_eq(daemon_chown(path, "no-such-user-forkd", NULL, err), -1);
    ck_assert_str_eq(err, "user: no user \"no-such-user-forkd\"");
}
END_TEST

START_TEST(test_daemon_raise_nofile)
{
    struct rlimit rl, now;
    unsigned long hard = 0;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_max != RLIM_INFINITY && rl.rlim_max > 64,
                  "a finite hard limit over 64");
    /* Enough already. */
    ck_assert_int_eq(daemon_raise_nofile(16, &hard), 0);
    ck_assert_uint_eq(hard, rl.rlim_max);
    /* The soft limit raised, within the hard one. */
    now = rl;
    now.rlim_cur = 32;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &now), 0);
    ck_assert_int_eq(daemon_raise_nofile(64, &hard), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
    ck_assert_uint_eq(now.rlim_cur, 64);
    /* Over the hard limit: refused, and the hard limit told. */
    errno = 0;
    ck_assert_int_eq(daemon_raise_nofile((unsigned long)rl.rlim_max + 1, &hard),
                     -1);
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_uint_eq(hard, rl.rlim_max);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
    ck_assert_uint_eq(now.rlim_cur, 64); /* unchanged */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}
END_TEST

/* A datagram socket at path (abstract when it starts with '@'). */
static int
daemon_test_dgram(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    ck_assert_int_eq(
        bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    return fd;
}

static void
daemon_test_recv(int fd, const char *want)
{
    char buf[128];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(test_daemon_notify)
{
    char path[128], abstract[64];
    int fd, afd;

    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(daemon_notify("READY=1"), 0); /* not under systemd */
    setenv("NOTIFY_SOCKET", "", 1);
    ck_assert_int_eq(daemon_notify("READY=1"), 0);

    daemon_test_path(path, sizeof(path), "notify");
    fd = daemon_test_dgram(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(daemon_notify("READY=1"), 0);
    daemon_test_recv(fd, "READY=1");

    snprintf(abstract, sizeof(abstract), "@forkd-test-notify-%d",
             (int)getpid());
    afd = daemon_test_dgram(abstract);
    setenv("NOTIFY_SOCKET", abstract, 1);
    ck_assert_int_eq(daemon_notify("STOPPING=1"), 0);
    daemon_test_recv(afd, "STOPPING=1");

    /* Neither a path nor abstract; nobody listening. */
    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    errno = 0;
    ck_assert_int_eq(daemon_notify("READY=1"), -1);
    ck_assert_int_eq(errno, EINVAL);
    daemon_test_path(path, sizeof(path), "nobody-listens");
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(daemon_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    close(afd);
}
END_TEST

START_TEST(test_daemon_listen_fds)
{
    char pid[16];
    int fds[2];

    ck_assert_int_eq(pipe(fds), 0); /* descriptors 3 and up exist */
    ck_assert_int_eq(fcntl(3, F_SETFD, 0), 0);
    ck_assert_int_eq(fcntl(4, F_SETFD, 0), 0);
    unsetenv("LISTEN_PID");
    ck_assert_int_eq(daemon_listen_fds(), 0);
    /* Meant for another process: left alone. */
    snprintf(pid, sizeof(pid), "%d", (int)getppid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    ck_assert_int_eq(daemon_listen_fds(), 0);
    ck_assert_ptr_nonnull(getenv("LISTEN_FDS"));
    /* Ours: counted, close-on-exec, and the variables gone. */
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDNAMES", "http:http", 1);
    ck_assert_int_eq(daemon_listen_fds(), 2);
    ck_assert_int_ne(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_int_ne(fcntl(4, F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_ptr_null(getenv("LISTEN_PID"));
    ck_assert_ptr_null(getenv("LISTEN_FDS"));
    ck_assert_ptr_null(getenv("LISTEN_FDNAMES"));
    /* Nonsense counts: none. */
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "0", 1);
    ck_assert_int_eq(daemon_listen_fds(), 0);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "100000", 1);
    ck_assert_int_eq(daemon_listen_fds(), 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* Detach in a child, as main does for -D: the child waits for the
 * daemon's word and exits with it.  how: 1 ready, 0 not ready, -1 the
 * daemon dies first.  Returns the waiting child's exit status. */
static int
daemon_test_detach(int how)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (daemon_detach() < 0)
            _exit(9);
        /* The daemon, in its own session, stdio on /dev/null. */
        if (getsid(0) != getpid() || isatty(0))
            _exit(8);
        if (how < 0)
            _exit(7); /* as a daemon that crashed before ready */
        daemon_ready(how);
        daemon_ready(how); /* said once: the second is nothing */
        exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_daemon_detach_ready)
{
    ck_assert_int_eq(daemon_test_detach(1), 0);
}
END_TEST

START_TEST(test_daemon_detach_not_ready)
{
    ck_assert_int_eq(daemon_test_detach(0), 1);
}
END_TEST

START_TEST(test_daemon_detach_daemon_dies)
{
    ck_assert_int_eq(daemon_test_detach(-1), 1);
}
END_TEST

static Suite *
daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *pidfile = tcase_create("pidfile");
    TCase *ids = tcase_create("ids");
    TCase *sys = tcase_create("system");

    tcase_add_checked_fixture(pidfile, daemon_test_setup, daemon_test_teardown);
    tcase_add_test(pidfile, test_daemon_pidfile_write_read);
    tcase_add_test(pidfile, test_daemon_pidfile_refuses_live_pid);
    tcase_add_test(pidfile, test_daemon_pidfile_replaces_stale_pid);
    tcase_add_test(pidfile, test_daemon_pidfile_read_garbage);
    tcase_add_test(pidfile, test_daemon_pidfile_write_fails);
    tcase_add_test(pidfile, test_daemon_pidfile_remove_only_ours);
    suite_add_tcase(s, pidfile);

    tcase_add_checked_fixture(ids, daemon_test_setup, daemon_test_teardown);
    tcase_add_test(ids, test_daemon_worker_user);
    tcase_add_test(ids, test_daemon_creds_none);
    tcase_add_test(ids, test_daemon_creds_named_user);
    tcase_add_test(ids, test_daemon_creds_bare_uid);
    tcase_add_test(ids, test_daemon_ids_unknown);
    tcase_add_test(ids, test_daemon_drop_in_child);
    tcase_add_test(ids, test_daemon_drop_refused);
    tcase_add_test(ids, test_daemon_chown_group_only);
    suite_add_tcase(s, ids);

    tcase_add_checked_fixture(sys, daemon_test_setup, daemon_test_teardown);
    tcase_add_test(sys, test_daemon_raise_nofile);
    tcase_add_test(sys, test_daemon_notify);
    tcase_add_test(sys, test_daemon_listen_fds);
    tcase_add_test(sys, test_daemon_detach_ready);
    tcase_add_test(sys, test_daemon_detach_not_ready);
    tcase_add_test(sys, test_daemon_detach_daemon_dies);
    suite_add_tcase(s, sys);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(daemon_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
