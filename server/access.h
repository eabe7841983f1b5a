/* access: the access-log line of one request: the combined log format,
 * then the worker pid, handler thread id, start time and duration. */
#ifndef FORKD_ACCESS_H
#define FORKD_ACCESS_H

#include <stdint.h>

struct http_head;

struct access_entry {
    const char *remote_addr;
    const struct http_head *head; /* NULL: no request line to show */
    const char *referer;          /* or NULL */
    const char *user_agent;       /* or NULL */
    int status;
    uint64_t body_bytes;
    uint64_t start_us; /* wall clock, microseconds since the epoch */
    uint64_t dur_us;
    int pid, tid;
};

/* Format e and append it to the calling thread's access-log buffer. */
void access_log(const struct access_entry *e);

#endif
