/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - abort-on-OOM wrappers around the C allocator.
 */
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__) /* defined by the headers above */
#include <malloc.h>
#endif

static void oom(size_t n)
{
    fprintf(stderr, "switchboard: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *sb_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *sb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *sb_xstrndup(const char *s, size_t n)
{
    char *p = sb_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sb_xstrdup(const char *s)
{
    return sb_xstrndup(s, strlen(s));
}

/*
 * glibc hands freed memory back to the kernel as soon as 128 KiB lie free at
 * the top of a thread's heap (madvise), and serves blocks from 128 KiB up
 * with their own mmap. A gateway frees and allocates request and answer
 * bodies of 100 KB to a few MB all the time, so every body paid a madvise
 * and then one page fault per 4 KiB when the next body was written: a
 * quarter of the CPU of a 100 KB answer (perf, make bench). Bodies up to
 * 4 MiB now come from the heap, and up to 16 MiB stay free at a heap's top
 * for the next request. Peak RSS is what the live requests need, as
 * before; an idle process keeps what its last burst freed, up to 16 MiB per
 * arena, instead of returning it at once.
 */
void sb_alloc_tune_server(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}
