/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - allocation that cannot fail.
 *
 * Out of memory aborts with a message (STYLE.md practice 10): callers never
 * check for NULL, which keeps the real error paths few enough to test.
 */
#ifndef SB_CORE_ALLOC_H
#define SB_CORE_ALLOC_H

#include <stddef.h>

/* Each returns owned memory (free with free()); never NULL. */
void *sb_xmalloc(size_t n);
void *sb_xcalloc(size_t count, size_t size);
void *sb_xrealloc(void *p, size_t n);
char *sb_xstrdup(const char *s);
char *sb_xstrndup(const char *s, size_t n);

/* Tunes the C allocator for a long-running server (glibc; a no-op
 * elsewhere). Call once, before threads start. */
void sb_alloc_tune_server(void);

#endif
