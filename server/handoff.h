/* handoff: pass a waiting connection (its descriptor, peer and the bytes
 * already read of its next request) from a busy worker to an idle one,
 * over a SOCK_SEQPACKET socket pair that the master opens before forking
 * and that workers read only while idle, like the listen queue.  Never
 * logs. */
#ifndef FORKD_HANDOFF_H
#define FORKD_HANDOFF_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct handoff_meta {
    uint32_t len;      /* bytes of the request that follow */
    uint32_t listener; /* index of the listening socket it came from */
    char remote_addr[INET6_ADDRSTRLEN + 8];
    char remote_port[8];
};

/* fds[0] sends, fds[1] receives; both non-blocking and close-on-exec.
 * Returns 0 or -1. */
int handoff_open(int fds[2]);

/* Send fd (which the caller still owns and closes) with meta and
 * data[0..meta->len).  Returns 0 or -1 (EAGAIN when the queue is full,
 * EMSGSIZE when the bytes do not fit a message). */
int handoff_send(int sock, int fd, const struct handoff_meta *meta,
                 const char *data);

/* Take one connection: its descriptor (owned by the caller now) in *fd,
 * its meta, and its bytes in buf[0..meta->len).  Returns 0, or -1 (EAGAIN
 * when another worker was faster, EMFILE when this process had no room
 * for the descriptor: the kernel closed it, the message is gone). */
int handoff_recv(int sock, int *fd, struct handoff_meta *meta, char *buf,
                 size_t cap);

#define HANDOFF_MAX_FDS 4

/* Send n (at most HANDOFF_MAX_FDS) descriptors, -1 standing for none, as
 * one message on a datagram socket; the caller keeps its own.  Returns 0
 * or -1. */
int handoff_send_fds(int sock, const int *fds, size_t n);

/* Receive one message of handoff_send_fds into fds[0..n), -1 where none
 * was sent; the caller owns those received.  Returns 0, or -1 (EAGAIN:
 * no message). */
int handoff_recv_fds(int sock, int *fds, size_t n);

/* The same with len bytes of data after the mask byte (data may be NULL
 * when len is 0): a command with the descriptors it concerns. */
int handoff_send_msg(int sock, const int *fds, size_t n, const void *data,
                     size_t len);

/* Receive one handoff_send_msg: descriptors as handoff_recv_fds, up to cap
 * bytes of data, their count in *len (may be NULL).  Returns 0 or -1
 * (EAGAIN: no message; EPIPE: the other end is closed). */
int handoff_recv_msg(int sock, int *fds, size_t n, void *data, size_t cap,
                     size_t *len);

#endif
