/* SPDX-License-Identifier: MIT */
/*
 * jsonl.h - a batch job's input and output lines (issue 7 part 10).
 *
 * Input: JSONL, one request per non-blank line, in either of two shapes:
 *   - OpenAI's batch line: {"custom_id", "method": "POST", "url":
 *     "/v1/chat/completions" | "/v1/embeddings", "body": {...}};
 *   - a plain request body, {...}, sent to the job's endpoint.
 * A job may name a model (or route) that replaces every line's `model`.
 * Each line is judged alone: a line that is not JSON, or not a request we
 * can send, becomes that line's error, never the job's.
 * Output: one JSON line per input line, in OpenAI's batch output shape:
 *   {"id", "custom_id", "response": {"status_code", "request_id", "body"},
 *    "error": null}  or  {"id", "custom_id", "response": null,
 *    "error": {"code", "message"}}.
 * Pure functions over bytes: no I/O, no clock (fuzzed: fuzz/batch_fuzz.c).
 */
#ifndef SB_BATCH_JSONL_H
#define SB_BATCH_JSONL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/slice.h"

#define SB_BATCH_MAX_LINES 50000   /* requests in one job (OpenAI's limit) */
#define SB_BATCH_CUSTOM_ID_MAX 256 /* bytes of a custom_id */

enum sb_batch_endpoint { SB_BATCH_CHAT, SB_BATCH_EMBEDDINGS };

/* "/v1/chat/completions" | "/v1/embeddings" */
const char *sb_batch_endpoint_path(enum sb_batch_endpoint e);
/* The endpoint named by s (one of the paths above); false for anything else. */
bool sb_batch_endpoint_parse(struct sb_slice s, enum sb_batch_endpoint *out);

struct sb_batch_opts {
    enum sb_batch_endpoint endpoint; /* where a plain body goes */
    const char *model;               /* replaces each line's model; NULL = the line's own */
    size_t max_line_bytes;           /* a longer line is that line's error; 0 = no bound */
};

struct sb_batch_line {
    const char *custom_id;           /* the client's id (arena), or NULL */
    enum sb_batch_endpoint endpoint; /* where it goes */
    struct sb_slice body;            /* the JSON body to send (arena); empty when refused */
    const char *error_code;          /* NULL: the line is valid; else a stable word */
    const char *error_msg;           /* for the client (arena), naming the line */
};

/*
 * The next non-blank line of *rest: its bytes without the "\n" (or "\r\n")
 * in *line; *lineno counts every line read (blank ones too), so it is the
 * line's number in the upload. Advances *rest. false when nothing is left.
 */
bool sb_batch_next_line(struct sb_slice *rest, size_t *lineno, struct sb_slice *line);

/*
 * Judges one input line (text, its number lineno for messages) under o into
 * *out. Never fails as a whole: a bad line has out->error_code set. Strings
 * go into a; text is borrowed (out may point into it until a copy is made:
 * out->body is always in a).
 */
void sb_batch_parse_line(struct sb_arena *a, struct sb_slice text, size_t lineno,
                         const struct sb_batch_opts *o, struct sb_batch_line *out);

/* Appends one output line (no newline) with an answer: body_json must be valid JSON. */
void sb_batch_result_response(struct sb_buf *out, const char *id, const char *custom_id,
                              int status_code, const char *request_id, struct sb_slice body_json);
/* Appends one output line (no newline) with an error instead of an answer. */
void sb_batch_result_error(struct sb_buf *out, const char *id, const char *custom_id,
                           const char *code, const char *message);

#endif
