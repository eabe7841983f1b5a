/* log: the error log (one line per event with time, pid and level) and the
 * access log (one line per request, buffered per worker).  Only this module
 * writes either file; both are O_APPEND and reopened on request. */
#ifndef FORKD_LOG_H
#define FORKD_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "forkd.h"

/* Open the logs.  error_path NULL, "" or "-" means standard error;
 * access_path NULL or "" means no access log, "-" standard output.  The
 * paths are copied.  Returns 0, or -1 with errno set (nothing changed). */
int log_open(const char *error_path, const char *access_path,
             enum forkd_level level);

/* Reopen both files at their paths (logrotate).  Returns 0 or -1. */
int log_reopen(void);

/* The descriptors of the open log files in *error_fd and *access_fd, -1
 * for a standard stream or none: what the master passes to workers. */
void log_files(int *error_fd, int *access_fd);

/* Put error_fd and access_fd (files the master reopened, -1: keep the
 * current one) in place of the open log files, keeping the descriptor
 * numbers; takes ownership of both.  A worker that dropped privileges
 * could not open them itself. */
void log_adopt(int error_fd, int access_fd);

/* Close both logs (after flushing the access log); stderr stays usable. */
void log_close(void);

/* Write one error-log line at level if level passes the threshold. */
void log_msg(enum forkd_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum forkd_level level, const char *fmt, va_list ap);

/* Whether the error log is standard error (nothing to repeat there). */
int log_is_stderr(void);

/* Whether a message at level would be written. */
int log_is_enabled(enum forkd_level level);

/* Parse "error".."debug"; returns the level or -1. */
int log_level_parse(const char *name);
const char *log_level_name(enum forkd_level level);

/* Whether there is an access log. */
int log_has_access(void);

/* Append one access-log line (without the newline; one is added) to the
 * calling thread's buffer, written when it fills, when the thread calls
 * log_access_flush, or at log_close (the calling thread's). */
void log_access(const char *line, size_t len);
void log_access_flush(void);

#define log_error(...) log_msg(FORKD_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(FORKD_LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(FORKD_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(FORKD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(FORKD_LOG_DEBUG, __VA_ARGS__)

#endif
