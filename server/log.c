#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048
#define LOG_ACCESS_BUF 16384

static const char *const log_names[] = {"error", "warn", "notice", "info",
                                        "debug"};

static struct {
    int error_fd;
    int access_fd;
    enum forkd_level level;
    char *error_path;
    char *access_path;
    int journal; /* stderr is the journal's stream: lines carry <N> */
} log_state = {.error_fd = 2, .access_fd = -1, .level = FORKD_LOG_INFO};

/* Whether standard error is the stream systemd's journal gave this
 * service: JOURNAL_STREAM names its device and inode (sd-daemon(3)). */
static int
log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
           fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

/* Access lines are buffered per thread: handler threads log without a
 * lock, and each flushes its own buffer (whole lines, O_APPEND). */
static _Thread_local struct {
    size_t len;
    char buf[LOG_ACCESS_BUF];
} log_abuf;

static int
log_is_stdio(const char *path)
{
    return path == NULL || path[0] == '\0' || strcmp(path, "-") == 0;
}

static int
log_open_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static char *
log_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int
log_open(const char *error_path, const char *access_path,
         enum forkd_level level)
{
    int efd = 2, afd = -1;

    if (!log_is_stdio(error_path) && (efd = log_open_file(error_path)) < 0)
        return -1;
    if (access_path && access_path[0] != '\0') {
        afd = strcmp(access_path, "-") == 0 ? 1 : log_open_file(access_path);
        if (afd < 0) {
            int saved = errno;
            if (efd > 2)
                close(efd);
            errno = saved;
            return -1;
        }
    }
    log_close();
    log_state.journal = efd == 2 && log_stderr_is_journal();
    log_state.error_fd = efd;
    log_state.access_fd = afd;
    log_state.level = level;
    log_state.error_path =
        log_is_stdio(error_path) ? NULL : log_strdup(error_path);
    log_state.access_path = afd > 2 ? log_strdup(access_path) : NULL;
    return 0;
}

/* Reopen path onto *fd with dup2, so that the descriptor number (which a
 * worker may hold in a variable) stays valid across the rotation. */
static int
log_reopen_one(const char *path, int fd)
{
    int nfd;

    if (path == NULL || fd < 0)
        return 0;
    if ((nfd = log_open_file(path)) < 0)
        return -1;
    if (dup3(nfd, fd, O_CLOEXEC) < 0) {
        close(nfd);
        return -1;
    }
    close(nfd);
    return 0;
}

int
log_reopen(void)
{
    log_access_flush();
    if (log_reopen_one(log_state.error_path, log_state.error_fd) < 0)
        return -1;
    return log_reopen_one(log_state.access_path, log_state.access_fd);
}

void
log_files(int *error_fd, int *access_fd)
{
    *error_fd = log_state.error_path ? log_state.error_fd : -1;
    *access_fd = log_state.access_path ? log_state.access_fd : -1;
}

static void
log_adopt_one(int nfd, int fd, const char *path)
{
    if (nfd < 0)
        return;
    if (path != NULL && fd > 2)
        (void)dup3(nfd, fd, O_CLOEXEC);
    close(nfd);
}

void
log_adopt(int error_fd, int access_fd)
{
    log_access_flush();
    log_adopt_one(error_fd, log_state.error_fd, log_state.error_path);
    log_adopt_one(access_fd, log_state.access_fd, log_state.access_path);
}

void
log_close(void)
{
    log_access_flush();
    if (log_state.error_fd > 2)
        close(log_state.error_fd);
    if (log_state.access_fd > 2)
        close(log_state.access_fd);
    free(log_state.error_path);
    free(log_state.access_path);
    log_state.error_fd = 2;
    log_state.access_fd = -1;
    log_state.error_path = NULL;
    log_state.access_path = NULL;
}

int
log_is_stderr(void)
{
    return log_state.error_fd == 2;
}

int
log_is_enabled(enum forkd_level level)
{
    return level <= log_state.level;
}

int
log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
        if (strcmp(name, log_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *
log_level_name(enum forkd_level level)
{
    if ((unsigned)level >= sizeof(log_names) / sizeof(log_names[0]))
        return "?";
    return log_names[level];
}

/* Write all of buf; a short write to a log must not cut a line in two. */
static void
log_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to report a failing log */
        buf += n;
        len -= (size_t)n;
    }
}

void
log_vmsg(enum forkd_level level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    /* syslog's priorities: err, warning, notice, info, debug. */
    static const char prio[] = {'3', '4', '5', '6', '7'};
    int errno_saved = errno;
    size_t len = 0;
    int n;

    if (!log_is_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (log_state.journal && log_state.error_fd == 2) {
        /* journalctl -p filters on this; the journal strips it. */
        line[len++] = '<';
        line[len++] = prio[(unsigned)level < sizeof(prio) ? level : 4];
        line[len++] = '>';
    }
    len += strftime(line + len, sizeof(line) - len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(line + len, sizeof(line) - len,
                 " forkd[%d] %s: ", (int)getpid(), log_level_name(level));
    len += (size_t)n;
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* One line per event: control characters from peers never split it. */
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    log_write_all(log_state.error_fd, line, len);
    errno = errno_saved;
}

void
log_msg(enum forkd_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

int
log_has_access(void)
{
    return log_state.access_fd >= 0;
}

void
log_access_flush(void)
{
    if (log_abuf.len == 0 || log_state.access_fd < 0)
        return;
    log_write_all(log_state.access_fd, log_abuf.buf, log_abuf.len);
    log_abuf.len = 0;
}

void
log_access(const char *line, size_t len)
{
    if (log_state.access_fd < 0)
        return;
    if (len + 1 > sizeof(log_abuf.buf) - log_abuf.len)
        log_access_flush();
    if (len + 1 > sizeof(log_abuf.buf)) {
        log_write_all(log_state.access_fd, line, len);
        log_write_all(log_state.access_fd, "\n", 1);
        return;
    }
    memcpy(log_abuf.buf + log_abuf.len, line, len);
    log_abuf.len += len;
    log_abuf.buf[log_abuf.len++] = '\n';
}
