/* preload: a handler with the API 2 preload and atfork hooks, which
 * records each hook it ran in the file of [app] log = FILE, one line
 * "HOOK PID EUID [PPID]":
 *   preload = yes|no|fail  what preload returns (1, 0, -1)
 *   tag = TEXT              shown in every response (which build runs)
 *   forge = PID             in atfork's prepare, send the master forged
 *                           "worker started" messages naming PID
 * Each response is "tag=TAG preload=PID worker=PID". */
#include <forkd.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct preload_state {
    char tag[64];
    char log[512];
    long forge;
    pid_t preload_pid; /* 0: init ran without preload */
};

static void
preload_record(const struct preload_state *s, const char *hook)
{
    char line[128];
    int fd = open(s->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    int n = snprintf(line, sizeof(line), "%s %d %u %d\n", hook, (int)getpid(),
                     (unsigned)geteuid(), (int)getppid());

    if (fd < 0)
        return;
    (void)write(fd, line, (size_t)n);
    close(fd);
}

static struct preload_state *
preload_new(const struct forkd_option *opts, size_t n)
{
    struct preload_state *s = calloc(1, sizeof(*s));
    const char *tag = forkd_option(opts, n, "tag");
    const char *log = forkd_option(opts, n, "log");
    const char *forge = forkd_option(opts, n, "forge");

    if (s == NULL)
        return NULL;
    snprintf(s->tag, sizeof(s->tag), "%s", tag ? tag : "none");
    snprintf(s->log, sizeof(s->log), "%s", log ? log : "/dev/null");
    s->forge = forge ? strtol(forge, NULL, 10) : 0;
    return s;
}

static int
preload_preload(const struct forkd_option *opts, size_t n, void **state)
{
    const char *mode = forkd_option(opts, n, "preload");
    struct preload_state *s = preload_new(opts, n);

    if (s == NULL)
        return -1;
    preload_record(s, "preload");
    if (mode != NULL && strcmp(mode, "fail") == 0) {
        forkd_log(NULL, FORKD_LOG_ERROR, "preload: refusing as asked");
        free(s);
        return -1;
    }
    if (mode == NULL || strcmp(mode, "yes") != 0) {
        free(s);
        return 0;
    }
    s->preload_pid = getpid();
    *state = s;
    return 1;
}

/* What a template running hostile code could do: tell the master that
 * some other process is its new worker, on every socket it has. */
static void
preload_forge(const struct preload_state *s)
{
    int32_t msg[4] = {3 /* TMPL_SPAWNED */, 0, (int32_t)s->forge, 0};

    for (int fd = 3; fd < 64; fd++)
        for (int slot = 0; slot < 4; slot++) {
            msg[1] = slot;
            (void)send(fd, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
}

static void
preload_atfork(enum forkd_fork_phase phase, void *state)
{
    struct preload_state *s = state;

    if (phase == FORKD_FORK_PREPARE && s->forge > 0)
        preload_forge(s);
    preload_record(s, phase == FORKD_FORK_PREPARE  ? "prepare"
                      : phase == FORKD_FORK_PARENT ? "parent"
                                                   : "child");
}

static int
preload_init(const struct forkd_option *opts, size_t n, void **state)
{
    struct preload_state *s = *state;

    if (s == NULL && (s = preload_new(opts, n)) == NULL)
        return -1;
    preload_record(s, s->preload_pid ? "init-preloaded" : "init");
    *state = s;
    return 0;
}

static int
preload_handle(struct forkd_req *req, void *state)
{
    const struct preload_state *s = state;
    struct forkd_header h[] = {{"Content-Type", "text/plain"}};
    char body[160];
    int n = snprintf(body, sizeof(body), "tag=%s preload=%d worker=%d\n",
                     s->tag, (int)s->preload_pid, (int)getpid());

    if (forkd_start_response(req, "200 OK", h, 1) != 0)
        return -1;
    return forkd_write(req, body, (size_t)n) == n ? 0 : -1;
}

static void
preload_fini(void *state)
{
    free(state);
}

const struct forkd_app forkd_app = {
    .api_version = FORKD_API_VERSION,
    .flags = FORKD_APP_THREADSAFE,
    .init = preload_init,
    .handle = preload_handle,
    .fini = preload_fini,
    .preload = preload_preload,
    .atfork = preload_atfork,
};
