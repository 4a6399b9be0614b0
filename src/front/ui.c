/* SPDX-License-Identifier: MIT */
/*
 * ui.c - serves the web console under /ui/ from the table that the build
 * generates from web/dist (ui.h).
 *
 * The console is a single-page app: a path under /ui/ that names no file and
 * does not look like one ("/ui/models") gets index.html, and the app's own
 * router shows the page; a missing file ("/ui/assets/gone.js") is a 404, so
 * a stale tab never runs HTML as a script. Vite names everything under
 * assets/ after a hash of its content: those are immutable for a year, while
 * index.html is revalidated on every load (no-cache + ETag -> 304), so a new
 * binary's console shows up at the next reload.
 *
 * Every answer carries the same strict policy: scripts, styles, fetches and
 * frames only from this origin, no inline script or style, nothing remote.
 * The console is built to need nothing more (no CDN, no web fonts).
 */
#include "front/ui.h"

#include <string.h>

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "             \
    "base-uri 'none'; form-action 'self'"

static void put(struct sb_ui_reply *r, const char *name, const char *value)
{
    if (r->nh < SB_UI_MAX_HEADERS)
        r->h[r->nh++] = (struct sb_http_header){sb_slice_cstr(name), sb_slice_cstr(value)};
}

static void security_headers(struct sb_ui_reply *r)
{
    put(r, "content-security-policy", CSP);
    put(r, "x-content-type-options", "nosniff");
    put(r, "referrer-policy", "no-referrer");
    put(r, "x-frame-options", "DENY");
}

static struct sb_slice trim(struct sb_slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* The next comma-separated element of *list (trimmed); false when none is left. */
static bool next_item(struct sb_slice *list, struct sb_slice *item)
{
    if (!list->len)
        return false;
    const char *comma = memchr(list->p, ',', list->len);
    size_t n = comma ? (size_t)(comma - list->p) : list->len;
    *item = trim((struct sb_slice){list->p, n});
    list->p += comma ? n + 1 : n;
    list->len -= comma ? n + 1 : n;
    return true;
}

/* True when a "q=" parameter in params says 0 (q=0, q=0.0, q=0.000). */
static bool q_zero(struct sb_slice params)
{
    const char *q = NULL;
    for (size_t i = 0; i + 1 < params.len; i++)
        if ((params.p[i] == 'q' || params.p[i] == 'Q') && params.p[i + 1] == '=')
            q = params.p + i + 2;
    if (!q)
        return false;
    const char *end = params.p + params.len;
    if (q >= end || *q != '0')
        return false;
    for (q++; q < end && *q != ';' && *q != ' '; q++)
        if (*q != '.' && *q != '0')
            return false;
    return true;
}

/* RFC 9110 12.5.3: gzip or * listed without q=0. */
static bool accepts_gzip(struct sb_slice ae)
{
    struct sb_slice item;
    while (next_item(&ae, &item)) {
        const char *semi = memchr(item.p, ';', item.len);
        struct sb_slice name =
            trim((struct sb_slice){item.p, semi ? (size_t)(semi - item.p) : item.len});
        struct sb_slice params =
            semi ? (struct sb_slice){semi, (size_t)(item.p + item.len - semi)} : SB_SLICE_NULL;
        if ((sb_slice_caseeq(name, SB_SLICE("gzip")) || sb_slice_eq_cstr(name, "*")) &&
            !q_zero(params))
            return true;
    }
    return false;
}

/* If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored.
 * Either representation's tag matches, since both carry the same bytes. */
static bool etag_matches(struct sb_slice inm, const struct sb_ui_asset *a)
{
    struct sb_slice item;
    while (next_item(&inm, &item)) {
        if (item.len >= 2 && item.p[0] == 'W' && item.p[1] == '/')
            item.p += 2, item.len -= 2;
        if (sb_slice_eq_cstr(item, "*") || sb_slice_eq_cstr(item, a->etag) ||
            sb_slice_eq_cstr(item, a->etag_gz))
            return true;
    }
    return false;
}

static const struct sb_ui_asset *find(const struct sb_ui_asset *t, size_t n, struct sb_slice rel)
{
    for (size_t i = 0; i < n; i++)
        if (sb_slice_eq_cstr(rel, t[i].path))
            return &t[i];
    return NULL;
}

/* A path that names a file (a dot in its last segment, or under assets/) is
 * never answered with the page: a missing file is a plain 404. */
static bool looks_like_file(struct sb_slice rel)
{
    if (sb_slice_starts_with(rel, SB_SLICE("assets/")))
        return true;
    for (size_t i = rel.len; i > 0 && rel.p[i - 1] != '/'; i--)
        if (rel.p[i - 1] == '.')
            return true;
    return false;
}

static void plain(struct sb_ui_reply *out, int status, const char *body)
{
    out->status = status;
    put(out, "content-type", "text/plain; charset=utf-8");
    put(out, "cache-control", "no-store");
    out->body = sb_slice_cstr(body);
}

static void send_asset(const struct sb_ui_asset *a, struct sb_slice ae, struct sb_slice inm,
                       struct sb_ui_reply *out)
{
    bool gz = a->gz && accepts_gzip(ae);
    put(out, "etag", gz ? a->etag_gz : a->etag);
    put(out, "cache-control",
        strncmp(a->path, "assets/", 7) == 0 ? "public, max-age=31536000, immutable" : "no-cache");
    put(out, "vary", "accept-encoding");
    if (inm.len && etag_matches(inm, a)) {
        out->status = 304;
        return;
    }
    out->status = 200;
    put(out, "content-type", a->content_type);
    if (gz)
        put(out, "content-encoding", "gzip");
    out->body = gz ? (struct sb_slice){(const char *)a->gz, a->gz_len}
                   : (struct sb_slice){(const char *)a->data, a->len};
}

bool sb_ui_owns(struct sb_slice path)
{
    return sb_slice_eq_cstr(path, "/ui") || sb_slice_starts_with(path, SB_SLICE("/ui/"));
}

void sb_ui_answer(const struct sb_ui_asset *table, size_t n, struct sb_slice method,
                  struct sb_slice path, struct sb_slice accept_encoding,
                  struct sb_slice if_none_match, struct sb_ui_reply *out)
{
    memset(out, 0, sizeof(*out));
    security_headers(out);
    if (!sb_slice_eq_cstr(method, "GET") && !sb_slice_eq_cstr(method, "HEAD")) {
        put(out, "allow", "GET, HEAD");
        plain(out, 405, "method not allowed\n");
        return;
    }
    if (sb_slice_eq_cstr(path, "/ui")) {
        put(out, "location", "/ui/");
        plain(out, 301, "moved to /ui/\n");
        return;
    }
    struct sb_slice rel = {path.p + 4, path.len - 4}; /* after "/ui/" */
    const struct sb_ui_asset *a = rel.len ? find(table, n, rel) : NULL;
    if (!a && !looks_like_file(rel))
        a = find(table, n, SB_SLICE("index.html"));
    if (!a) {
        plain(out, 404, "not found\n");
        return;
    }
    send_asset(a, accept_encoding, if_none_match, out);
}

void sb_ui_serve(struct sb_http_req *req)
{
    struct sb_ui_reply r;
    sb_ui_answer(sb_ui_assets, sb_ui_nassets, req->method, req->path,
                 sb_http_header(req, "accept-encoding"), sb_http_header(req, "if-none-match"), &r);
    sb_http_respond(req, r.status, r.h, r.nh, r.body);
}
