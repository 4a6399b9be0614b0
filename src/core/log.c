/* SPDX-License-Identifier: MIT */
/*
 * log.c - formats a whole line in a stack buffer and writes it with one
 * write(2), so lines from several worker threads never interleave.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = SB_LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void sb_log_set_level(enum sb_log_level lvl)
{
    atomic_store(&min_level, (int)lvl);
}

void sb_log(enum sb_log_level lvl, const char *rid, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&min_level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl]);
    if (rid && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " rid=%s", rid);
    if (n < (int)sizeof(line) - 1) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        n += m > 0 ? m : 0;
    }
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
