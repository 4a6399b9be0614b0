/* SPDX-License-Identifier: MIT */
/*
 * usage.h - the usage queue and its writer thread.
 *
 * Workers submit one record per request; the call copies the record into a
 * queue under a short mutex and never waits on the database. A writer thread
 * drains the queue in batches (one transaction per batch). Nothing is dropped:
 * the queue grows as needed, and stop() flushes it before returning.
 *
 * The same writer carries the audit log (sb_usage_submit_audit): control
 * plane changes are rare, so they share the thread and its batches rather
 * than getting their own. After each usage batch the writer also raises
 * api_keys.last_used_at for the keys in it (usage key_id is the key's row
 * id in decimal), one UPDATE per distinct key per batch.
 */
#ifndef SB_STORE_USAGE_H
#define SB_STORE_USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct sb_store;
struct sb_usage_writer;
struct sb_audit;

struct sb_usage {
    char request_id[40];
    int64_t ts_ms;    /* request start, Unix ms */
    char user_id[40]; /* empty = admin/none */
    char key_id[40];  /* virtual key id, empty = admin token */
    char route[64];
    char provider[64];
    char model[128];
    char variant[32];
    char status[16]; /* "ok" | "error" | "cancelled" */
    int http_status;
    int64_t prompt_tokens; /* -1 unknown */
    int64_t completion_tokens;
    double cost_usd;
    double latency_ms;
    double ttft_ms; /* -1 when not streamed or no byte came */
    bool streamed;
    int fallbacks;
    char error_code[32]; /* sb_err_name, empty when ok */
};

/* Starts the writer over store (takes ownership of store; it is closed by stop). */
struct sb_usage_writer *sb_usage_writer_start(struct sb_store *store, struct sb_error *err);
/* Copies u into the queue. Thread-safe, never blocks on I/O. */
void sb_usage_submit(struct sb_usage_writer *w, const struct sb_usage *u);
/*
 * Copies audit record a (its strings too) into the same queue; the writer
 * inserts it in the same batch loop as usage rows, and stop() flushes it.
 * Thread-safe, never blocks on I/O. Borrows a. Strings longer than 64 KiB
 * (before/after JSON) are replaced by {"truncated":true}.
 */
void sb_usage_submit_audit(struct sb_usage_writer *w, const struct sb_audit *a);
/* Flushes everything queued, joins the thread, closes the store. Accepts NULL. */
void sb_usage_writer_stop(struct sb_usage_writer *w);
/* Rows written so far and rows that failed to write (for /metrics and tests). */
uint64_t sb_usage_written(const struct sb_usage_writer *w);
uint64_t sb_usage_failed(const struct sb_usage_writer *w);
/* Audit records written and lost (after retries) so far. */
uint64_t sb_usage_audit_written(const struct sb_usage_writer *w);
uint64_t sb_usage_audit_failed(const struct sb_usage_writer *w);

#endif
