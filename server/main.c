/* main: the command line.  Builds the configuration (defaults, ini file,
 * options), loads the handler, binds, and hands over to the master. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "cfg.h"
#include "forkd.h"
#include "listen.h"
#include "log.h"
#include "master.h"

#define FORKD_VERSION "0.1.0"

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
            "      --check         validate the configuration and the "
            "handler, then exit\n"
            "  -v, --version       print the version\n"
            "  -h, --help          print this help\n"
            "  APP.so              the handler (overrides [app] path)\n");
}

struct main_args {
    const char *config;
    const char *workers;
    const char *threads;
    const char *app;
    char **binds;
    size_t n_binds;
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
        {"check", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;

    a->binds = calloc((size_t)argc, sizeof(*a->binds));
    if (a->binds == NULL)
        return 1;
    while ((opt = getopt_long(argc, argv, "c:b:w:t:vh", longopts, NULL)) !=
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
    if (optind < argc) {
        fprintf(stderr, "forkd: unexpected argument \"%s\"\n", argv[optind]);
        return 1;
    }
    return 0;
}

/* Defaults, then the file, then the command line.  Returns 0 or 1. */
static int
main_configure(struct cfg *c, const struct main_args *a)
{
    char err[CFG_ERR_MAX];

    if (cfg_init(c) < 0) {
        fprintf(stderr, "forkd: out of memory\n");
        return 1;
    }
    if (a->config && cfg_load(c, a->config, err) < 0)
        goto fail;
    if (a->n_binds > 0)
        cfg_clear_binds(c);
    for (size_t i = 0; i < a->n_binds; i++)
        if (cfg_set(c, "bind", a->binds[i], err) < 0)
            goto fail;
    if (a->workers && cfg_set(c, "workers", a->workers, err) < 0)
        goto fail;
    if (a->threads && cfg_set(c, "threads", a->threads, err) < 0)
        goto fail;
    if (a->app && cfg_set(c, "app", a->app, err) < 0)
        goto fail;
    if (cfg_check(c, err) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "forkd: %s\n", err);
    cfg_fini(c);
    return 1;
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
main_print_check(const struct cfg *c, const struct app *app)
{
    printf("forkd: configuration OK%s%s\n", c->file ? ": " : "",
           c->file ? c->file : "");
    for (size_t i = 0; i < c->n_binds; i++)
        printf("  bind %s\n", c->binds[i]);
    printf("  workers %u, threads %u, keepalive %us, timeout %us\n", c->workers,
           c->threads, c->keepalive_s, c->timeout_s);
    printf("  app %s (handler API %u%s)\n", c->app_path, app->desc->api_version,
           (app->desc->flags & FORKD_APP_THREADSAFE) ? ", thread-safe" : "");
    for (size_t i = 0; i < c->n_opts; i++)
        printf("  option %s = %s\n", c->opts[i].key, c->opts[i].value);
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

static struct listener *
main_bind(const struct cfg *c)
{
    struct listener *ls = calloc(c->n_binds, sizeof(*ls));

    for (size_t i = 0; ls && i < c->n_binds; i++) {
        if (listen_open(&ls[i], c->binds[i], (int)c->backlog) == 0)
            continue;
        int saved = errno;
        if (c->bind_lines[i] > 0)
            fprintf(stderr, "forkd: %s:%d: bind: %s: %s\n", c->file,
                    c->bind_lines[i], c->binds[i], strerror(saved));
        else
            fprintf(stderr, "forkd: bind: %s: %s\n", c->binds[i],
                    strerror(saved));
        if (!log_is_stderr())
            log_error("bind %s: %s", c->binds[i], strerror(saved));
        while (i-- > 0)
            listen_close(&ls[i], 1);
        free(ls);
        return NULL;
    }
    return ls;
}

int
main(int argc, char **argv)
{
    struct main_args args = {0};
    struct cfg c;
    struct app app;
    struct listener *ls;
    char err[APP_ERR_MAX];
    int status = 1;

    if (main_parse(argc, argv, &args) != 0 || main_configure(&c, &args) != 0)
        goto out_args;
    if (app_open(&app, c.app_path, c.threads, err) < 0) {
        main_app_error(&c, err);
        goto out_cfg;
    }
    if (args.check) {
        main_print_check(&c, &app);
        status = 0;
        goto out_app;
    }
    if (main_open_logs(&c) < 0)
        goto out_app;
    if ((ls = main_bind(&c)) == NULL)
        goto out_logs;
    status = master_run(&c, &app, ls, c.n_binds);
    for (size_t i = 0; i < c.n_binds; i++)
        listen_close(&ls[i], 1);
    free(ls);
out_logs:
    log_close();
out_app:
    app_close(&app);
out_cfg:
    cfg_fini(&c);
out_args:
    free(args.binds);
    return status;
}
