/* SPDX-License-Identifier: MIT */
/*
 * config_json.c - a JSON value as the config walker's tree (config_yaml.h).
 *
 * The control plane's bodies mirror the config file's entries (DESIGN.md
 * §4), so they are checked by the very same key tables and checks: this
 * file turns a parsed JSON value into the tree libyaml would have produced,
 * and config_walk.c walks it. Typing stays strict: JSON strings become quoted
 * scalars (so "5" is not an integer and "true" not a boolean), numbers and
 * literals become plain scalars. Lines are 0 (messages then omit them).
 * Strings with a NUL byte and duplicate keys are refused, as the YAML reader
 * refuses them.
 */
#include <string.h>

#include "registry/config_yaml.h"

static sb_err convert(struct sb_arena *a, const struct sb_json *j, struct sb__ynode **out,
                      struct sb_error *err);

static struct sb__ynode *scalar(struct sb_arena *a, struct sb_slice s, bool plain)
{
    struct sb__ynode *n = sb_arena_calloc(a, sizeof(*n));
    n->kind = SB_Y_SCALAR;
    n->plain = plain;
    n->str = sb_arena_strndup(a, s.p, s.len);
    n->len = s.len;
    return n;
}

static bool has_key(const struct sb__ynode *map, struct sb_slice key)
{
    for (const struct sb__ynode *k = map->child; k; k = k->next->next)
        if (k->len == key.len && memcmp(k->str, key.p, key.len) == 0)
            return true;
    return false;
}

static sb_err container(struct sb_arena *a, const struct sb_json *j, struct sb__ynode *n,
                        struct sb_error *err)
{
    for (const struct sb_json *c = j->child; c; c = c->next) {
        struct sb__ynode *v = NULL;
        if (j->type == SB_JSON_OBJECT) {
            if (memchr(c->key.p, '\0', c->key.len))
                return sb_fail(err, SB_E_BAD_REQUEST, "a key contains a NUL byte");
            if (has_key(n, c->key))
                return sb_fail(err, SB_E_BAD_REQUEST, "duplicate key '%.*s'",
                               (int)(c->key.len > 40 ? 40 : c->key.len), c->key.p);
            sb__ynode_append(n, scalar(a, c->key, false));
        }
        sb_err rc = convert(a, c, &v, err);
        if (rc != SB_OK)
            return rc;
        sb__ynode_append(n, v);
        n->count++;
    }
    return SB_OK;
}

static sb_err convert(struct sb_arena *a, const struct sb_json *j, struct sb__ynode **out,
                      struct sb_error *err)
{
    switch (j->type) {
    case SB_JSON_STRING:
        if (memchr(j->str.p, '\0', j->str.len))
            return sb_fail(err, SB_E_BAD_REQUEST, "a string contains a NUL byte");
        *out = scalar(a, j->str, false);
        return SB_OK;
    case SB_JSON_NUMBER:
    case SB_JSON_TRUE:
    case SB_JSON_FALSE:
    case SB_JSON_NULL:
        *out = scalar(a, j->raw, true);
        return SB_OK;
    case SB_JSON_OBJECT:
    case SB_JSON_ARRAY:
        *out = sb_arena_calloc(a, sizeof(**out));
        (*out)->kind = j->type == SB_JSON_OBJECT ? SB_Y_MAP : SB_Y_SEQ;
        return container(a, j, *out, err);
    }
    return sb_fail(err, SB_E_BAD_REQUEST, "unexpected JSON value");
}

sb_err sb__json_to_ynode(struct sb_arena *a, const struct sb_json *j, struct sb__ynode **out,
                         struct sb_error *err)
{
    *out = NULL;
    return convert(a, j, out, err);
}
