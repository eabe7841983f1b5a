/* access: the access-log line of one request, in the access_log_format
 * of the configuration. */
#ifndef FORKD_ACCESS_H
#define FORKD_ACCESS_H

#include <stdint.h>

struct http_head;

/* access_log_format: forkd (combined, then pid, tid, start, duration),
 * combined (Apache's and nginx's), json (one object per line). */
enum access_format { ACCESS_FORKD, ACCESS_COMBINED, ACCESS_JSON };

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
    unsigned format;        /* enum access_format */
    const char *request_id; /* json only; or NULL */
};

/* Format e as e->format says and append it to the calling thread's access-log
 * buffer. */
void access_log(const struct access_entry *e);

#endif
