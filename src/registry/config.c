/* SPDX-License-Identifier: MIT */
/*
 * config.c - reads the YAML config file into struct sb_config.
 *
 * Two passes. First config_yaml.c turns libyaml's events into a small tree
 * of our own (each node with its line), refusing aliases, duplicate keys
 * and input beyond fixed bounds. Then a generic walker (config_walk.c)
 * applies one key table per section (STYLE.md practice 5): a row says which
 * key, what type, where it goes in the struct and its range; adding a key is
 * adding a row. Per-entry checks (config_providers.c, config_models.c) and
 * cross-references (config_cross.c: ids, providers, route targets) run
 * after the walk. Errors carry file:line and the key path.
 *
 * This file holds the top level and its server, cache and routing sections,
 * the public API, and the secrets. Credentials stay references until
 * sb_config_resolve_secret reads them, and no message ever echoes a
 * credential value.
 *
 * Chapters: top-level tables · public API · one entry from an /api body ·
 * secrets.
 */
#include "registry/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "registry/config_int.h"

#define MAX_FILE (1024 * 1024) /* config file bytes */
#define MAX_SECRET_FILE (64 * 1024)

/* ---- top-level tables ---- */

/* Short name for the row macros (a macro, not a typedef: STYLE.md practice 17). */
#define CFG struct sb_config

static const struct field server_fields[] = {
    INT("max_body_bytes", CFG, server.max_body_bytes, 1024, 1073741824),
    INT("max_header_bytes", CFG, server.max_header_bytes, 1024, 1048576),
    INT("header_timeout_ms", CFG, server.header_timeout_ms, 100, 600000),
    INT("idle_timeout_ms", CFG, server.idle_timeout_ms, 100, 3600000),
    INT("max_connections", CFG, server.max_connections, 1, 1000000),
    INT("shutdown_timeout_ms", CFG, server.shutdown_timeout_ms, 0, 600000),
    INT("body_buffer_bytes", CFG, server.body_buffer_bytes, 0, 1073741824),
    STR("body_temp_dir", CFG, server.body_temp_dir),
};
static const struct table server_table = TABLE(server_fields, CFG, NULL, NULL);

static const struct field cache_fields[] = {
    INT("max_bytes", CFG, cache.max_bytes, 1048576, 68719476736LL),
    INT("max_entries", CFG, cache.max_entries, 1, 100000000),
    INT("max_entry_bytes", CFG, cache.max_entry_bytes, 1024, 68719476736LL),
};

static sb_err check_cache(struct walk *w, void *elem, const struct sb__ynode *n)
{
    const struct sb_cache_limits *c = &((struct sb_config *)elem)->cache;
    if (c->max_entry_bytes > c->max_bytes)
        return sb__config_fail_at(w, n, "max_entry_bytes", "must not exceed max_bytes (%lld)",
                                  (long long)c->max_bytes);
    return SB_OK;
}
static const struct table cache_table = TABLE(cache_fields, CFG, NULL, check_cache);

static const struct field routing_fields[] = {
    INT("retries", CFG, routing.retries, 0, 10),
    INT("retry_backoff_ms", CFG, routing.retry_backoff_ms, 1, 60000),
    INT("retry_max_wait_ms", CFG, routing.retry_max_wait_ms, 0, 600000),
    INT("deadline_ms", CFG, routing.deadline_ms, 1000, 3600000),
    INT("breaker_failures", CFG, routing.breaker_failures, 1, 1000),
    INT("breaker_cooldown_ms", CFG, routing.breaker_cooldown_ms, 100, 3600000),
};
static const struct table routing_table = TABLE(routing_fields, CFG, NULL, NULL);

static const struct field top_fields[] = {
    STR("listen", CFG, listen),
    STR("database", CFG, database),
    STR("redis", CFG, redis),
    INT("workers", CFG, workers, 0, 1024),
    CRED("metrics_token", CFG, metrics_token),
    BOOL("allow_private_base_urls", CFG, allow_private_base_urls),
    MAP("server", server_table),
    MAP("cache", cache_table),
    MAP("routing", routing_table),
    ARR("providers", F_LIST, CFG, system.providers, system.nproviders, &sb__config_provider_table),
    ARR("models", F_LIST, CFG, system.models, system.nmodels, &sb__config_model_table),
    ARR("routes", F_LIST, CFG, system.routes, system.nroutes, &sb__config_route_table),
};
static const struct table top_table = TABLE(top_fields, CFG, NULL, NULL);

/* listen is HOST:PORT with a port in 1..65535; database and redis have known schemes. */
static sb_err check_top(struct walk *w)
{
    const struct sb_config *c = w->cfg;
    const char *colon = strrchr(c->listen, ':');
    struct sb_slice port = colon ? sb_slice_cstr(colon + 1) : SB_SLICE_NULL;
    unsigned long long p = 0;
    if (!colon || !sb_slice_to_u64(port, &p) || p == 0 || p > 65535)
        return sb__config_fail_at(w, w->root, "listen", "expected HOST:PORT, e.g. 127.0.0.1:8080");
    struct sb_slice db = sb_slice_cstr(c->database);
    if (!sb_slice_starts_with(db, SB_SLICE("sqlite:")) &&
        !sb_slice_starts_with(db, SB_SLICE("postgres://")) &&
        !sb_slice_starts_with(db, SB_SLICE("postgresql://")))
        return sb__config_fail_at(w, w->root, "database", "expected sqlite:PATH or postgres://...");
    if (c->redis && strncmp(c->redis, "redis://", 8) != 0 && strncmp(c->redis, "rediss://", 9))
        return sb__config_fail_at(w, w->root, "redis", "expected redis://HOST:PORT");
    return SB_OK;
}

/* ---- public API ---- */

struct sb_config *sb_config_default(void)
{
    struct sb_arena *a = sb_arena_create(8192);
    struct sb_config *c = sb_arena_calloc(a, sizeof(*c));
    c->arena = a;
    c->path = "(defaults)";
    c->listen = "127.0.0.1:8080";
    c->database = "sqlite:./switchboard.db";
    c->server = (struct sb_server_limits){
        .max_body_bytes = 8 * 1024 * 1024,
        .max_header_bytes = 16 * 1024,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .max_connections = 10000,
        .shutdown_timeout_ms = 10000,
        .body_buffer_bytes = 64 * 1024,
    };
    c->cache = (struct sb_cache_limits){.max_bytes = 64 * 1024 * 1024, .max_entries = 65536};
    c->routing = (struct sb_routing_limits){
        .retries = 0, /* opt-in: SDKs retry too, and retries multiply */
        .retry_backoff_ms = 250,
        .retry_max_wait_ms = 5000,
        .deadline_ms = 120000,
        .breaker_failures = 5,
        .breaker_cooldown_ms = 30000,
    };
    return c;
}

void sb_config_free(struct sb_config *c)
{
    if (c)
        sb_arena_free(c->arena);
}

static sb_err walk_root(struct walk *w)
{
    if (!w->root || sb__config_is_null(w->root))
        return SB_OK; /* an empty file: the defaults */
    sb_err rc = sb__config_walk_map(w, &top_table, w->cfg, w->root);
    if (rc == SB_OK)
        rc = check_top(w);
    if (rc == SB_OK)
        rc = sb__config_check_cross(w);
    return rc;
}

/* ---- one entry from an /api body ---- */

/* Takes the credential keys out of a provider body: over the API they carry
 * the secret itself (DESIGN.md §4), which the walker must never see. */
static sb_err take_creds(struct sb__ynode *map, struct sb_config_creds *c, struct sb_error *err)
{
    struct {
        const char *key;
        const char **dst;
    } keys[] = {{"api_key", &c->api_key},
                {"aws_access_key_id", &c->aws_access_key_id},
                {"aws_secret_access_key", &c->aws_secret_access_key},
                {"aws_session_token", &c->aws_session_token}};
    struct sb__ynode **link = &map->child, *last = NULL;
    while (*link) {
        struct sb__ynode *k = *link, *v = k->next;
        size_t i = 0;
        while (i < 4 && strcmp(k->str, keys[i].key) != 0)
            i++;
        if (i == 4) {
            last = v;
            link = &v->next;
            continue;
        }
        if (v->kind != SB_Y_SCALAR || v->plain || v->len == 0 || v->len > 4096 ||
            !sb__config_printable(v->str, 4096))
            return sb_fail_field(err, SB_E_BAD_REQUEST, keys[i].key,
                                 "%s: expected the credential as a non-empty string", keys[i].key);
        if (strncmp(v->str, "env:", 4) == 0 || strncmp(v->str, "file:", 5) == 0)
            return sb_fail_field(err, SB_E_BAD_REQUEST, keys[i].key,
                                 "%s: send the credential itself; env: and file: references "
                                 "are for the config file only",
                                 keys[i].key);
        *keys[i].dst = v->str;
        *link = v->next;
        map->count--;
    }
    map->last = last;
    return SB_OK;
}

static const struct table *const entry_tables[] = {
    [SB_CONFIG_PROVIDER] = &sb__config_provider_table,
    [SB_CONFIG_MODEL] = &sb__config_model_table,
    [SB_CONFIG_ROUTE] = &sb__config_route_table,
};

sb_err sb_config_entry_from_json(struct sb_arena *a, enum sb_config_entry kind,
                                 const struct sb_json *obj, void *out,
                                 struct sb_config_creds *creds, struct sb_error *err)
{
    struct sb_config tmp = {.arena = a};
    struct walk w = {.cfg = &tmp, .name = "body", .err = err, .api = true};
    const struct table *t = entry_tables[kind];
    struct sb__ynode *root = NULL;
    struct sb_config_creds none;
    if (!creds)
        creds = &none;
    memset(creds, 0, sizeof(*creds));
    if (!obj || obj->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "the body must be a JSON object");
    sb_err rc = sb__json_to_ynode(a, obj, &root, err);
    if (rc == SB_OK && kind == SB_CONFIG_PROVIDER)
        rc = take_creds(root, creds, err);
    memset(out, 0, t->size);
    if (rc == SB_OK && t->init)
        t->init(out);
    if (rc == SB_OK)
        rc = sb__config_walk_map(&w, t, out, root);
    if (rc == SB_OK && t->check)
        rc = t->check(&w, out, root);
    /* is_system is the config file's; an API entry never is one. */
    if (kind == SB_CONFIG_PROVIDER)
        ((struct sb_store_provider *)out)->is_system = false;
    else if (kind == SB_CONFIG_MODEL)
        ((struct sb_store_model *)out)->is_system = false;
    else
        ((struct sb_store_route *)out)->is_system = false;
    return rc;
}

sb_err sb_config_parse(const char *name, const char *p, size_t len, struct sb_config **out,
                       struct sb_error *err)
{
    struct sb_arena *tree = sb_arena_create(16384);
    struct sb_config *cfg = sb_config_default();
    struct walk w = {.cfg = cfg, .name = name, .err = err};
    sb_err rc = SB_OK;
    *out = NULL;
    cfg->path = sb_arena_strndup(cfg->arena, name, strlen(name));
    if (len > MAX_FILE) {
        rc = sb_fail(err, SB_E_CONFIG, "%s: larger than %d bytes", name, MAX_FILE);
        goto out;
    }
    struct sb__ynode *root = NULL;
    rc = sb__yaml_read(tree, name, p, len, &root, err);
    w.root = root;
    if (rc == SB_OK)
        rc = walk_root(&w);
out:
    sb_arena_free(tree);
    if (rc == SB_OK)
        *out = cfg;
    else
        sb_config_free(cfg);
    return rc;
}

/* Reads at most max bytes of a regular file into owned memory (free with free()). */
static sb_err read_file(const char *path, size_t max, char **out, size_t *len, struct sb_error *err)
{
    struct stat st;
    sb_err rc = SB_OK;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sb_fail(err, SB_E_CONFIG, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = sb_fail(err, SB_E_CONFIG, "%s: not a regular file", path);
    else if ((size_t)st.st_size > max)
        rc = sb_fail(err, SB_E_CONFIG, "%s: larger than %zu bytes", path, max);
    char *buf = rc == SB_OK ? sb_xmalloc((size_t)st.st_size + 1) : NULL;
    size_t n = 0;
    while (rc == SB_OK && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = sb_fail(err, SB_E_CONFIG, "%s: read failed", path);
        else
            n += (size_t)r;
    }
    close(fd);
    if (rc != SB_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return SB_OK;
}

sb_err sb_config_load(const char *path, struct sb_config **out, struct sb_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    sb_err rc = read_file(path, MAX_FILE, &text, &len, err);
    if (rc == SB_OK)
        rc = sb_config_parse(path, text, len, out, err);
    free(text);
    return rc;
}

/* ---- secrets ---- */

static sb_err resolve_file(const char *path, struct sb_secret **out, struct sb_error *err)
{
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    struct sb_error why = {0};
    sb_err rc = read_file(path, MAX_SECRET_FILE, &buf, &n, &why);
    if (rc != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "credential file:%s", why.msg); /* "PATH: reason" */
    size_t len = n;
    if (len && buf[len - 1] == '\n')
        len--;
    if (len && buf[len - 1] == '\r')
        len--;
    if (len == 0)
        rc = sb_fail(err, SB_E_CONFIG, "credential file:%s: is empty", path);
    else
        *out = sb_secret_new(buf, len);
    sb_secret_wipe(buf, n);
    free(buf);
    if (rc == SB_OK && stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        sb_warn("msg=\"credential file is readable by group or others; chmod 600 it\" path=%s",
                path);
    return rc;
}

sb_err sb_config_resolve_secret(const char *ref, struct sb_secret **out, struct sb_error *err)
{
    *out = NULL;
    if (!ref)
        return SB_OK;
    if (strncmp(ref, "env:", 4) == 0 && sb__config_env_name_ok(ref + 4)) {
        const char *v = getenv(ref + 4);
        if (!v || !*v) {
            sb_warn("msg=\"credential variable is not set; requests will carry no key\" var=%s",
                    ref + 4);
            return SB_OK;
        }
        *out = sb_secret_new(v, strlen(v));
        return SB_OK;
    }
    if (strncmp(ref, "file:", 5) == 0 && ref[5])
        return resolve_file(ref + 5, out, err);
    return sb_fail(err, SB_E_CONFIG, "credential reference must be env:NAME or file:PATH");
}
