/* SPDX-License-Identifier: MIT */
/*
 * batch.c - the sb_store_batch_* wrappers (store/batch.h) and the rules
 * every backend shares. A backend without batch tables fails clearly
 * instead of crashing. No SQL here.
 */
#include "store/batch.h"

#include <string.h>

#include "store/store.h"

#define BATCH(s, err)                                                                              \
    do {                                                                                           \
        if (!(s)->ops->batch)                                                                      \
            return sb_fail(err, SB_E_INTERNAL, "store %s has no batch jobs", (s)->ops->name);      \
    } while (0)

static bool final_status(const char *status)
{
    return status && (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
                      strcmp(status, "cancelled") == 0);
}

sb_err sb_store_batch_create(struct sb_store *s, const struct sb_store_batch *b,
                             const struct sb_store_batch_line *lines, size_t n,
                             struct sb_error *err)
{
    BATCH(s, err);
    if (!b->id || strlen(b->id) > SB_STORE_BATCH_ID_MAX || !b->created_by || !b->run_as ||
        !b->endpoint || b->concurrency < 1)
        return sb_fail(err, SB_E_INTERNAL, "batch: incomplete job");
    for (size_t i = 0; i < n; i++)
        if (lines[i].line != (int64_t)i + 1 || (!lines[i].body && !lines[i].result))
            return sb_fail(err, SB_E_INTERNAL, "batch: line %zu is malformed", i + 1);
    return s->ops->batch->create(s, b, lines, n, err);
}

sb_err sb_store_batch_get(struct sb_store *s, const char *id, struct sb_arena *a,
                          struct sb_store_batch *out, struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->get(s, id, a, out, err);
}

sb_err sb_store_batch_list(struct sb_store *s, const char *created_by, int64_t limit,
                           int64_t offset, struct sb_arena *a, struct sb_store_batch **out,
                           size_t *n, int64_t *total, struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->list(s, created_by, limit, offset, a, out, n, total, err);
}

sb_err sb_store_batch_cancel(struct sb_store *s, const char *id, int64_t now, struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->cancel(s, id, now, err);
}

sb_err sb_store_batch_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->remove(s, id, err);
}

sb_err sb_store_batch_results(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                              struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                              struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->results(s, id, after, limit, a, out, n, err);
}

sb_err sb_store_batch_claim(struct sb_store *s, const char *runner, int64_t now, int64_t lease_ms,
                            size_t max, struct sb_arena *a, struct sb_store_batch **out, size_t *n,
                            struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->claim(s, runner, now, lease_ms, max, a, out, n, err);
}

sb_err sb_store_batch_pending(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                              struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                              struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->pending(s, id, after, limit, a, out, n, err);
}

sb_err sb_store_batch_record(struct sb_store *s, const char *id, const char *runner,
                             const struct sb_store_batch_line *lines, size_t n, int64_t in_flight,
                             struct sb_error *err)
{
    BATCH(s, err);
    for (size_t i = 0; i < n; i++)
        if (!lines[i].result)
            return sb_fail(err, SB_E_INTERNAL, "batch: line %lld has no result",
                           (long long)lines[i].line);
    return s->ops->batch->record(s, id, runner, lines, n, in_flight, err);
}

sb_err sb_store_batch_finish(struct sb_store *s, const char *id, const char *runner,
                             const char *status, const char *error, int64_t now,
                             struct sb_error *err)
{
    BATCH(s, err);
    if (!final_status(status))
        return sb_fail(err, SB_E_INTERNAL, "batch: '%s' is not a final status",
                       status ? status : "(null)");
    return s->ops->batch->finish(s, id, runner, status, error, now, err);
}

sb_err sb_store_batch_release(struct sb_store *s, const char *runner, struct sb_error *err)
{
    BATCH(s, err);
    return s->ops->batch->release(s, runner, err);
}
