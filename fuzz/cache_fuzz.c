/* SPDX-License-Identifier: MIT */
/*
 * cache_fuzz.c - libFuzzer target for the response cache's parsers of
 * outside input (router/cache.h): the request normaliser and key builder
 * (client bodies), the accumulator (upstream streams) and the SSE renderer
 * (stored answers, which came from upstreams).
 *
 * The first byte picks the chunk size the accumulator is fed in. Checked:
 *  - the canonical form is a fixpoint: when the input normalises, its
 *    canonical form is valid JSON and normalises to the same bytes;
 *  - two inputs that normalise alike get the same key (the input and its
 *    canonical form), and the key builder never fails on a body the
 *    normaliser accepted as an object;
 *  - the accumulator's answer, when it gives one, is valid JSON, renders
 *    without error, and every rendered event is valid JSON;
 *  - the same stream fed in different splits gives the same answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "router/cache.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char *targets[] = {"a", "b/c"};
static const struct sb_route_entry route = {
    .id = "r", .targets = targets, .ntargets = 2, .cache = {.ttl_s = 1, .sampled = true}};

static bool valid_json(struct sb_slice s)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *j = NULL;
    bool ok = sb_json_parse(a, s.p, s.len, NULL, &j, NULL) == SB_OK;
    sb_arena_free(a);
    return ok;
}

static void normalise(const char *p, size_t n)
{
    struct sb_buf once, twice;
    sb_buf_init(&once, 0);
    sb_buf_init(&twice, 0);
    if (sb_cache_normalize((struct sb_slice){p, n}, &once, NULL) == SB_OK) {
        CHECK(valid_json(sb_buf_slice(&once)));
        CHECK(sb_cache_normalize(sb_buf_slice(&once), &twice, NULL) == SB_OK);
        CHECK(once.len == twice.len && memcmp(once.p, twice.p, once.len) == 0);
        struct sb_cache_key k1, k2;
        sb_err r1 = sb_cache_key(&route, "key:1", (struct sb_slice){p, n}, &k1, NULL);
        sb_err r2 = sb_cache_key(&route, "key:1", sb_buf_slice(&once), &k2, NULL);
        CHECK(r1 == r2);
        CHECK(once.p[0] != '{' || r1 == SB_OK);
        CHECK(k1.cacheable == k2.cacheable);
        CHECK(!k1.cacheable || memcmp(k1.digest, k2.digest, 32) == 0);
    }
    sb_buf_free(&once);
    sb_buf_free(&twice);
}

/* Each "data: ...\n\n" event of a rendered stream is [DONE] or valid JSON. */
static void check_events(struct sb_slice sse)
{
    const char *p = sse.p, *end = sse.p + sse.len;
    while (p < end) {
        const char *nl = memmem(p, (size_t)(end - p), "\n\n", 2);
        CHECK(nl && (size_t)(nl - p) >= 6 && memcmp(p, "data: ", 6) == 0);
        struct sb_slice d = {p + 6, (size_t)(nl - p - 6)};
        CHECK(sb_slice_eq_cstr(d, "[DONE]") || valid_json(d));
        p = nl + 2;
    }
}

static sb_err accumulate(const char *p, size_t n, size_t step, struct sb_buf *out)
{
    struct sb_cache_acc *acc = sb_cache_acc_create(1 << 16);
    for (size_t i = 0; i < n; i += step)
        sb_cache_acc_feed(acc, p + i, n - i < step ? n - i : step);
    sb_err rc = sb_cache_acc_finish(acc, out, NULL);
    sb_cache_acc_free(acc);
    return rc;
}

static void stream(const char *p, size_t n, size_t step)
{
    struct sb_buf whole, split, sse;
    sb_buf_init(&whole, 0);
    sb_buf_init(&split, 0);
    sb_buf_init(&sse, 0);
    sb_err rc = accumulate(p, n, n ? n : 1, &whole);
    CHECK(accumulate(p, n, step, &split) == rc);
    if (rc == SB_OK) {
        CHECK(whole.len == split.len && memcmp(whole.p, split.p, whole.len) == 0);
        CHECK(valid_json(sb_buf_slice(&whole)));
        CHECK(sb_cache_render_sse(sb_buf_slice(&whole), true, 3, &sse, NULL) == SB_OK);
        check_events(sb_buf_slice(&sse));
    }
    sb_buf_reset(&sse);
    if (sb_cache_render_sse((struct sb_slice){p, n}, true, 2, &sse, NULL) == SB_OK)
        check_events(sb_buf_slice(&sse));
    sb_buf_free(&whole);
    sb_buf_free(&split);
    sb_buf_free(&sse);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    size_t step = data[0] % 17 + 1;
    const char *p = (const char *)data + 1;
    normalise(p, size - 1);
    stream(p, size - 1, step);
    return 0;
}
