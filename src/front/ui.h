/* SPDX-License-Identifier: MIT */
/*
 * ui.h - the web console's files, embedded in the binary, and the rules for
 * answering a request under /ui/ with them.
 *
 * The table is generated at build time (scripts/embed-ui.sh turns web/dist
 * into $(BUILD)/gen/ui_assets.c): each file's bytes, a gzip copy made once
 * at build time (NULL when gzip would not make it smaller), its content type
 * and a strong ETag (a hash of the bytes). sb_ui_answer() is a pure function
 * of the request's method, path and two headers, so it is tested without a
 * server; front.c sends what it decides. Nothing here allocates: every slice
 * in a reply points into the table or into static strings.
 */
#ifndef SB_FRONT_UI_H
#define SB_FRONT_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"
#include "net/http.h"

struct sb_ui_asset {
    const char *path;          /* "index.html", "assets/index-3f2a1b.js": under /ui/ */
    const unsigned char *data; /* the file's bytes */
    size_t len;                /* their count */
    const unsigned char *gz;   /* gzip of data, or NULL when not smaller */
    size_t gz_len;             /* its length */
    const char *content_type;  /* "text/javascript; charset=utf-8" */
    const char *etag;          /* "\"<16 hex>\"": the identity's; the gzip copy adds -gz */
    const char *etag_gz;       /* "\"<16 hex>-gz\"" */
};

/* The generated table (valid for the process's life). */
extern const struct sb_ui_asset sb_ui_assets[];
extern const size_t sb_ui_nassets;

#define SB_UI_MAX_HEADERS 10

/* What to send: status, headers and body, all borrowed from the table or static. */
struct sb_ui_reply {
    int status;                                 /* 200, 301, 304, 404, 405 */
    struct sb_http_header h[SB_UI_MAX_HEADERS]; /* response headers */
    size_t nh;                                  /* how many of h are used */
    struct sb_slice body;                       /* may be empty */
};

/* True for "/ui" and every path under "/ui/". */
bool sb_ui_owns(struct sb_slice path);

/* Decides the answer to method + path (which sb_ui_owns) with the request's
 * Accept-Encoding and If-None-Match values (empty slices when absent), from
 * the n assets of table (borrowed; the reply points into it). */
void sb_ui_answer(const struct sb_ui_asset *table, size_t n, struct sb_slice method,
                  struct sb_slice path, struct sb_slice accept_encoding,
                  struct sb_slice if_none_match, struct sb_ui_reply *out);

/* Answers req under /ui/ from the embedded table. */
void sb_ui_serve(struct sb_http_req *req);

#endif
