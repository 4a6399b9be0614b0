/* SPDX-License-Identifier: MIT */
/*
 * audit.c - the audit log: recording control-plane actions and GET /api/audit.
 *
 * Every change, login, failed login and refused (403) request becomes one
 * row: who (actor and role), when, what (action, target), the before/after
 * documents the caller built without secrets, the client address, the
 * request id and the outcome (ok | denied | failed). Rows go through the
 * usage writer's queue (sb_usage_submit_audit): the handler never waits on
 * a write, and the writer flushes everything queued at shutdown. A log line
 * mirrors each row for operators who read logs, with the free-text fields
 * made safe for a key=value line.
 */
#include <string.h>

#include "api/internal.h"
#include "core/log.h"
#include "store/usage.h"

/* s with anything but [A-Za-z0-9._@/:-] replaced by '_' (arena), for a log line. */
static const char *log_safe(struct sb_arena *a, const char *s)
{
    size_t n = s ? strnlen(s, 128) : 0;
    char *o = sb_arena_alloc(a, n + 1);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("._@/:-{}", ch);
        o[i] = ok ? ch : '_';
    }
    o[n] = '\0';
    return o;
}

static const char *doc_or_null(struct sb_arena *a, struct sb_slice s)
{
    return s.len ? sb_arena_strndup(a, s.p, s.len) : NULL;
}

void sb__api_audit(struct sb_api_call *c, const char *action, const char *target_type,
                   const char *target_id, struct sb_slice before, struct sb_slice after,
                   const char *outcome)
{
    struct sb_audit row = {
        .ts_ms = sb__api_now_ms(), /* when it happened, not when the writer got to it */
        .actor = c->actor.name[0] ? c->actor.name : "anonymous",
        .actor_role = c->actor.role ? sb__api_role_name(c->actor.role) : NULL,
        .action = action,
        .target_type = target_type,
        .target_id = target_id,
        .before = doc_or_null(c->arena, before),
        .after = doc_or_null(c->arena, after),
        .ip = c->ip && *c->ip ? c->ip : NULL,
        .request_id = c->request_id,
        .outcome = outcome,
    };
    sb_info("msg=audit actor=%s action=%s target=%s/%s outcome=%s request_id=%s",
            log_safe(c->arena, row.actor), log_safe(c->arena, action),
            log_safe(c->arena, target_type), log_safe(c->arena, target_id), outcome,
            log_safe(c->arena, c->request_id));
    if (c->api->writer)
        sb_usage_submit_audit(c->api->writer, &row);
}

/* ---- GET /api/audit ---- */

static sb_err time_filter(struct sb_api_call *c, const char *name, int64_t *ms)
{
    const char *v = sb__api_query(c, name);
    char msg[sizeof(c->err.msg)];
    if (!v)
        return SB_OK;
    if (sb__api_parse_time(sb_slice_cstr(v), ms, &c->err) == SB_OK)
        return SB_OK;
    memcpy(msg, c->err.msg, sizeof(msg));
    return sb__api_fail(c, SB_E_BAD_REQUEST, name, "%s: %s", name, msg);
}

static void write_doc(struct sb_jw *j, const char *key, const char *json)
{
    sb_jw_key(j, key);
    if (json)
        sb_jw_raw(j, sb_slice_cstr(json));
    else
        sb_jw_null(j);
}

static void write_row(struct sb_jw *j, const struct sb_audit *r)
{
    sb_jw_obj_begin(j);
    sb_jw_key(j, "id");
    sb_jw_int(j, r->id);
    sb__api_time(j, "ts", r->ts_ms);
    sb_jw_key(j, "actor");
    sb_jw_cstr(j, r->actor);
    sb_jw_key(j, "actor_role");
    sb_jw_cstr(j, r->actor_role);
    sb_jw_key(j, "action");
    sb_jw_cstr(j, r->action);
    sb_jw_key(j, "target_type");
    sb_jw_cstr(j, r->target_type);
    sb_jw_key(j, "target_id");
    sb_jw_cstr(j, r->target_id);
    write_doc(j, "before", r->before);
    write_doc(j, "after", r->after);
    sb_jw_key(j, "ip");
    sb_jw_cstr(j, r->ip);
    sb_jw_key(j, "request_id");
    sb_jw_cstr(j, r->request_id);
    sb_jw_key(j, "outcome");
    sb_jw_cstr(j, r->outcome);
    sb_jw_obj_end(j);
}

sb_err sb__api_audit_list(struct sb_api_call *c)
{
    struct sb_audit_filter f = {
        .actor = sb__api_query(c, "actor"),
        .action = sb__api_query(c, "action"),
        .target_type = sb__api_query(c, "target_type"),
        .target_id = sb__api_query(c, "target_id"),
    };
    struct sb_store_paging pg;
    struct sb_audit *rows = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (sb__api_paging(c, &pg.limit, &pg.offset) != SB_OK ||
        time_filter(c, "from", &f.from_ms) != SB_OK || time_filter(c, "to", &f.to_ms) != SB_OK ||
        sb_store_audit_query(c->api->store, &f, &pg, c->arena, &rows, &n, &total, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < n; i++)
        write_row(&c->jw, &rows[i]);
    sb__api_list_end(c, total, pg.limit, pg.offset);
    return SB_OK;
}
