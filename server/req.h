/* req: struct forkd_req, one request in flight in a worker: what the head
 * parser found, the response being built, the arena, the connection.
 * Owned by the worker (one per handler slot), reused for every request. */
#ifndef FORKD_REQ_H
#define FORKD_REQ_H

#include <stdint.h>

#include "arena.h"
#include "http.h"
#include "response.h"

struct conn;
struct cfg;

struct forkd_req {
    struct conn *conn;     /* the client; not owned */
    const struct cfg *cfg; /* not owned */
    const struct http_limits *limits;
    struct http_head head;
    struct http_header *headers; /* limits->fields entries; owned */
    struct arena arena;
    const char *path_info; /* percent-decoded, arena */
    const char **env;      /* name, value pairs, built on first iteration */
    size_t n_env;
    struct response resp;
    char *body_buf;      /* RESPONSE_BODY_BUF bytes; owned */
    int continue_sent;   /* 100 Continue went out */
    int keep_alive;      /* the connection may serve another request */
    int body_status;     /* 400/408/413 when reading the body failed */
    int multiprocess;    /* more than one worker */
    int multithread;     /* more than one handler thread per worker */
    char worker_pid[16]; /* forkd.worker_pid, set once per worker */
    char request_id[68]; /* forkd.request_id, "" until asked for */
    uint64_t id_state;   /* of the generator of request ids (random) */
    uint64_t start_us;   /* wall clock at head complete, for the log */
    uint64_t start_mono_us;
};

#endif
