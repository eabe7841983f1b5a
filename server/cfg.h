/* cfg: the configuration: defaults, the ini file (through inih) and the
 * command line, validated into one struct before anything starts.  Errors
 * are reported as one line "forkd: FILE:LINE: KEY: message". */
#ifndef FORKD_CFG_H
#define FORKD_CFG_H

#include <stddef.h>

#include "forkd.h"

#define CFG_ERR_MAX 512

struct cfg {
    char *file; /* the ini file as given, or NULL; owned */
    char *dir;  /* its directory, for relative paths; owned */

    char **binds;    /* owned, n_binds entries */
    int *bind_lines; /* line of each bind in the file, 0: command line */
    size_t n_binds;
    int cur_line; /* line being applied (0: command line), for bind */
    unsigned workers;
    unsigned threads;
    unsigned backlog;
    unsigned keepalive_s;
    unsigned max_connections;
    unsigned header_timeout_s;
    unsigned body_timeout_s;
    unsigned send_timeout_s;
    unsigned timeout_s;
    unsigned graceful_timeout_s;
    size_t limit_request_line;
    size_t limit_request_fields;
    size_t limit_request_field_size;
    size_t limit_request_head;
    size_t limit_request_body;  /* 0: unlimited */
    char *error_log;            /* owned; NULL: stderr */
    char *access_log;           /* owned; NULL: none */
    unsigned access_log_format; /* enum access_format */
    enum forkd_level log_level;
    int daemon;         /* detach after start-up */
    char *pidfile;      /* owned; "": none */
    char *user, *group; /* owned; "": keep the current ones */
    unsigned umask_bits;
    char *chdir;           /* owned; "": stay */
    unsigned socket_mode;  /* of unix sockets */
    char *socket_owner;    /* owned; "user[:group]" of unix sockets */
    int handoff;           /* busy workers pass waiting connections on */
    unsigned max_requests; /* per worker before it is recycled; 0: off */
    unsigned max_requests_jitter;
    char *forwarded_allow_ips; /* owned; peers trusted for X-Forwarded-* */
    char *stats; /* owned; the stats endpoint's address, "": off */

    char *app_path;            /* owned, resolved against dir */
    int app_line;              /* line of [app] path, 0 if not from the file */
    int user_line, group_line; /* lines of user and group, 0: not in it */
    struct forkd_option *opts; /* [app] options; keys and values owned */
    char **opt_dirs; /* per option: the directory its relative paths are
                        taken from (forkd_option_dir); owned */
    size_t n_opts;
};

/* Fill c with the defaults.  Returns 0 or -1 (out of memory). */
int cfg_init(struct cfg *c);

/* Free everything c owns; c may then be cfg_init'ed again. */
void cfg_fini(struct cfg *c);

/* Read the ini file at path into c (over the defaults).  Returns 0, or -1
 * with a one-line message "FILE:LINE: KEY: message" (or "FILE: message") in
 * err. */
int cfg_load(struct cfg *c, const char *path, char err[CFG_ERR_MAX]);

/* Set one key as the command line does ("workers", "3"): the value is
 * checked as the file's would be.  "bind" appends (the caller clears the
 * file's binds first with cfg_clear_binds).  Returns 0 or -1 with
 * "KEY: message" in err. */
int cfg_set(struct cfg *c, const char *key, const char *value,
            char err[CFG_ERR_MAX]);
void cfg_clear_binds(struct cfg *c);

/* Set an [app] option from the command line, "KEY=VALUE" (-o): it comes
 * after the file's, so the handler sees it win (forkd_option takes the
 * last).  "path=..." sets the handler path.  Returns 0 or -1 with
 * "-o: message" in err. */
int cfg_set_option(struct cfg *c, const char *arg, char err[CFG_ERR_MAX]);

/* Descriptors one worker may hold at once under c: its max_connections
 * (and the one it accepts past them to close the oldest), a /proc file
 * per thread, the listeners, and a margin of 64 for its own (epoll, logs,
 * handoff) and the handler's files.  The master raises RLIMIT_NOFILE to
 * this. */
unsigned long cfg_nofile_need(const struct cfg *c);

/* Final checks after file and command line (an app path is required).
 * Returns 0 or -1 with the message in err. */
int cfg_check(struct cfg *c, char err[CFG_ERR_MAX]);

#endif
