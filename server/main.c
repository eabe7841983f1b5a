/* main: the command line.  Builds the configuration (defaults, ini file,
 * options), loads the handler, binds, and hands over to the master. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "cfg.h"
#include "daemon.h"
#include "forkd.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "status.h"
#include "title.h"

#ifndef FORKD_VERSION
#error "FORKD_VERSION comes from debian/changelog through the Makefile"
#endif

static void
main_usage(FILE *out)
{
    fprintf(out,
            "usage: forkd [-c FILE] [-b ADDR]... [-w N] [-t T] [--check] "
            "[--version]"
            " [--help] [APP.so]\n"
            "  -c, --config FILE   read the ini FILE (see forkd.ini(5))\n"
            "  -b, --bind ADDR     listen on ADDR (HOST:PORT, [IPV6]:PORT,\n"
            "                      unix:PATH); repeatable, replaces the "
            "file's binds\n"
            "  -w, --workers N     worker processes\n"
            "  -t, --threads T     handler threads per worker\n"
            "  -o, --option K=V    an [app] option for the handler; "
            "repeatable,\n"
            "                      wins over the file's\n"
            "  -D, --daemon        detach once serving (needs error_log)\n"
            "      --check         validate the configuration and the "
            "handler, then exit\n"
            "  -v, --version       print the version\n"
            "  -h, --help          print this help\n"
            "  APP.so              the handler (overrides [app] path)\n"
            "   or: forkd status [-c FILE] [--json] [--watch N]   (see "
            "forkd(8), STATUS)\n");
}

struct main_args {
    const char *config;
    const char *workers;
    const char *threads;
    int daemon;
    char *config_abs; /* owned */
    const char *app;
    char **binds;
    size_t n_binds;
    char **opts; /* -o KEY=VALUE, in order */
    size_t n_opts;
    int check;
};

static int
main_parse(int argc, char **argv, struct main_args *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"bind", required_argument, NULL, 'b'},
        {"workers", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"option", required_argument, NULL, 'o'},
        {"daemon", no_argument, NULL, 'D'},
        {"check", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;

    a->binds = calloc((size_t)argc, sizeof(*a->binds));
    a->opts = calloc((size_t)argc, sizeof(*a->opts));
    if (a->binds == NULL || a->opts == NULL)
        return 1;
    while ((opt = getopt_long(argc, argv, "c:b:w:t:o:Dvh", longopts, NULL)) !=
           -1) {
        switch (opt) {
        case 'c':
            a->config = optarg;
            break;
        case 'b':
            a->binds[a->n_binds++] = optarg;
            break;
        case 'w':
            a->workers = optarg;
            break;
        case 't':
            a->threads = optarg;
            break;
        case 'o':
            a->opts[a->n_opts++] = optarg;
            break;
        case 'D':
            a->daemon = 1;
            break;
        case 'C':
            a->check = 1;
            break;
        case 'v':
            printf("forkd %s (handler API %d)\n", FORKD_VERSION,
                   FORKD_API_VERSION);
            exit(0);
        case 'h':
            main_usage(stdout);
            exit(0);
        default:
            main_usage(stderr);
            return 1;
        }
    }
    if (optind < argc)
        a->app = argv[optind++];
    /* HUP and USR2 read the file again, perhaps after chdir. */
    if (a->config && a->config[0] != '/' &&
        (a->config_abs = realpath(a->config, NULL)) != NULL)
        a->config = a->config_abs;
    if (optind < argc) {
        fprintf(stderr, "forkd: unexpected argument \"%s\"\n", argv[optind]);
        return 1;
    }
    return 0;
}

/* Defaults, then the file, then the command line.  Returns 0, or -1
 * with the message in err (and nothing left to free). */
static int
main_configure(struct cfg *c, char err[CFG_ERR_MAX], void *arg)
{
    const struct main_args *a = arg;

    if (cfg_init(c) < 0) {
        snprintf(err, CFG_ERR_MAX, "out of memory");
        return -1;
    }
    if (a->config && cfg_load(c, a->config, err) < 0)
        goto fail;
    if (a->n_binds > 0)
        cfg_clear_binds(c);
    for (size_t i = 0; i < a->n_binds; i++)
        if (cfg_set(c, "bind", a->binds[i], err) < 0)
            goto fail;
    for (size_t i = 0; i < a->n_opts; i++)
        if (cfg_set_option(c, a->opts[i], err) < 0)
            goto fail;
    if ((a->workers && cfg_set(c, "workers", a->workers, err) < 0) ||
        (a->threads && cfg_set(c, "threads", a->threads, err) < 0) ||
        (a->daemon && cfg_set(c, "daemon", "yes", err) < 0) ||
        (a->app && cfg_set(c, "app", a->app, err) < 0) || cfg_check(c, err) < 0)
        goto fail;
    return 0;
fail:
    cfg_fini(c);
    return -1;
}

/* Where a message about the handler path points: FILE:LINE: path, or the
 * command-line argument. */
static void
main_app_error(const struct cfg *c, const char *msg)
{
    if (c->app_line > 0)
        fprintf(stderr, "forkd: %s:%d: path: %s: %s\n", c->file, c->app_line,
                c->app_path, msg);
    else
        fprintf(stderr, "forkd: %s: %s\n", c->app_path, msg);
}

static void
main_print_check(const struct cfg *c, const struct master_app_info *app)
{
    const char *user;

    printf("forkd: configuration OK%s%s\n", c->file ? ": " : "",
           c->file ? c->file : "");
    for (size_t i = 0; i < c->n_binds; i++)
        printf("  bind %s\n", c->binds[i]);
    printf("  workers %u, threads %u, keepalive %us, timeout %us\n", c->workers,
           c->threads, c->keepalive_s, c->timeout_s);
    printf("  app %s (handler API %u%s)\n", c->app_path, app->api_version,
           (app->flags & FORKD_APP_THREADSAFE) ? ", thread-safe" : "");
    for (size_t i = 0; i < c->n_opts; i++)
        printf("  option %s = %s\n", c->opts[i].key, c->opts[i].value);
    user = daemon_worker_user(c->user);
    printf("  workers run as %s\n", user[0] ? user : "the master's user");
}

static int
main_open_logs(const struct cfg *c)
{
    const char *bad = c->error_log;

    if (log_open(c->error_log, c->access_log, c->log_level) == 0)
        return 0;
    /* Find which of the two failed, for the message. */
    if (log_open(c->error_log, NULL, c->log_level) == 0) {
        bad = c->access_log;
        log_close();
    }
    fprintf(stderr, "forkd: %s: %s: cannot open \"%s\": %s\n",
            c->file ? c->file : "command line",
            bad == c->error_log ? "error_log" : "access_log", bad,
            strerror(errno));
    return -1;
}

/* One line for a configuration or start-up error: FILE: KEY: message. */
static void main_error(const struct cfg *c, int line, const char *key,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
main_error(const struct cfg *c, int line, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->file && line > 0)
        fprintf(stderr, "forkd: %s:%d: %s: %s\n", c->file, line, key, msg);
    else if (c->file)
        fprintf(stderr, "forkd: %s: %s: %s\n", c->file, key, msg);
    else
        fprintf(stderr, "forkd: %s: %s\n", key, msg);
    if (!log_is_stderr())
        log_error("%s: %s", key, msg);
}

/* Mode and owner of a unix socket we created. */
static int
main_unix_perms(const struct cfg *c, const struct listener *l)
{
    char user[256], err[DAEMON_ERR_MAX];
    char *group;

    if (chmod(l->unix_path, c->socket_mode) < 0)
        return -1;
    if (c->socket_owner[0] == '\0')
        return 0;
    snprintf(user, sizeof(user), "%s", c->socket_owner);
    if ((group = strchr(user, ':')) != NULL)
        *group++ = '\0';
    return daemon_chown(l->unix_path, user, group, err);
}

/* The sockets handed over by an upgrading forkd (FORKD_INHERIT), reused
 * for the binds they match; the others are closed. */
static int
main_inherited(int *fds, int max)
{
    const char *env = getenv("FORKD_INHERIT");
    int n = 0;

    for (const char *p = env; p && *p && n < max;
         p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
        fds[n++] = atoi(p);
    unsetenv("FORKD_INHERIT");
    return n;
}

static int
main_bind_one(const struct cfg *c, struct listener *l, size_t i, int *inh,
              int n_inh)
{
    for (int k = 0; k < n_inh; k++) {
        if (inh[k] >= 0 && listen_is_bound_to(inh[k], c->binds[i])) {
            int fd = inh[k];
            inh[k] = -1;
            return listen_adopt(l, fd, c->binds[i]);
        }
    }
    if (listen_open(l, c->binds[i], (int)c->backlog) < 0)
        return -1;
    return l->family == AF_UNIX ? main_unix_perms(c, l) : 0;
}

/* Use every socket in fds as it is (systemd's, or an upgraded master's
 * that had systemd's). */
static struct listener *
main_adopt(const struct cfg *c, const int *fds, int n_fds, size_t *n)
{
    struct listener *ls = calloc((size_t)n_fds, sizeof(*ls));

    for (int i = 0; ls && i < n_fds; i++) {
        if (listen_adopt(&ls[i], fds[i], NULL) == 0)
            continue;
        main_error(c, 0, "LISTEN_FDS", "fd %d: %s", fds[i], strerror(errno));
        while (i-- > 0)
            listen_close(&ls[i], 0);
        free(ls);
        return NULL;
    }
    *n = (size_t)n_fds;
    return ls;
}

static struct listener *
main_bind(const struct cfg *c, size_t *n, int *inherit_all)
{
    int inh[64], n_inh, sd = daemon_listen_fds();
    struct listener *ls;

    if (sd > 0) {
        /* systemd socket activation: its sockets replace every bind. */
        for (int i = 0; i < sd && i < 64; i++)
            inh[i] = 3 + i;
        *inherit_all = 1;
        return main_adopt(c, inh, sd < 64 ? sd : 64, n);
    }
    n_inh = main_inherited(inh, 64);
    if (n_inh > 0 && getenv("FORKD_INHERIT_ALL")) {
        /* An upgrade of a master that systemd gave its sockets: take them
         * all, as it did. */
        unsetenv("FORKD_INHERIT_ALL");
        *inherit_all = 1;
        return main_adopt(c, inh, n_inh, n);
    }
    if ((ls = calloc(c->n_binds, sizeof(*ls))) == NULL)
        return NULL;
    for (size_t i = 0; i < c->n_binds; i++) {
        if (main_bind_one(c, &ls[i], i, inh, n_inh) == 0)
            continue;
        main_error(c, c->bind_lines[i], "bind", "%s: %s", c->binds[i],
                   strerror(errno));
        while (i-- > 0)
            listen_close(&ls[i], 1);
        free(ls);
        return NULL;
    }
    for (int k = 0; k < n_inh; k++)
        if (inh[k] >= 0)
            close(inh[k]);
    *n = c->n_binds;
    return ls;
}

/* A worker at its descriptor limit cannot accept: raise the soft limit to
 * what the configuration needs, or refuse to start. */
static int
main_check_nofile(const struct cfg *c)
{
    unsigned long need = cfg_nofile_need(c), hard = 0;

    if (daemon_raise_nofile(need, &hard) == 0)
        return 0;
    if (errno == EMFILE)
        main_error(c, 0, "max_connections",
                   "%u connections per worker need %lu open files, more than "
                   "the hard limit (RLIMIT_NOFILE) of %lu: raise it "
                   "(LimitNOFILE= in the unit, ulimit -Hn) or lower "
                   "max_connections",
                   c->max_connections, need, hard);
    else
        main_error(c, 0, "max_connections",
                   "cannot raise the open files limit to %lu: %s", need,
                   strerror(errno));
    return -1;
}

/* Checks that need the system, not the file: run before anything binds.
 * check: for --check, which is run on the ini of a forkd that runs (before
 * a HUP, as nginx -t), where a live pidfile is a note, not a failure. */
static int
main_preflight(const struct cfg *c, int check)
{
    char err[DAEMON_ERR_MAX];
    pid_t old;

    if (main_check_nofile(c) < 0)
        return -1;

    if (daemon_check_ids(daemon_worker_user(c->user), c->group, err) < 0) {
        int user = strncmp(err, "user", 4) == 0;
        if (user && c->user[0] == '\0')
            main_error(c, 0, "user",
                       "workers do not run as root unless told: no user "
                       "\"nobody\" to run them as; set user = NAME (or root)");
        else
            main_error(c, user ? c->user_line : c->group_line,
                       user ? "user" : "group", "%s", strchr(err, ' ') + 1);
        return -1;
    }
    if (c->daemon && (c->error_log == NULL || c->error_log[0] == '\0' ||
                      strcmp(c->error_log, "-") == 0)) {
        main_error(c, 0, "daemon",
                   "a daemon has no standard error: set error_log to a file");
        return -1;
    }
    if (c->pidfile[0] && (old = daemon_pidfile_read(c->pidfile)) > 0 &&
        (kill(old, 0) == 0 || errno == EPERM)) {
        if (check) {
            fprintf(stderr,
                    "forkd: note: %s names forkd pid %d, which runs: HUP "
                    "it to load this configuration (a second start would "
                    "be refused)\n",
                    c->pidfile, (int)old);
            return 0;
        }
        main_error(c, 0, "pidfile",
                   "%s: pid %d in it is alive: is forkd already running?",
                   c->pidfile, (int)old);
        return -1;
    }
    return 0;
}

/* --check: the logs open as at a start (they are created if missing, as
 * nginx -t does), and the pidfile could be written: its directory takes
 * a new file, or the file itself is writable.  0, or -1 with one line. */
static int
main_check_files(const struct cfg *c)
{
    char dir[4096];
    const char *slash;

    if (main_open_logs(c) < 0)
        return -1;
    log_close();
    if (c->pidfile[0] == '\0')
        return 0;
    slash = strrchr(c->pidfile, '/');
    snprintf(dir, sizeof(dir), "%.*s",
             slash ? (int)(slash - c->pidfile) + (slash == c->pidfile) : 1,
             slash ? c->pidfile : ".");
    if (access(c->pidfile, W_OK) == 0 ||
        (errno == ENOENT && access(dir, W_OK | X_OK) == 0))
        return 0;
    main_error(c, 0, "pidfile", "%s: cannot be written: %s", c->pidfile,
               strerror(errno));
    return -1;
}

/* Handoff pair inherited from an upgrading master, or -1s. */
static void
main_handoff(int out[2])
{
    const char *env = getenv("FORKD_HANDOFF");

    out[0] = out[1] = -1;
    if (env && sscanf(env, "%d,%d", &out[0], &out[1]) == 2) {
        (void)fcntl(out[0], F_SETFD, FD_CLOEXEC);
        (void)fcntl(out[1], F_SETFD, FD_CLOEXEC);
    } else {
        out[0] = out[1] = -1;
    }
    unsetenv("FORKD_HANDOFF");
}

/* Detach, write the pidfile, leave the working directory: the daemon's
 * last steps before the master starts. */
static int
main_become_daemon(const struct cfg *c)
{
    char err[DAEMON_ERR_MAX];

    if (c->daemon && daemon_detach() < 0) {
        main_error(c, 0, "daemon", "cannot detach: %s", strerror(errno));
        return -1;
    }
    if (c->pidfile[0] && daemon_pidfile_write(c->pidfile, 0, err) < 0) {
        main_error(c, 0, "pidfile", "%s: %s", c->pidfile, err);
        return -1;
    }
    if (c->chdir[0] && chdir(c->chdir) < 0) {
        main_error(c, 0, "chdir", "%s: %s", c->chdir, strerror(errno));
        return -1;
    }
    return 0;
}

/* After the master: sockets (unix files kept for a successor), pidfile. */
static void
main_cleanup(char *pidfile, struct listener *ls, size_t n, int keep_sockets)
{
    char old[4096];

    for (size_t i = 0; i < n; i++)
        listen_close(&ls[i], !keep_sockets);
    free(ls);
    if (pidfile && pidfile[0]) {
        daemon_pidfile_remove(pidfile);
        snprintf(old, sizeof(old), "%s.oldbin", pidfile);
        daemon_pidfile_remove(old);
    }
    free(pidfile);
}

int
main(int argc, char **argv)
{
    struct main_args args = {0};
    struct master_hooks hooks = {.configure = main_configure, .arg = &args};
    struct cfg c;
    struct app app;
    struct master_app_info info;
    struct listener *ls;
    char err[CFG_ERR_MAX > APP_ERR_MAX ? CFG_ERR_MAX : APP_ERR_MAX];
    char *pidfile;
    size_t n_ls = 0;
    int status = 1, keep = 0;

    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_main(argc - 1, argv + 1);
    argv = title_init(argc, argv);
    if (main_parse(argc, argv, &args) != 0)
        goto out_args;
    if (main_configure(&c, err, &args) < 0) {
        fprintf(stderr, "forkd: %s\n", err);
        goto out_args;
    }
    if (app_set_path(&app, c.app_path) < 0) {
        main_app_error(&c, strerror(errno));
        goto out_cfg;
    }
    if (args.check) {
        /* What a start checks, short of binding (nginx -t). */
        if (main_preflight(&c, 1) < 0 || main_check_files(&c) < 0)
            goto out_app;
        if (master_check_app(&c, 1, &info, err) < 0) {
            main_app_error(&c, err);
            goto out_app;
        }
        main_print_check(&c, &info);
        status = 0;
        goto out_app;
    }
    umask(c.umask_bits);
    if (main_preflight(&c, 0) < 0)
        goto out_app;
    if (master_check_app(&c, 0, &info, err) < 0) {
        main_app_error(&c, err);
        goto out_app;
    }
    if (main_open_logs(&c) < 0)
        goto out_app;
    if ((ls = main_bind(&c, &n_ls, &hooks.inherit_all)) == NULL)
        goto out_logs;
    if (main_become_daemon(&c) < 0) {
        main_cleanup(NULL, ls, n_ls, 0);
        goto out_logs;
    }
    /* USR2 runs argv[0] again, perhaps from another working directory. */
    char *exe = strchr(argv[0], '/') && argv[0][0] != '/'
                    ? realpath(argv[0], NULL)
                    : NULL;
    if (exe)
        argv[0] = exe;
    hooks.argv = argv;
    main_handoff(hooks.handoff);
    pidfile = strdup(c.pidfile);
    status =
        master_run(&c, &app, &info, ls, n_ls, &hooks, &keep); /* owns c, app */
    main_cleanup(pidfile, ls, n_ls, keep);
    free(exe);
    log_close();
    free(args.binds);
    free(args.opts);
    free(args.config_abs);
    return status;
out_logs:
    log_close();
out_app:
    app_close(&app);
out_cfg:
    cfg_fini(&c);
out_args:
    free(args.binds);
    free(args.opts);
    free(args.config_abs);
    return status;
}
