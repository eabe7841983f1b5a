#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "spread.h"

/* Debian's inih reads lines with fgets into INI_MAX_LINE (200) bytes, so a
 * line longer than 199 characters is silently split. */
#define CFG_LINE_MAX (INI_MAX_LINE - 1)

enum cfg_type {
    CFG_UINT,
    CFG_SIZE,
    CFG_PATH,
    CFG_LOGPATH,
    CFG_LEVEL,
    CFG_BIND,
    CFG_BOOL,
    CFG_OCTAL,
    CFG_STR,
    CFG_ENUM, /* one of a list of names (cfg_enums) */
    CFG_STATS /* "", unix:PATH or a loopback HOST:PORT */
};

/* One row per [server] key: how to parse it, its bounds and default.
 * Invariant: every key documented in conf/forkd.ini and forkd.ini(5) has
 * exactly one row here, and nothing else sets struct cfg fields. */
struct cfg_key {
    const char *name;
    enum cfg_type type;
    unsigned long long min, max;
    const char *def; /* NULL: no default (bind: added by cfg_check) */
    size_t off;
};

/* CFG_ENUM keys: the values, NULL-terminated, at the index in their row's
 * min; the value stored is an unsigned, the index of the name given. */
static const char *const cfg_access_formats[] = {"forkd", "combined", "json",
                                                 NULL};
static const char *const *const cfg_enums[] = {cfg_access_formats};

#define CFG_OFF(f) offsetof(struct cfg, f)

static const struct cfg_key cfg_keys[] = {
    {"bind", CFG_BIND, 0, 0, NULL, 0},
    {"workers", CFG_UINT, 1, 1024, "1", CFG_OFF(workers)},
    {"threads", CFG_UINT, 1, 1024, "1", CFG_OFF(threads)},
    {"backlog", CFG_UINT, 1, 65535, "2048", CFG_OFF(backlog)},
    {"keepalive", CFG_UINT, 0, 3600, "5", CFG_OFF(keepalive_s)},
    {"max_connections", CFG_UINT, 1, 100000, "1000", CFG_OFF(max_connections)},
    {"header_timeout", CFG_UINT, 1, 3600, "10", CFG_OFF(header_timeout_s)},
    {"body_timeout", CFG_UINT, 1, 3600, "30", CFG_OFF(body_timeout_s)},
    {"send_timeout", CFG_UINT, 1, 3600, "30", CFG_OFF(send_timeout_s)},
    {"timeout", CFG_UINT, 0, 86400, "30", CFG_OFF(timeout_s)},
    {"graceful_timeout", CFG_UINT, 0, 86400, "30", CFG_OFF(graceful_timeout_s)},
    {"limit_request_line", CFG_SIZE, 64, 65536, "8190",
     CFG_OFF(limit_request_line)},
    {"limit_request_fields", CFG_SIZE, 1, 1000, "100",
     CFG_OFF(limit_request_fields)},
    {"limit_request_field_size", CFG_SIZE, 64, 65536, "8190",
     CFG_OFF(limit_request_field_size)},
    {"limit_request_head", CFG_SIZE, 256, 1048576, "32768",
     CFG_OFF(limit_request_head)},
    {"limit_request_body", CFG_SIZE, 0, INT64_MAX, "10485760",
     CFG_OFF(limit_request_body)},
    {"error_log", CFG_LOGPATH, 0, 0, "", CFG_OFF(error_log)},
    {"access_log", CFG_LOGPATH, 0, 0, "", CFG_OFF(access_log)},
    {"access_log_format", CFG_ENUM, 0, 0, "forkd", CFG_OFF(access_log_format)},
    {"log_level", CFG_LEVEL, 0, 0, "info", CFG_OFF(log_level)},
    {"daemon", CFG_BOOL, 0, 1, "no", CFG_OFF(daemon)},
    {"pidfile", CFG_PATH, 0, 0, "", CFG_OFF(pidfile)},
    {"user", CFG_STR, 0, 0, "", CFG_OFF(user)},
    {"group", CFG_STR, 0, 0, "", CFG_OFF(group)},
    {"umask", CFG_OCTAL, 0, 0777, "0022", CFG_OFF(umask_bits)},
    {"chdir", CFG_PATH, 0, 0, "", CFG_OFF(chdir)},
    {"socket_mode", CFG_OCTAL, 0, 0777, "0666", CFG_OFF(socket_mode)},
    {"socket_owner", CFG_STR, 0, 0, "", CFG_OFF(socket_owner)},
    {"handoff", CFG_BOOL, 0, 1, "yes", CFG_OFF(handoff)},
    {"max_requests", CFG_UINT, 0, UINT32_MAX, "0", CFG_OFF(max_requests)},
    {"max_requests_jitter", CFG_UINT, 0, UINT32_MAX, "0",
     CFG_OFF(max_requests_jitter)},
    {"forwarded_allow_ips", CFG_STR, 0, 0, "127.0.0.1,::1,unix",
     CFG_OFF(forwarded_allow_ips)},
    {"stats", CFG_STATS, 0, 0, "", CFG_OFF(stats)},
};

#define CFG_N_KEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

static const struct cfg_key *
cfg_find(const char *name)
{
    for (size_t i = 0; i < CFG_N_KEYS; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

static void cfg_errf(char err[CFG_ERR_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cfg_errf(char err[CFG_ERR_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CFG_ERR_MAX, fmt, ap);
    va_end(ap);
}

/* Digits only: no sign, no spaces, no 0x; strtoull alone accepts all. */
static int
cfg_parse_ull(const char *s, unsigned long long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return (errno != 0 || *end != '\0') ? -1 : 0;
}

/* The working directory forkd started in: what relative paths of -o
 * options are taken from, also when a HUP reads them again after chdir. */
static const char *
cfg_start_dir(void)
{
    static char dir[PATH_MAX];

    if (dir[0] == '\0' && getcwd(dir, sizeof(dir)) == NULL)
        snprintf(dir, sizeof(dir), "/");
    return dir;
}

/* Resolve a relative path against dir (or the working directory). */
static char *
cfg_resolve(const char *dir, const char *path)
{
    char cwd[PATH_MAX];
    char *out;

    if (path[0] == '/')
        return strdup(path);
    if (dir == NULL) {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return NULL;
        dir = cwd;
    }
    if (asprintf(&out, "%s/%s", dir, path) < 0)
        return NULL;
    return out;
}

static int
cfg_set_string(char **field, char *value, char err[CFG_ERR_MAX],
               const char *key)
{
    if (value == NULL) {
        cfg_errf(err, "%s: out of memory", key);
        return -1;
    }
    free(*field);
    *field = value;
    return 0;
}

/* A relative unix socket path is resolved like any other path. */
static char *
cfg_bind_value(const char *dir, const char *value)
{
    char *path, *out;

    if (strncmp(value, "unix:", 5) != 0 || value[5] == '/' || value[5] == '\0')
        return strdup(value);
    if ((path = cfg_resolve(dir, value + 5)) == NULL)
        return NULL;
    if (asprintf(&out, "unix:%s", path) < 0)
        out = NULL;
    free(path);
    return out;
}

/* stats = ADDR: off (""), a unix socket, or a loopback address only: the
 * numbers are the operator's, not the internet's. */
static int
cfg_set_stats(char **field, const char *value, const char *dir,
              char err[CFG_ERR_MAX])
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (value[0] != '\0' && strncmp(value, "unix:", 5) != 0) {
        int ok = listen_parse(value, &ss, &len) == 0;
        if (ok && ss.ss_family == AF_INET)
            ok = (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) ==
                 127;
        else if (ok)
            ok = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
        if (!ok) {
            cfg_errf(err,
                     "stats: \"%s\": want unix:PATH or a loopback "
                     "HOST:PORT (127.0.0.1:9100, [::1]:9100)",
                     value);
            return -1;
        }
    }
    return cfg_set_string(field, cfg_bind_value(dir, value), err, "stats");
}

static int
cfg_add_bind(struct cfg *c, const char *value, const char *dir,
             char err[CFG_ERR_MAX])
{
    struct sockaddr_storage ss;
    socklen_t len;
    char *v;
    char **binds;
    int *lines;

    if (listen_parse(value, &ss, &len) < 0) {
        cfg_errf(err,
                 "bind: expected HOST:PORT, [IPV6]:PORT or unix:PATH, "
                 "got \"%s\"",
                 value);
        return -1;
    }
    binds = realloc(c->binds, (c->n_binds + 1) * sizeof(*binds));
    if (binds)
        c->binds = binds;
    lines = realloc(c->bind_lines, (c->n_binds + 1) * sizeof(*lines));
    if (lines)
        c->bind_lines = lines;
    if (!binds || !lines || !(v = cfg_bind_value(dir, value))) {
        cfg_errf(err, "bind: out of memory");
        return -1;
    }
    c->binds[c->n_binds] = v;
    c->bind_lines[c->n_binds++] = c->cur_line;
    return 0;
}

static int
cfg_set_number(struct cfg *c, const struct cfg_key *k, const char *value,
               char err[CFG_ERR_MAX])
{
    unsigned long long v;
    char *p = (char *)c + k->off;

    if (cfg_parse_ull(value, &v) < 0 || v < k->min || v > k->max) {
        cfg_errf(err, "%s: expected an integer in %llu..%llu, got \"%s\"",
                 k->name, k->min, k->max, value);
        return -1;
    }
    if (k->type == CFG_UINT)
        *(unsigned *)(void *)p = (unsigned)v;
    else
        *(size_t *)(void *)p = (size_t)v;
    return 0;
}

static int
cfg_set_bool(struct cfg *c, const struct cfg_key *k, const char *value,
             char err[CFG_ERR_MAX])
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    int *field = (int *)(void *)((char *)c + k->off);

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
            *field = strcasecmp(value, yes[i]) == 0;
            return 0;
        }
    }
    cfg_errf(err, "%s: expected yes or no, got \"%s\"", k->name, value);
    return -1;
}

static int
cfg_set_octal(struct cfg *c, const struct cfg_key *k, const char *value,
              char err[CFG_ERR_MAX])
{
    unsigned *field = (unsigned *)(void *)((char *)c + k->off);
    unsigned long v;
    char *end;

    if (value[0] < '0' || value[0] > '7' ||
        (v = strtoul(value, &end, 8), *end != '\0') || v > k->max) {
        cfg_errf(err, "%s: expected an octal mode 0..%llo, got \"%s\"", k->name,
                 k->max, value);
        return -1;
    }
    *field = (unsigned)v;
    return 0;
}

static int
cfg_set_enum(struct cfg *c, const struct cfg_key *k, const char *value,
             char err[CFG_ERR_MAX])
{
    const char *const *names = cfg_enums[k->min];
    char known[256];
    size_t len = 0;

    for (unsigned i = 0; names[i] != NULL; i++) {
        if (strcmp(value, names[i]) == 0) {
            *(unsigned *)(void *)((char *)c + k->off) = i;
            return 0;
        }
        len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s",
                                i ? ", " : "", names[i]);
    }
    cfg_errf(err, "%s: expected one of %s, got \"%s\"", k->name, known, value);
    return -1;
}

/* Set key k from value; dir resolves relative paths (NULL: cwd). */
static int
cfg_set_key(struct cfg *c, const struct cfg_key *k, const char *value,
            const char *dir, char err[CFG_ERR_MAX])
{
    char **str = (char **)(void *)((char *)c + k->off);
    int level;

    switch (k->type) {
    case CFG_UINT:
    case CFG_SIZE:
        return cfg_set_number(c, k, value, err);
    case CFG_BIND:
        return cfg_add_bind(c, value, dir, err);
    case CFG_LOGPATH:
        if (value[0] == '\0' || strcmp(value, "-") == 0)
            return cfg_set_string(str, strdup(value), err, k->name);
        return cfg_set_string(str, cfg_resolve(dir, value), err, k->name);
    case CFG_PATH:
        if (value[0] == '\0')
            return cfg_set_string(str, strdup(value), err, k->name);
        return cfg_set_string(str, cfg_resolve(dir, value), err, k->name);
    case CFG_STR:
        return cfg_set_string(str, strdup(value), err, k->name);
    case CFG_BOOL:
        return cfg_set_bool(c, k, value, err);
    case CFG_OCTAL:
        return cfg_set_octal(c, k, value, err);
    case CFG_ENUM:
        return cfg_set_enum(c, k, value, err);
    case CFG_STATS:
        return cfg_set_stats(str, value, dir, err);
    case CFG_LEVEL:
        if ((level = log_level_parse(value)) < 0) {
            cfg_errf(err,
                     "%s: expected error, warn, notice, info or debug, "
                     "got \"%s\"",
                     k->name, value);
            return -1;
        }
        c->log_level = (enum forkd_level)level;
        return 0;
    }
    return -1;
}

int
cfg_init(struct cfg *c)
{
    char err[CFG_ERR_MAX];

    memset(c, 0, sizeof(*c));
    (void)cfg_start_dir(); /* at start-up, before any chdir */
    for (size_t i = 0; i < CFG_N_KEYS; i++)
        if (cfg_keys[i].def &&
            cfg_set_key(c, &cfg_keys[i], cfg_keys[i].def, NULL, err) < 0) {
            cfg_fini(c);
            return -1;
        }
    return 0;
}

void
cfg_clear_binds(struct cfg *c)
{
    for (size_t i = 0; i < c->n_binds; i++)
        free(c->binds[i]);
    free(c->binds);
    free(c->bind_lines);
    c->binds = NULL;
    c->bind_lines = NULL;
    c->n_binds = 0;
}

void
cfg_fini(struct cfg *c)
{
    cfg_clear_binds(c);
    free(c->file);
    free(c->dir);
    free(c->error_log);
    free(c->access_log);
    free(c->app_path);
    free(c->pidfile);
    free(c->user);
    free(c->group);
    free(c->chdir);
    free(c->socket_owner);
    free(c->forwarded_allow_ips);
    free(c->stats);
    for (size_t i = 0; i < c->n_opts; i++) {
        free((char *)c->opts[i].key);
        free((char *)c->opts[i].value);
        free(c->opt_dirs[i]);
    }
    free(c->opts);
    free(c->opt_dirs);
    memset(c, 0, sizeof(*c));
}

int
cfg_set(struct cfg *c, const char *key, const char *value,
        char err[CFG_ERR_MAX])
{
    const struct cfg_key *k;

    if (strcmp(key, "app") == 0) {
        c->app_line = 0;
        return cfg_set_string(&c->app_path, cfg_resolve(NULL, value), err,
                              "app");
    }
    if ((k = cfg_find(key)) == NULL) {
        cfg_errf(err, "%s: unknown option", key);
        return -1;
    }
    c->cur_line = 0;
    return cfg_set_key(c, k, value, NULL, err);
}

int
cfg_check(struct cfg *c, char err[CFG_ERR_MAX])
{
    if (c->app_path == NULL || c->app_path[0] == '\0') {
        cfg_errf(err, "path: no handler: set [app] path or give APP.so");
        return -1;
    }
    c->cur_line = 0;
    if (c->n_binds == 0 && cfg_add_bind(c, "127.0.0.1:8000", NULL, err) < 0)
        return -1;
    if (c->limit_request_line > c->limit_request_head ||
        c->limit_request_field_size > c->limit_request_head) {
        cfg_errf(err, "limit_request_head: must be at least "
                      "limit_request_line and limit_request_field_size");
        return -1;
    }
    return 0;
}

/* --- the ini file -------------------------------------------------------
 * inih does the parsing; a first pass over the file finds the line of each
 * name=value line (Debian's inih has no INI_HANDLER_LINENO) and refuses the
 * lines inih would truncate. */

struct cfg_load {
    struct cfg *c;
    const char *path;
    int *lines; /* line of the k-th name=value (or continuation) line */
    size_t n_lines, call;
    int failed;
    char *err;
};

static char *
cfg_lstrip(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    return s;
}

static int
cfg_push_line(struct cfg_load *ld, int line)
{
    int *lines = realloc(ld->lines, (ld->n_lines + 1) * sizeof(*lines));

    if (lines == NULL)
        return -1;
    ld->lines = lines;
    ld->lines[ld->n_lines++] = line;
    return 0;
}

/* The "=" or ":" of a name=value line, as inih finds it: an inline
 * comment (";" after whitespace) ends the search. */
static const char *
cfg_find_separator(const char *s)
{
    int was_space = 0;

    for (; *s; s++) {
        if (*s == '=' || *s == ':')
            return s;
        if (*s == ';' && was_space)
            return NULL;
        was_space = *s == ' ' || *s == '\t';
    }
    return NULL;
}

/* Classify one line as inih does; returns -1 with err set on a bad line. */
static int
cfg_scan_line(struct cfg_load *ld, char *buf, size_t len, int line,
              int *has_name)
{
    char *start = cfg_lstrip(buf);

    if (len > CFG_LINE_MAX) {
        size_t klen = strcspn(start, "=:; \t");
        int is_key = klen > 0 && *start != '#' && *start != '[';
        cfg_errf(ld->err,
                 "%s:%d: %.*s: line too long (%zu characters, at most %d)",
                 ld->path, line, is_key ? (int)klen : 9,
                 is_key ? start : "(comment)", len, CFG_LINE_MAX);
        return -1;
    }
    if (*start == '\0' || *start == ';' || *start == '#')
        return 0;
    if (*has_name && start > buf)
        return cfg_push_line(ld, line);
    if (*start == '[') {
        if (strchr(start, ']') == NULL) {
            cfg_errf(ld->err, "%s:%d: expected [SECTION], got \"%.40s\"",
                     ld->path, line, start);
            return -1;
        }
        *has_name = 0;
        return 0;
    }
    if (cfg_find_separator(start) == NULL) {
        cfg_errf(ld->err, "%s:%d: expected KEY = VALUE, got \"%.40s\"",
                 ld->path, line, start);
        return -1;
    }
    *has_name = 1;
    return cfg_push_line(ld, line);
}

static int
cfg_scan(struct cfg_load *ld)
{
    FILE *f = fopen(ld->path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int line = 0, has_name = 0, rc = 0;

    if (f == NULL) {
        cfg_errf(ld->err, "%s: cannot open: %s", ld->path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (n = getline(&buf, &cap, f)) >= 0) {
        size_t len = (size_t)n;
        line++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        rc = cfg_scan_line(ld, buf, len, line, &has_name);
    }
    if (rc == 0 && ferror(f)) {
        cfg_errf(ld->err, "%s: cannot read: %s", ld->path, strerror(errno));
        rc = -1;
    }
    free(buf);
    fclose(f);
    return rc;
}

/* Add [app] option key = value, whose relative paths are taken from dir
 * (NULL: the start directory). */
static int
cfg_add_option(struct cfg *c, const char *key, const char *value,
               const char *dir)
{
    struct forkd_option *opts;
    char **dirs;
    size_t n = c->n_opts;

    if ((opts = realloc(c->opts, (n + 1) * sizeof(*opts))) == NULL)
        return -1;
    c->opts = opts;
    if ((dirs = realloc(c->opt_dirs, (n + 1) * sizeof(*dirs))) == NULL)
        return -1;
    c->opt_dirs = dirs;
    opts[n].key = strdup(key);
    opts[n].value = strdup(value);
    dirs[n] = strdup(dir ? dir : cfg_start_dir());
    if (opts[n].key == NULL || opts[n].value == NULL || dirs[n] == NULL) {
        free((char *)opts[n].key);
        free((char *)opts[n].value);
        free(dirs[n]);
        return -1;
    }
    c->n_opts++;
    return 0;
}

static int
cfg_set_app(struct cfg_load *ld, const char *name, const char *value, char *msg,
            int line)
{
    struct cfg *c = ld->c;

    if (strcmp(name, "path") == 0) {
        c->app_line = line;
        return cfg_set_string(&c->app_path, cfg_resolve(c->dir, value), msg,
                              name);
    }
    if (cfg_add_option(c, name, value, c->dir) < 0) {
        cfg_errf(msg, "%s: out of memory", name);
        return -1;
    }
    return 0;
}

unsigned long
cfg_nofile_need(const struct cfg *c)
{
    /* The inboxes: the master holds both ends of each. */
    return (unsigned long)c->max_connections + 1 + c->threads + c->n_binds +
           64 + 2 * SPREAD_SLOTS;
}

int
cfg_set_option(struct cfg *c, const char *arg, char err[CFG_ERR_MAX])
{
    const char *eq = strchr(arg, '=');
    char key[256];

    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(key)) {
        cfg_errf(err, "-o: \"%.64s\": want KEY=VALUE (an [app] option)", arg);
        return -1;
    }
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    if (strcmp(key, "path") == 0)
        return cfg_set(c, "app", eq + 1, err);
    if (cfg_add_option(c, key, eq + 1, NULL) < 0) {
        cfg_errf(err, "-o: %s: out of memory", key);
        return -1;
    }
    return 0;
}

/* inih's callback: returns 1 to go on, 0 on error (the first one is kept). */
static int
cfg_ini_handler(void *user, const char *section, const char *name,
                const char *value)
{
    struct cfg_load *ld = user;
    char msg[CFG_ERR_MAX];
    const struct cfg_key *k;
    int line = ld->call < ld->n_lines ? ld->lines[ld->call] : 0;
    int rc;

    ld->call++;
    ld->c->cur_line = line;
    if (strcmp(section, "server") == 0) {
        if ((k = cfg_find(name)) == NULL) {
            cfg_errf(msg, "%s: unknown key in [server]", name);
            rc = -1;
        } else {
            rc = cfg_set_key(ld->c, k, value, ld->c->dir, msg);
            if (strcmp(name, "user") == 0)
                ld->c->user_line = line;
            else if (strcmp(name, "group") == 0)
                ld->c->group_line = line;
        }
    } else if (strcmp(section, "app") == 0) {
        rc = cfg_set_app(ld, name, value, msg, line);
    } else {
        cfg_errf(msg, "%s: unknown section [%s]", name, section);
        rc = -1;
    }
    if (rc < 0 && !ld->failed) {
        ld->failed = 1;
        cfg_errf(ld->err, "%s:%d: %s", ld->path, line, msg);
    }
    return rc == 0;
}

static char *
cfg_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *rel, *abs;

    if (slash == NULL)
        return cfg_resolve(NULL, ".");
    if (slash == path)
        return strdup("/");
    if ((rel = strndup(path, (size_t)(slash - path))) == NULL)
        return NULL;
    abs = cfg_resolve(NULL, rel);
    free(rel);
    return abs;
}

int
cfg_load(struct cfg *c, const char *path, char err[CFG_ERR_MAX])
{
    struct cfg_load ld = {.c = c, .path = path, .err = err};
    int rc;

    free(c->file);
    free(c->dir);
    c->file = strdup(path);
    c->dir = cfg_dirname(path);
    if (c->file == NULL || c->dir == NULL) {
        cfg_errf(err, "%s: out of memory", path);
        return -1;
    }
    if (cfg_scan(&ld) < 0) {
        free(ld.lines);
        return -1;
    }
    rc = ini_parse(path, cfg_ini_handler, &ld);
    free(ld.lines);
    if (ld.failed)
        return -1;
    if (rc != 0) {
        if (rc < 0)
            cfg_errf(err, "%s: cannot read: %s", path, strerror(errno));
        else
            cfg_errf(err, "%s:%d: syntax error", path, rc);
        return -1;
    }
    return 0;
}
