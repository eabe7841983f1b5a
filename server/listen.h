/* listen: the listening sockets: parse a bind address, bind and listen
 * (TCP v4/v6 or unix), refuse a unix path another server holds.  Never
 * logs: errors come back as errno and the caller names the address. */
#ifndef FORKD_LISTEN_H
#define FORKD_LISTEN_H

#include <sys/socket.h>

struct listener {
    int fd;          /* owned; -1 when closed */
    int family;      /* AF_INET, AF_INET6, AF_UNIX */
    char *addr;      /* the bind string as configured; owned */
    char *unix_path; /* for AF_UNIX, to unlink at stop; owned */
    char name[128];  /* "http://127.0.0.1:8000" or "unix:/path" */
    char host[64];   /* SERVER_NAME when the request has no Host */
    char port[8];    /* SERVER_PORT likewise ("" for unix) */
};

/* Parse addr into a socket address.  Returns 0 or -1 (EINVAL: not
 * HOST:PORT, [IPV6]:PORT, *:PORT or unix:PATH; other errno from name
 * resolution). */
int listen_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

/* Bind and listen on addr.  Returns 0, or -1 with errno (EADDRINUSE also
 * when a live server holds a unix path). */
int listen_open(struct listener *l, const char *addr, int backlog);

/* Use fd, a listening socket handed over by systemd or an upgrading
 * forkd (takes ownership).  addr may be NULL.  Returns 0 or -1 (ENOTSOCK
 * or EINVAL: not a listening stream socket). */
int listen_adopt(struct listener *l, int fd, const char *addr);

/* Whether fd is bound to the address addr names. */
int listen_is_bound_to(int fd, const char *addr);

/* Close the socket; unlink the unix path if unlink_path. */
void listen_close(struct listener *l, int unlink_path);

#endif
