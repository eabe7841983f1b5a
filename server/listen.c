#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int
listen_parse_port(const char *s, unsigned short *port)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > 65535)
        return -1;
    *port = (unsigned short)v;
    return 0;
}

static int
listen_parse_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *un = (struct sockaddr_un *)ss;

    if (path[0] == '\0' || strlen(path) >= sizeof(un->sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    *len = sizeof(*un);
    return 0;
}

/* host is a literal, "*" or empty (any), or a name to resolve. */
static int
listen_parse_host(const char *host, unsigned short port, int v6,
                  struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;

    memset(ss, 0, sizeof(*ss));
    if (v6 && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return 0;
    }
    if (v6) {
        errno = EINVAL;
        return -1;
    }
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    *len = sizeof(*in);
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
        return 0;
    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    ((struct sockaddr_in *)ss)->sin_port = htons(port); /* same offset in v6 */
    freeaddrinfo(res);
    return 0;
}

int
listen_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon;
    unsigned short port;
    int v6 = 0;
    size_t hlen;

    if (strncmp(addr, "unix:", 5) == 0)
        return listen_parse_unix(addr + 5, ss, len);
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':') {
            errno = EINVAL;
            return -1;
        }
        v6 = 1;
        addr++;
        colon = close + 1;
        hlen = (size_t)(close - addr);
    } else {
        colon = strrchr(addr, ':');
        hlen = colon ? (size_t)(colon - addr) : 0;
    }
    if (colon == NULL || hlen >= sizeof(host) ||
        listen_parse_port(colon + 1, &port) < 0) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    return listen_parse_host(host, port, v6, ss, len);
}

/* A unix path that exists: refuse it if a server answers there, else it
 * is a stale socket from a dead server and may go. */
static int
listen_clear_unix(const struct sockaddr_un *un)
{
    struct stat st;
    int fd, rc;

    if (lstat(un->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    rc = connect(fd, (const struct sockaddr *)un, sizeof(*un));
    close(fd);
    if (rc == 0) {
        errno = EADDRINUSE;
        return -1;
    }
    return unlink(un->sun_path);
}

static void
listen_describe(struct listener *l, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;

    if (l->family == AF_UNIX) {
        snprintf(l->name, sizeof(l->name), "unix:%.120s", l->unix_path);
        snprintf(l->host, sizeof(l->host), "localhost");
        return;
    }
    if (l->family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(l->name, sizeof(l->name), "http://%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *in6 = (const void *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(l->name, sizeof(l->name), "http://[%s]:%u", ip, port);
    }
    snprintf(l->host, sizeof(l->host), "%s", ip);
    snprintf(l->port, sizeof(l->port), "%u", port);
}

static int
listen_set_options(struct listener *l)
{
    int one = 1;

    if (l->family == AF_UNIX)
        return 0;
    if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return -1;
    if (l->family == AF_INET6 &&
        setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        return -1;
    /* Accepted sockets inherit TCP_NODELAY: no setsockopt per connection.
     * TCP_DEFER_ACCEPT: a connection is accepted once its first bytes are
     * there, so the first read finds the request, and a worker that dies
     * takes no connection that had not even sent a request yet. */
    if (setsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one)) < 0)
        return -1;
    return setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
listen_open(struct listener *l, const char *addr, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int saved;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (listen_parse(addr, &ss, &len) < 0)
        return -1;
    l->family = ss.ss_family;
    if ((l->addr = strdup(addr)) == NULL)
        return -1;
    if (l->family == AF_UNIX &&
        ((l->unix_path = strdup(addr + 5)) == NULL ||
         listen_clear_unix((struct sockaddr_un *)&ss) < 0))
        goto fail;
    l->fd = socket(l->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || listen_set_options(l) < 0 ||
        bind(l->fd, (struct sockaddr *)&ss, len) < 0 ||
        listen(l->fd, backlog) < 0)
        goto fail;
    len = sizeof(ss);
    if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
        goto fail;
    listen_describe(l, &ss);
    return 0;
fail:
    saved = errno;
    listen_close(l, 0);
    errno = saved;
    return -1;
}

void
listen_close(struct listener *l, int unlink_path)
{
    if (l->fd >= 0)
        close(l->fd);
    if (unlink_path && l->unix_path)
        (void)unlink(l->unix_path); /* already gone is fine */
    free(l->addr);
    free(l->unix_path);
    l->fd = -1;
    l->addr = l->unix_path = NULL;
}

int
listen_adopt(struct listener *l, int fd, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int type, listening;
    socklen_t ilen = sizeof(int);

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) < 0)
        return -1;
    if (type != SOCK_STREAM || !listening) {
        errno = EINVAL;
        return -1;
    }
    l->fd = fd;
    l->family = ss.ss_family;
    if (l->family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)&ss;
        l->unix_path = strdup(un->sun_path);
    }
    l->addr = strdup(addr ? addr : l->unix_path ? l->unix_path : "inherited");
    /* Accepted sockets must be non-blocking and not leak into exec. */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    listen_describe(l, &ss);
    return 0;
}

int
listen_is_bound_to(int fd, const char *addr)
{
    struct sockaddr_storage want, have;
    socklen_t wlen, hlen = sizeof(have);

    if (listen_parse(addr, &want, &wlen) < 0 ||
        getsockname(fd, (struct sockaddr *)&have, &hlen) < 0 ||
        want.ss_family != have.ss_family)
        return 0;
    if (want.ss_family == AF_UNIX)
        return strcmp(((struct sockaddr_un *)&want)->sun_path,
                      ((struct sockaddr_un *)&have)->sun_path) == 0;
    if (want.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&want,
                                 *b = (const void *)&have;
        return a->sin_port == b->sin_port &&
               a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a = (const void *)&want,
                              *b = (const void *)&have;
    return a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}
