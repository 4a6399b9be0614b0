/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.c - a small in-memory limiter for expensive control-plane calls.
 *
 * Connection tests send real requests upstream (they cost the key's owner
 * tokens) and hold a thread-pool thread for up to 15 s, so each actor gets a
 * fixed window of runs (10 a minute) and only a few may run at once across
 * all actors, leaving libuv's other pool threads to the rest of /api. The
 * table is fixed-size: past SB_API_RATE_SLOTS actors the slot whose window
 * started first is reused, which can only forgive, never wrongly refuse.
 * State is per process and is lost on restart, which is acceptable for a
 * guard against accidental loops and button mashing.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"

void sb__api_rate_init(struct sb__api_rate *r, unsigned limit, int64_t window_ms,
                       unsigned max_running)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->limit = limit;
    r->window_ms = window_ms;
    r->max_running = max_running;
}

void sb__api_rate_destroy(struct sb__api_rate *r)
{
    pthread_mutex_destroy(&r->lock);
}

/* The slot of name, or a free or the oldest one (reset for name). Holding r->lock. */
static size_t slot_of(struct sb__api_rate *r, const char *name, int64_t now_ms)
{
    size_t oldest = 0;
    for (size_t i = 0; i < SB_API_RATE_SLOTS; i++) {
        if (strcmp(r->slot[i].name, name) == 0 && r->slot[i].name[0])
            return i;
        if (!r->slot[i].name[0] || now_ms - r->slot[i].start_ms >= r->window_ms) {
            oldest = i; /* free or expired: as good as empty */
            r->slot[i].start_ms = INT64_MIN / 2;
        } else if (r->slot[i].start_ms < r->slot[oldest].start_ms) {
            oldest = i;
        }
    }
    snprintf(r->slot[oldest].name, sizeof(r->slot[oldest].name), "%s", name);
    r->slot[oldest].start_ms = now_ms;
    r->slot[oldest].n = 0;
    return oldest;
}

sb_err sb__api_rate_take(struct sb__api_rate *r, const char *name, int64_t now_ms,
                         int64_t *retry_after_s)
{
    sb_err rc = SB_OK;
    pthread_mutex_lock(&r->lock);
    size_t i = slot_of(r, name, now_ms);
    if (now_ms - r->slot[i].start_ms >= r->window_ms) {
        r->slot[i].start_ms = now_ms; /* a new window */
        r->slot[i].n = 0;
    }
    if (r->slot[i].n >= r->limit) {
        int64_t left = r->slot[i].start_ms + r->window_ms - now_ms;
        *retry_after_s = left / 1000 + (left % 1000 ? 1 : 0);
        rc = SB_E_RATE_LIMITED;
    } else if (r->running >= r->max_running) {
        *retry_after_s = 5; /* a test takes at most 15 s; most take well under 5 */
        rc = SB_E_RATE_LIMITED;
    } else {
        r->slot[i].n++;
        r->running++;
    }
    if (rc != SB_OK && *retry_after_s < 1)
        *retry_after_s = 1;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void sb__api_rate_done(struct sb__api_rate *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->running)
        r->running--;
    pthread_mutex_unlock(&r->lock);
}
