#include "handoff.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
handoff_open(int fds[2])
{
    int size = 4 << 20; /* room for a whole head of the largest limit */

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   fds) < 0)
        return -1;
    /* Capped by net.core.wmem_max: a bigger message fails with EMSGSIZE
     * and the connection simply stays where it is. */
    (void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    return 0;
}

int
handoff_send(int sock, int fd, const struct handoff_meta *meta,
             const char *data)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov[2] = {{(void *)meta, sizeof(*meta)},
                           {(void *)data, meta->len}};
    struct msghdr msg = {.msg_iov = iov,
                         .msg_iovlen = meta->len ? 2 : 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

    memset(&ctl, 0, sizeof(ctl));
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int
handoff_recv(int sock, int *fd, struct handoff_meta *meta, char *buf,
             size_t cap)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov[2] = {{meta, sizeof(*meta)}, {buf, cap}};
    struct msghdr msg = {.msg_iov = iov,
                         .msg_iovlen = 2,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c;
    ssize_t n;

    *fd = -1;
    n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -1;
    c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(c), sizeof(int));
    if (*fd < 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        (size_t)n < sizeof(*meta) || meta->len != (size_t)n - sizeof(*meta)) {
        int no_room = *fd < 0 && (msg.msg_flags & MSG_CTRUNC);
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        errno = no_room ? EMFILE : EPROTO;
        return -1;
    }
    return 0;
}

/* Control room for HANDOFF_MAX_FDS descriptors, aligned for cmsghdr. */
union handoff_fds_ctl {
    struct cmsghdr h;
    char buf[CMSG_SPACE(HANDOFF_MAX_FDS * sizeof(int))];
};

int
handoff_send_msg(int sock, const int *fds, size_t n, const void *data,
                 size_t len)
{
    union handoff_fds_ctl ctl;
    unsigned char mask = 0;
    int send[HANDOFF_MAX_FDS];
    size_t k = 0;
    struct iovec iov[2] = {{&mask, 1}, {(void *)data, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

    for (size_t i = 0; i < n && i < HANDOFF_MAX_FDS; i++)
        if (fds[i] >= 0) {
            mask |= (unsigned char)(1u << i);
            send[k++] = fds[i];
        }
    if (k > 0) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(k * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(k * sizeof(int));
        memcpy(CMSG_DATA(c), send, k * sizeof(int));
    }
    return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int
handoff_send_fds(int sock, const int *fds, size_t n)
{
    return handoff_send_msg(sock, fds, n, NULL, 0);
}

int
handoff_recv_msg(int sock, int *fds, size_t n, void *data, size_t cap,
                 size_t *len)
{
    union handoff_fds_ctl ctl;
    unsigned char mask = 0;
    int got[HANDOFF_MAX_FDS];
    size_t k = 0, used = 0;
    struct iovec iov[2] = {{&mask, 1}, {data, cap}};
    struct msghdr msg = {.msg_iov = iov,
                         .msg_iovlen = cap ? 2 : 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c;

    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    ssize_t got_len = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    if (got_len < 0)
        return -1;
    if (got_len == 0) {
        errno = EPIPE; /* the other end is closed */
        return -1;
    }
    if (len != NULL)
        *len = (size_t)got_len - 1;
    c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(got, CMSG_DATA(c), k * sizeof(int));
    }
    for (size_t i = 0; i < n && i < HANDOFF_MAX_FDS; i++)
        if ((mask & (1u << i)) && used < k)
            fds[i] = got[used++];
    while (used < k)
        close(got[used++]); /* more than asked for */
    return 0;
}

int
handoff_recv_fds(int sock, int *fds, size_t n)
{
    return handoff_recv_msg(sock, fds, n, NULL, 0, NULL);
}
