/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - request counters and histograms, rendered as Prometheus text.
 *
 * Counters keyed by (provider, model, status), kept per recording thread
 * (metrics.c: a request writes only its own thread's shard, with no lock
 * and no atomic read-modify-write) and summed over the threads when read.
 * Labels are copied in, so a registry swap cannot leave dangling names
 * behind. Every function may be called from any thread.
 */
#ifndef SB_GATEWAY_METRICS_H
#define SB_GATEWAY_METRICS_H

#include <stdbool.h>

#include "core/buf.h"
#include "store/usage.h"

struct sb_metrics_sample {
    const char *provider;   /* "" when the request never reached one */
    const char *model;      /* "" likewise */
    int status;             /* HTTP status returned to the client */
    double latency_s;       /* whole request */
    double ttft_s;          /* < 0 when not streamed */
    bool upstream_error;    /* the upstream failed (refused, timeout, 5xx, broken stream) */
    const char *error_code; /* sb_err_name when upstream_error */
};

/* Counts a /v1 request in (+1) or out (-1) in the calling thread's shard. */
void sb_metrics_inflight(int delta);
/* /v1 requests in flight now, summed over all threads' shards (the usage
 * writer paces by it; a relaxed read: a request or two may be in motion). */
long sb_metrics_inflight_now(void);
void sb_metrics_record(const struct sb_metrics_sample *s);
/* Appends the whole exposition (text format 0.0.4) to out. extra_gauges may be NULL. */
void sb_metrics_render(struct sb_buf *out, unsigned connections, unsigned long long usage_written,
                       unsigned long long usage_failed);
/* A request refused by our own limits: scope 1 provider, 2 virtual key, 3 user
 * (router/limits.h enum sb_limits_scope), budget true for a spend limit. */
void sb_metrics_limit_refused(int scope, bool budget);
/* Appends the limiter rejections and the response cache's counters (hits,
 * misses, stores, evictions, expired, entries, bytes; any may be 0). */
void sb_metrics_render_limits_cache(struct sb_buf *out, const unsigned long long cache[7]);
/* Appends the usage writer's queue and journal families (usage.h). Borrows s. */
void sb_metrics_render_usage(struct sb_buf *out, const struct sb_usage_stats *s);

#endif
