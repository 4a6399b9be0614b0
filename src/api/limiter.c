/* SPDX-License-Identifier: MIT */
/*
 * limiter.c - the login attempt limit: failures per key in a fixed window.
 *
 * A key is "u:<username>" or "c:<client address>". Its window starts at its
 * first failure and lasts SB_LOGIN_WINDOW_MS; at max failures inside it the
 * key is blocked until the window ends (429 with Retry-After). Fixed windows
 * and not a sliding log: one counter per key, and an attacker gains nothing
 * at a window edge beyond max more tries per window.
 *
 * Memory is bounded (SB_LIMITER_SLOTS keys, ~400 KiB): a flood of distinct
 * usernames evicts the oldest window rather than growing the table. That
 * lets a flood reset a real user's counter, but the per-client key of the
 * flooder fills first and blocks it. Lookups scan the table: 4096 short
 * string compares cost microseconds, and each lookup precedes an argon2id
 * verification that costs ~30 ms. In memory only, under the api mutex: a
 * restart forgets the counts (acceptable: a restart is rarer than a window).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "core/alloc.h"

struct slot {
    char key[80]; /* "" = free */
    int failures;
    int64_t start_ms; /* first failure of the window */
};

struct sb__api_limiter {
    struct slot s[SB_LIMITER_SLOTS];
};

struct sb__api_limiter *sb__api_limiter_create(void)
{
    return sb_xcalloc(1, sizeof(struct sb__api_limiter));
}

void sb__api_limiter_free(struct sb__api_limiter *l)
{
    free(l);
}

static bool live(const struct slot *s, int64_t now)
{
    return s->key[0] && now - s->start_ms < SB_LOGIN_WINDOW_MS;
}

static struct slot *find(struct sb__api_limiter *l, const char *key, int64_t now)
{
    for (size_t i = 0; i < SB_LIMITER_SLOTS; i++)
        if (live(&l->s[i], now) && strncmp(l->s[i].key, key, sizeof(l->s[i].key) - 1) == 0)
            return &l->s[i];
    return NULL;
}

bool sb__api_limiter_blocked(struct sb__api_limiter *l, const char *key, int max, int64_t now,
                             int64_t *retry_s)
{
    const struct slot *s = find(l, key, now);
    *retry_s = 0;
    if (!s || s->failures < max)
        return false;
    int64_t left = s->start_ms + SB_LOGIN_WINDOW_MS - now;
    *retry_s = left > 0 ? (left + 999) / 1000 : 1;
    return true;
}

/* A free or expired slot, else the one whose window started first. */
static struct slot *take(struct sb__api_limiter *l, int64_t now)
{
    struct slot *oldest = &l->s[0];
    for (size_t i = 0; i < SB_LIMITER_SLOTS; i++) {
        if (!live(&l->s[i], now))
            return &l->s[i];
        if (l->s[i].start_ms < oldest->start_ms)
            oldest = &l->s[i];
    }
    return oldest;
}

void sb__api_limiter_fail(struct sb__api_limiter *l, const char *key, int64_t now)
{
    struct slot *s = find(l, key, now);
    if (!s) {
        s = take(l, now);
        snprintf(s->key, sizeof(s->key), "%s", key);
        s->failures = 0;
        s->start_ms = now;
    }
    s->failures++;
}

void sb__api_limiter_reset(struct sb__api_limiter *l, const char *key)
{
    for (size_t i = 0; i < SB_LIMITER_SLOTS; i++)
        if (l->s[i].key[0] && strncmp(l->s[i].key, key, sizeof(l->s[i].key) - 1) == 0)
            l->s[i].key[0] = '\0';
}
