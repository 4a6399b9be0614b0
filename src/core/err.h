/* SPDX-License-Identifier: MIT */
/*
 * err.h - the one error table.
 *
 * Functions return sb_err (0 = OK) and describe the failure, at the point of
 * failure, in the caller's struct sb_error with sb_fail(). The table below
 * gives every code its name, its default HTTP status and the OpenAI error
 * "type"; the mapping to a JSON error body happens only at the HTTP edge.
 */
#ifndef SB_CORE_ERR_H
#define SB_CORE_ERR_H

#include <stdarg.h>

/*        name              http  openai type               */
#define SB_ERR_MAP(X)                                                                              \
    X(OK, 200, "ok")                                                                               \
    X(AGAIN, 200, "again")                                                                         \
    X(BAD_REQUEST, 400, "invalid_request_error")                                                   \
    X(BAD_JSON, 400, "invalid_request_error")                                                      \
    X(UNAUTHORIZED, 401, "authentication_error")                                                   \
    X(FORBIDDEN, 403, "permission_error")                                                          \
    X(NOT_FOUND, 404, "invalid_request_error")                                                     \
    X(METHOD, 405, "invalid_request_error")                                                        \
    X(CONFLICT, 409, "invalid_request_error")                                                      \
    X(TIMEOUT, 408, "timeout_error")                                                               \
    X(TOO_LARGE, 413, "invalid_request_error")                                                     \
    X(UNPROCESSABLE, 422, "invalid_request_error")                                                 \
    X(RATE_LIMITED, 429, "rate_limit_error")                                                       \
    X(HEADERS_TOO_LARGE, 431, "invalid_request_error")                                             \
    X(INTERNAL, 500, "server_error")                                                               \
    X(UPSTREAM, 502, "upstream_error")                                                             \
    X(UNAVAILABLE, 503, "service_unavailable")                                                     \
    X(UPSTREAM_TIMEOUT, 504, "timeout_error")                                                      \
    X(CONFIG, 500, "config_error")                                                                 \
    X(STORE, 500, "server_error")                                                                  \
    X(IO, 500, "server_error")

enum sb_err_code {
#define SB_X(name, status, type) SB_E_##name,
    SB_ERR_MAP(SB_X)
#undef SB_X
        SB_E__COUNT
};

/* SB_OK is the zero value; SB_AGAIN means "feed me more bytes" (practice 14). */
#define SB_OK SB_E_OK
#define SB_AGAIN SB_E_AGAIN

typedef int sb_err;

struct sb_error {
    sb_err code;     /* one of enum sb_err_code */
    int http_status; /* 0 = the table's default for code */
    char msg[256];   /* human-readable, never contains a secret */
    char field[64];  /* the input field at fault ("providers[0].base_url", "base_url"), or "" */
    /* Appended for the adapters (issue 6): the OpenAI error "code" an upstream gave, when it is
     * more precise than the table's name ("context_length_exceeded", "content_filter"), or "".
     * sb_fail clears it; map_error sets it after sb_fail. */
    char api_code[48];
    /* Appended (issue 6): an OpenAI-format upstream's own error "type" and "param", kept
     * so clients that branch on them see what the upstream said; "" = none. */
    char api_type[48];
    char api_param[64];
};

/* Records code and message in err (which may be NULL); returns code. */
sb_err sb_fail(struct sb_error *err, sb_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
sb_err sb_vfail(struct sb_error *err, sb_err code, const char *fmt, va_list ap);
/* sb_fail that also names the input field at fault (the /api error's "field"). */
sb_err sb_fail_field(struct sb_error *err, sb_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

const char *sb_err_name(sb_err code);        /* "BAD_JSON" */
const char *sb_err_type(sb_err code);        /* OpenAI "type" string */
int sb_err_status(const struct sb_error *e); /* http_status or the table's default */

#endif
