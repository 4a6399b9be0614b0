/* SPDX-License-Identifier: MIT */
/*
 * proxy_cache.c - the response cache around a /v1 request (router/cache.h).
 *
 * Only routes that opt in (`cache: {ttl_s}`) cache, and only OpenAI chat
 * completions (not /v1/messages, not embeddings). A hit is answered before
 * any upstream attempt: as the stored body, or replayed as a stream when the
 * client asked for one; it costs nothing (cost 0 on its usage row, no
 * rate-limit reservation). A miss goes upstream as usual and its answer is
 * stored: a whole body as it is, a stream rebuilt from the events that
 * passed to the client. Every answer on a caching route says
 * x-switchboard-cache: hit | miss.
 */
#include <string.h>

#include "gateway/proxy_int.h"

static void acc_free(void *ud)
{
    sb_cache_acc_free(ud);
}

static void answer_hit(struct proxy *x, const struct sb_cache_hit *hit)
{
    size_t n;
    x->usage.prompt_tokens = hit->usage.prompt_tokens;
    x->usage.completion_tokens = hit->usage.completion_tokens;
    if (!x->ckey.stream) {
        sb__proxy_account(x, 200, "ok", SB_OK, NULL);
        const struct sb_http_header *h = sb__proxy_headers(x, "application/json", &n);
        sb_http_respond(x->req, 200, h, n, hit->body);
        return;
    }
    struct sb_buf b;
    struct sb_error e;
    sb_buf_init(&b, 0);
    sb_err rc = sb_cache_render_sse(hit->body, x->ckey.include_usage, 0, &b, &e);
    x->ttft_ns = uv_hrtime();
    sb__proxy_account(x, 200, rc == SB_OK ? "ok" : "error", rc, rc == SB_OK ? NULL : e.msg);
    const struct sb_http_header *h = sb__proxy_headers(x, "text/event-stream", &n);
    sb_http_stream_start(x->req, 200, h, n);
    sb_http_stream_write(x->req, b.p, b.len);
    sb_http_stream_end(x->req);
    sb_buf_free(&b);
}

bool sb__proxy_cache_serve(struct proxy *x)
{
    struct sb_cache *c = x->w->gw->cache;
    struct sb_cache_hit hit;
    struct sb_error e;
    char tenant[80];
    if (!c || x->front || x->call.op != SB_OP_CHAT || !x->route || x->route->cache.ttl_s <= 0)
        return false;
    sb_cache_tenant(x->client.key, x->client.user, tenant, sizeof(tenant));
    if (sb_cache_key(x->route, tenant, x->call.body, &x->ckey, &e) != SB_OK)
        return false; /* an odd body is simply not cached */
    x->cache_on = true;
    if (!sb_cache_lookup(c, &x->ckey, sb__wall_ms(), x->req->arena, &hit))
        return false;
    x->cache_hit = true;
    if (x->plan.n) { /* the headers name the route's first target */
        x->call.model = x->plan.t[0];
        x->call.provider = x->plan.t[0]->provider;
    }
    answer_hit(x, &hit);
    return true;
}

void sb__proxy_cache_whole(struct proxy *x, struct sb_slice body)
{
    if (x->cache_on && x->ckey.cacheable && !x->ckey.stream)
        sb_cache_store(x->w->gw->cache, &x->ckey, 200, body, sb__wall_ms());
}

void sb__proxy_cache_stream_begin(struct proxy *x)
{
    if (!x->cache_on || !x->ckey.cacheable)
        return;
    x->acc = sb_cache_acc_create(x->w->gw->cache_max_entry);
    sb_arena_on_free(x->req->arena, acc_free, x->acc);
}

void sb__proxy_cache_event(struct proxy *x, struct sb_slice data)
{
    if (x->acc)
        sb_cache_acc_event(x->acc, data);
}

void sb__proxy_cache_stream_end(struct proxy *x)
{
    struct sb_buf b;
    struct sb_error e;
    if (!x->acc)
        return;
    sb_buf_init(&b, 0);
    if (sb_cache_acc_finish(x->acc, &b, &e) == SB_OK)
        sb_cache_store(x->w->gw->cache, &x->ckey, 200, sb_buf_slice(&b), sb__wall_ms());
    sb_buf_free(&b);
}
