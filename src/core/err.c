/* SPDX-License-Identifier: MIT */
/*
 * err.c - lookups into the error table of err.h.
 */
#include "core/err.h"

#include <stdio.h>

static const struct {
    const char *name;
    int status;
    const char *type;
} table[] = {
#define SB_X(name, status, type) {#name, status, type},
    SB_ERR_MAP(SB_X)
#undef SB_X
};

sb_err sb_vfail(struct sb_error *err, sb_err code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        err->http_status = 0;
        err->field[0] = '\0';
        err->api_code[0] = '\0';
        err->api_type[0] = '\0';
        err->api_param[0] = '\0';
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

sb_err sb_fail(struct sb_error *err, sb_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vfail(err, code, fmt, ap);
    va_end(ap);
    return code;
}

sb_err sb_fail_field(struct sb_error *err, sb_err code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vfail(err, code, fmt, ap);
    va_end(ap);
    if (err && field)
        snprintf(err->field, sizeof(err->field), "%s", field);
    return code;
}

const char *sb_err_name(sb_err code)
{
    return (code >= 0 && code < SB_E__COUNT) ? table[code].name : "UNKNOWN";
}

const char *sb_err_type(sb_err code)
{
    return (code >= 0 && code < SB_E__COUNT) ? table[code].type : "server_error";
}

int sb_err_status(const struct sb_error *e)
{
    if (e->http_status)
        return e->http_status;
    return (e->code >= 0 && e->code < SB_E__COUNT) ? table[e->code].status : 500;
}
