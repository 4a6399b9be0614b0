/* SPDX-License-Identifier: MIT */
/*
 * arena.h - per-request bump allocator.
 *
 * Every client request owns one arena; parsing results, the translated
 * upstream body and headers come from it and are released together by
 * sb_arena_free(). Non-memory resources register a cleanup hook that runs
 * (newest first) before the memory goes.
 */
#ifndef SB_CORE_ARENA_H
#define SB_CORE_ARENA_H

#include <stddef.h>

#include "core/slice.h"

struct sb_arena;

/* Returns owned (free with sb_arena_free). block is the first block's size hint. */
struct sb_arena *sb_arena_create(size_t block);
/* Runs the hooks, then frees every block. Accepts NULL. */
void sb_arena_free(struct sb_arena *a);
/* Frees all but the first block and forgets hooks after running them: reuse for the next request.
 */
void sb_arena_reset(struct sb_arena *a);

/* Memory valid until the arena is freed or reset; aligned for any type. Never NULL. */
void *sb_arena_alloc(struct sb_arena *a, size_t n);
void *sb_arena_calloc(struct sb_arena *a, size_t n);
/* Copies bytes and appends a NUL. */
char *sb_arena_strndup(struct sb_arena *a, const char *s, size_t n);
struct sb_slice sb_arena_slice(struct sb_arena *a, struct sb_slice s);
/* printf into the arena; returns a NUL-terminated string. */
char *sb_arena_printf(struct sb_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef void (*sb_arena_hook)(void *ud);
/* Registers fn(ud) to run when the arena is freed or reset. */
void sb_arena_on_free(struct sb_arena *a, sb_arena_hook fn, void *ud);

/* Bytes handed out so far (for tests and metrics). */
size_t sb_arena_used(const struct sb_arena *a);

#endif
