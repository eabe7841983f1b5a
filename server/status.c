#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "listen.h"

#define STATUS_TIMEOUT_MS 5000
#define STATUS_MAX (4u << 20)

static void
status_usage(FILE *f)
{
    fprintf(f, "usage: forkd status [-c FILE | --stats ADDR] [--json] "
               "[--watch N]\n"
               "  -c, --config FILE  the ini whose [server] stats names the "
               "endpoint\n"
               "      --stats ADDR   ask ADDR (unix:PATH or HOST:PORT) "
               "instead\n"
               "      --json         print /status as JSON\n"
               "      --watch N      again every N seconds, until "
               "interrupted\n");
}

/* Wait for fd to be ready for events until deadline; 0 or -1. */
static int
status_wait(int fd, short events, const struct timespec *deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    struct timespec now;
    long ms;
    int rc;

    do {
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (deadline->tv_sec - now.tv_sec) * 1000 +
             (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&p, 1, (int)ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        errno = ETIMEDOUT;
    return rc > 0 ? 0 : -1;
}

/* GET path from addr: the body in a malloc'd string, or NULL with errno
 * (EPROTO: not a 200 answer). */
static char *
status_get(const char *addr, const char *path)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct timespec deadline;
    char req[256], *buf = NULL, *body;
    size_t n = 0, cap = 0;
    int fd;
    ssize_t k;

    if (listen_parse(addr, &ss, &len) < 0)
        return NULL;
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     0)) < 0)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += STATUS_TIMEOUT_MS / 1000;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
        (errno != EINPROGRESS || status_wait(fd, POLLOUT, &deadline) < 0))
        goto fail;
    int err = 0;
    socklen_t elen = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err) {
        errno = err;
        goto fail;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        goto fail;
    for (;;) {
        if (n + 4096 > cap) {
            char *p = cap >= STATUS_MAX ? NULL : realloc(buf, cap + 65536);
            if (p == NULL)
                goto fail;
            buf = p;
            cap += 65536;
        }
        if (status_wait(fd, POLLIN, &deadline) < 0)
            goto fail;
        if ((k = read(fd, buf + n, cap - n - 1)) < 0 && errno != EAGAIN)
            goto fail;
        if (k == 0)
            break;
        n += k > 0 ? (size_t)k : 0;
    }
    close(fd);
    buf[n] = '\0';
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0 ||
        (body = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        errno = EPROTO;
        return NULL;
    }
    memmove(buf, body + 4, n - (size_t)(body + 4 - buf) + 1);
    return buf;
fail:
    k = errno;
    close(fd);
    free(buf);
    errno = (int)k;
    return NULL;
}

/* The stats address: --stats, or the one the ini names. */
static int
status_addr(const char *config, const char *given, char **addr)
{
    struct cfg c;
    char err[CFG_ERR_MAX];

    if (given) {
        *addr = strdup(given);
        return *addr ? 0 : -1;
    }
    if (cfg_init(&c) < 0 || cfg_load(&c, config, err) < 0) {
        fprintf(stderr, "forkd status: %s\n", err);
        cfg_fini(&c);
        return -1;
    }
    if (c.stats[0] == '\0') {
        fprintf(stderr,
                "forkd status: %s: stats is not set: add stats = "
                "unix:/run/forkd/stats.sock (or 127.0.0.1:PORT) to [server]\n",
                config);
        cfg_fini(&c);
        return -1;
    }
    *addr = c.stats;
    c.stats = NULL;
    cfg_fini(&c);
    return 0;
}

int
status_main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"stats", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"watch", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *config = "/etc/forkd/forkd.ini", *given = NULL;
    char *addr = NULL, *body, *end;
    long watch = 0;
    int json = 0, opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 's':
            given = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'w':
            watch = strtol(optarg, &end, 10);
            if (*end || watch < 1 || watch > 86400) {
                fprintf(stderr, "forkd status: --watch: want 1..86400 "
                                "seconds\n");
                return 1;
            }
            break;
        case 'h':
            status_usage(stdout);
            return 0;
        default:
            status_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        status_usage(stderr);
        return 1;
    }
    if (status_addr(config, given, &addr) < 0)
        return 1;
    for (;;) {
        body = status_get(addr, json ? "/status" : "/status?text");
        if (body == NULL) {
            fprintf(stderr, "forkd status: no forkd answers on %s: %s\n", addr,
                    errno == EPROTO ? "not a forkd stats endpoint"
                                    : strerror(errno));
            free(addr);
            return 1;
        }
        if (watch)
            fputs("\033[H\033[2J", stdout); /* the screen anew, as top */
        fputs(body, stdout);
        fflush(stdout);
        free(body);
        if (!watch)
            break;
        sleep((unsigned)watch);
    }
    free(addr);
    return 0;
}
