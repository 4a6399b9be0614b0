/* SPDX-License-Identifier: MIT */
/*
 * sessions.h - console sessions the data plane can check without the store.
 *
 * The console's playground calls /v1 with its session cookie, and workers
 * never wait on the database, so the control plane mirrors every live
 * session here: it puts one at login (and at start, from the store), and
 * deletes it at logout, expiry, or when the user is disabled or deleted.
 * Lookups take a mutex for a hash probe (tens of nanoseconds); the table
 * holds only token hashes, never a cookie value.
 */
#ifndef SB_GATEWAY_SESSIONS_H
#define SB_GATEWAY_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

struct sb_sessions;

struct sb_session_info {
    char username[72];
    char role[16];          /* admin | developer | user */
    int64_t expires_at_ms;  /* Unix ms; expired entries are never returned */
    unsigned char csrf[32]; /* SHA-256 of the session's CSRF token */
};

/* Returns owned (free with sb_sessions_free). Thread-safe from then on. */
struct sb_sessions *sb_sessions_create(void);
/* Accepts NULL. */
void sb_sessions_free(struct sb_sessions *s);
/* Adds or replaces the session whose cookie hashes to digest. Copies info. */
void sb_sessions_put(struct sb_sessions *s, const unsigned char digest[32],
                     const struct sb_session_info *info);
/* true and *out (a copy) when digest names a live session at now_ms. */
bool sb_sessions_get(struct sb_sessions *s, const unsigned char digest[32], int64_t now_ms,
                     struct sb_session_info *out);
void sb_sessions_del(struct sb_sessions *s, const unsigned char digest[32]);
/* Removes every session of username (disabled, deleted, password changed). */
void sb_sessions_del_user(struct sb_sessions *s, const char *username);

#endif
