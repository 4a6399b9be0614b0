/* SPDX-License-Identifier: MIT */
/*
 * reply.c - the control plane's answers and inputs: the /api error shape,
 * list envelopes, query parameters, paging, times.
 *
 * Error shape (DESIGN.md §4):
 *   {"error":{"code","message","details","field","suggestions"},"timestamp","requestId"}
 * `code` is the lower-case name from the error table (not_found, conflict,
 * forbidden, ...), so clients branch on a stable word; `field` names the
 * input at fault, as the config walker reports it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"

int64_t sb__api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sb__api_iso(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

void sb__api_time(struct sb_jw *j, const char *key, int64_t ms)
{
    char iso[32];
    sb_jw_key(j, key);
    if (ms <= 0) {
        sb_jw_null(j);
        return;
    }
    sb__api_iso(ms, iso);
    sb_jw_cstr(j, iso);
}

bool sb__api_refuse_private(const struct sb_api_call *c)
{
    return c->actor.role != SB_ROLE_ADMIN && !c->api->allow_private;
}

const char *sb__api_role_name(unsigned role)
{
    return role == SB_ROLE_ADMIN ? "admin" : role == SB_ROLE_DEVELOPER ? "developer" : "user";
}

/* ---- errors ---- */

sb_err sb__api_fail(struct sb_api_call *c, sb_err code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vfail(&c->err, code, fmt, ap);
    va_end(ap);
    if (field)
        snprintf(c->err.field, sizeof(c->err.field), "%s", field);
    return code;
}

static void lower_name(sb_err code, char out[32])
{
    const char *n = code == SB_E_METHOD ? "METHOD_NOT_ALLOWED" : sb_err_name(code);
    size_t i = 0;
    for (; n[i] && i < 31; i++)
        out[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    out[i] = '\0';
}

static void error_doc(struct sb_buf *out, const char *code, const char *msg, const char *field,
                      const char *const *suggest, size_t nsuggest, const char *request_id)
{
    struct sb_jw j;
    char iso[32];
    sb_buf_reset(out);
    sb_jw_init(&j, out);
    sb_jw_obj_begin(&j);
    sb_jw_key(&j, "error");
    sb_jw_obj_begin(&j);
    sb_jw_key(&j, "code");
    sb_jw_cstr(&j, code);
    sb_jw_key(&j, "message");
    sb_jw_cstr(&j, msg);
    sb_jw_key(&j, "details");
    sb_jw_null(&j);
    sb_jw_key(&j, "field");
    sb_jw_cstr(&j, field && *field ? field : NULL);
    sb_jw_key(&j, "suggestions");
    sb_jw_arr_begin(&j);
    for (size_t i = 0; i < nsuggest; i++)
        sb_jw_cstr(&j, suggest[i]);
    sb_jw_arr_end(&j);
    sb_jw_obj_end(&j);
    sb__api_iso(sb__api_now_ms(), iso);
    sb_jw_key(&j, "timestamp");
    sb_jw_cstr(&j, iso);
    sb_jw_key(&j, "requestId");
    sb_jw_cstr(&j, request_id);
    sb_jw_obj_end(&j);
}

void sb__api_error_json(struct sb_api_call *c)
{
    char code[32];
    lower_name(c->err.code, code);
    error_doc(&c->out, code, c->err.msg, c->err.field, c->suggest, c->nsuggest, c->request_id);
}

void sb_api_error_body(struct sb_buf *out, const char *code, const char *msg,
                       const char *request_id)
{
    error_doc(out, code, msg, NULL, NULL, 0, request_id);
}

/* ---- inputs ---- */

/* Percent-decodes s ('+' is a space in a query) into the arena; NULL on a bad escape. */
static const char *decode(struct sb_arena *a, struct sb_slice s, bool plus)
{
    char *o = sb_arena_alloc(a, s.len + 1);
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '%') {
            int hi = i + 2 < s.len ? sb_hex_val(s.p[i + 1]) : -1;
            int lo = i + 2 < s.len ? sb_hex_val(s.p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            o[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            o[n++] = plus && s.p[i] == '+' ? ' ' : s.p[i];
        }
    }
    o[n] = '\0';
    return o;
}

const char *sb__api_query(struct sb_api_call *c, const char *name)
{
    struct sb_slice q = c->query;
    size_t nlen = strlen(name);
    while (q.len) {
        const char *amp = memchr(q.p, '&', q.len);
        size_t plen = amp ? (size_t)(amp - q.p) : q.len;
        if (plen > nlen && q.p[nlen] == '=' && memcmp(q.p, name, nlen) == 0)
            return decode(c->arena, (struct sb_slice){q.p + nlen + 1, plen - nlen - 1}, true);
        if (plen == nlen && memcmp(q.p, name, nlen) == 0)
            return "";
        q.p += plen + (amp ? 1 : 0);
        q.len -= plen + (amp ? 1 : 0);
    }
    return NULL;
}

static sb_err query_int(struct sb_api_call *c, const char *name, int64_t lo, int64_t hi, int64_t *v)
{
    const char *s = sb__api_query(c, name);
    unsigned long long u;
    if (!s)
        return SB_OK;
    if (!sb_slice_to_u64(sb_slice_cstr(s), &u) || (int64_t)u < lo || (int64_t)u > hi)
        return sb__api_fail(c, SB_E_BAD_REQUEST, name, "%s: expected an integer in [%lld, %lld]",
                            name, (long long)lo, (long long)hi);
    *v = (int64_t)u;
    return SB_OK;
}

sb_err sb__api_paging(struct sb_api_call *c, int64_t *limit, int64_t *offset)
{
    *limit = 50;
    *offset = 0;
    if (query_int(c, "limit", 1, 500, limit) != SB_OK)
        return c->err.code;
    return query_int(c, "offset", 0, INT32_MAX, offset);
}

sb_err sb__api_query_tri(struct sb_api_call *c, const char *name, enum sb_store_tri *out)
{
    const char *v = sb__api_query(c, name);
    *out = SB_STORE_ANY;
    if (!v)
        return SB_OK;
    if (strcmp(v, "true") == 0)
        *out = SB_STORE_YES;
    else if (strcmp(v, "false") == 0)
        *out = SB_STORE_NO;
    else
        return sb__api_fail(c, SB_E_BAD_REQUEST, name, "%s: expected true or false", name);
    return SB_OK;
}

const char *sb__api_param(struct sb_api_call *c, size_t i)
{
    const char *s = i < c->nparam ? decode(c->arena, c->param[i], false) : NULL;
    return s ? s : "";
}

sb_err sb__api_body_str(struct sb_api_call *c, const char *key, bool required, const char **out)
{
    const struct sb_json *v = sb_json_get(c->json, key);
    *out = NULL;
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "the body must be a JSON object");
    if (!v || v->type == SB_JSON_NULL) {
        if (required)
            return sb__api_fail(c, SB_E_BAD_REQUEST, key, "%s is required", key);
        return SB_OK;
    }
    if (v->type != SB_JSON_STRING || memchr(v->str.p, '\0', v->str.len))
        return sb__api_fail(c, SB_E_BAD_REQUEST, key, "%s: expected a string", key);
    *out = sb_arena_strndup(c->arena, v->str.p, v->str.len);
    return SB_OK;
}

/* ---- lists ---- */

void sb__api_list_begin(struct sb_api_call *c)
{
    sb_jw_obj_begin(&c->jw);
    sb_jw_key(&c->jw, "data");
    sb_jw_arr_begin(&c->jw);
}

void sb__api_list_end(struct sb_api_call *c, int64_t total, int64_t limit, int64_t offset)
{
    sb_jw_arr_end(&c->jw);
    sb_jw_key(&c->jw, "total");
    sb_jw_int(&c->jw, total);
    sb_jw_key(&c->jw, "limit");
    sb_jw_int(&c->jw, limit);
    sb_jw_key(&c->jw, "offset");
    sb_jw_int(&c->jw, offset);
    sb_jw_obj_end(&c->jw);
}

sb_err sb__api_json_with(struct sb_api_call *c, const struct sb_json *obj, const char *members,
                         const struct sb_json **out)
{
    struct sb_json *nj = NULL;
    struct sb_json_limits lim = {.max_depth = 32};
    if (!obj || obj->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "expected a JSON object");
    char *text = sb_arena_printf(c->arena, "{%s%s%.*s", members, obj->count ? "," : "",
                                 (int)(obj->raw.len - 1), obj->raw.p + 1);
    if (sb_json_parse(c->arena, text, strlen(text), &lim, &nj, &c->err) != SB_OK)
        return c->err.code;
    *out = nj;
    return SB_OK;
}
