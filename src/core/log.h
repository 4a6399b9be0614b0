/* SPDX-License-Identifier: MIT */
/*
 * log.h - structured log lines (logfmt) on stderr.
 *
 * One line per event: ts=... level=... rid=... msg="..." plus key=value pairs
 * the caller formats. There is deliberately no way to print a credential:
 * credentials are a distinct type (crypto/secret.h) with no format function.
 */
#ifndef SB_CORE_LOG_H
#define SB_CORE_LOG_H

enum sb_log_level { SB_LOG_DEBUG, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR };

void sb_log_set_level(enum sb_log_level lvl);
/* rid may be NULL. fmt formats the rest of the line (key=value pairs). */
void sb_log(enum sb_log_level lvl, const char *rid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sb_info(...) sb_log(SB_LOG_INFO, NULL, __VA_ARGS__)
#define sb_warn(...) sb_log(SB_LOG_WARN, NULL, __VA_ARGS__)
#define sb_error(...) sb_log(SB_LOG_ERROR, NULL, __VA_ARGS__)

#endif
