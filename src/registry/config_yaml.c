/* SPDX-License-Identifier: MIT */
/*
 * config_yaml.c - builds the config_yaml.h tree from libyaml events.
 *
 * Recursive descent over the event stream: every event is deleted by the
 * function that received it, on every path. Depth is bounded, so the
 * recursion is too. Duplicate-key detection is quadratic per mapping,
 * which MAX_PAIRS keeps cheap.
 */
#include "registry/config_yaml.h"

#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 16     /* nesting of mappings and sequences */
#define MAX_NODES 200000 /* scalars + collections in the whole file */
#define MAX_PAIRS 512    /* keys in one mapping */

struct yreader {
    yaml_parser_t parser;
    struct sb_arena *a; /* the tree lives here */
    const char *name;   /* file name for messages */
    size_t nodes;       /* built so far */
    struct sb_error *err;
};

static int ev_line(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

static sb_err yfail(struct yreader *y, int line, const char *what)
{
    return sb_fail(y->err, SB_E_CONFIG, "%s:%d: %s", y->name, line, what);
}

static sb_err next_event(struct yreader *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->parser, ev))
        return SB_OK;
    return sb_fail(y->err, SB_E_CONFIG, "%s:%d: YAML syntax: %s", y->name,
                   (int)y->parser.problem_mark.line + 1,
                   y->parser.problem ? y->parser.problem : "error");
}

static struct sb__ynode *new_node(struct yreader *y, enum sb__ykind kind, const yaml_event_t *ev)
{
    struct sb__ynode *n = sb_arena_calloc(y->a, sizeof(*n));
    n->kind = kind;
    n->line = ev_line(ev);
    y->nodes++;
    return n;
}

void sb__ynode_append(struct sb__ynode *parent, struct sb__ynode *child)
{
    if (parent->last)
        parent->last->next = child;
    else
        parent->child = child;
    parent->last = child;
}

static sb_err read_node(struct yreader *y, yaml_event_t *ev, int depth, struct sb__ynode **out);

static sb_err read_scalar(struct yreader *y, yaml_event_t *ev, struct sb__ynode **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(v, '\0', len))
        return yfail(y, ev_line(ev), "a value contains a NUL character");
    struct sb__ynode *n = new_node(y, SB_Y_SCALAR, ev);
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->str = sb_arena_strndup(y->a, v, len);
    n->len = len;
    *out = n;
    return SB_OK;
}

static bool same_key(const struct sb__ynode *a, const struct sb__ynode *b)
{
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

/* Adds key/value to map; keys are scalars, unique, at most MAX_PAIRS. */
static sb_err add_pair(struct yreader *y, struct sb__ynode *map, struct sb__ynode *key,
                       struct sb__ynode *val)
{
    if (key->kind != SB_Y_SCALAR)
        return yfail(y, key->line, "mapping keys must be plain strings");
    if (map->count == MAX_PAIRS)
        return yfail(y, key->line, "too many keys in one mapping");
    for (const struct sb__ynode *k = map->child; k; k = k->next->next)
        if (same_key(k, key))
            return sb_fail(y->err, SB_E_CONFIG, "%s:%d: duplicate key '%.40s'", y->name, key->line,
                           key->str);
    sb__ynode_append(map, key);
    sb__ynode_append(map, val);
    map->count++;
    return SB_OK;
}

/* Reads the children of a mapping or sequence until its end event. */
static sb_err read_children(struct yreader *y, struct sb__ynode *n, yaml_event_type_t end,
                            int depth)
{
    struct sb__ynode *key = NULL;
    for (;;) {
        yaml_event_t ev;
        struct sb__ynode *child = NULL;
        sb_err rc = next_event(y, &ev);
        if (rc != SB_OK)
            return rc;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return SB_OK;
        }
        rc = read_node(y, &ev, depth + 1, &child);
        if (rc != SB_OK)
            return rc;
        if (n->kind == SB_Y_SEQ) {
            sb__ynode_append(n, child);
            n->count++;
        } else if (!key) {
            key = child;
        } else {
            rc = add_pair(y, n, key, child);
            key = NULL;
        }
        if (rc != SB_OK)
            return rc;
    }
}

/* Builds the node that starts with *ev (which this call deletes). */
static sb_err read_node(struct yreader *y, yaml_event_t *ev, int depth, struct sb__ynode **out)
{
    sb_err rc = SB_OK;
    if (depth > MAX_DEPTH)
        rc = yfail(y, ev_line(ev), "nested too deeply");
    else if (y->nodes >= MAX_NODES)
        rc = yfail(y, ev_line(ev), "too many values");
    else if (ev->type == YAML_SCALAR_EVENT)
        rc = read_scalar(y, ev, out);
    else if (ev->type == YAML_ALIAS_EVENT)
        rc = yfail(y, ev_line(ev), "YAML aliases (*name) are not supported");
    else if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        *out = new_node(y, seq ? SB_Y_SEQ : SB_Y_MAP, ev);
        yaml_event_delete(ev);
        return read_children(y, *out, seq ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT,
                             depth);
    } else
        rc = yfail(y, ev_line(ev), "unexpected YAML event");
    yaml_event_delete(ev);
    return rc;
}

/* Expects the event type t next (stream/document framing). */
static sb_err expect(struct yreader *y, yaml_event_type_t t, yaml_event_t *ev, const char *what)
{
    sb_err rc = next_event(y, ev);
    if (rc == SB_OK && ev->type != t) {
        rc = yfail(y, ev_line(ev), what);
        yaml_event_delete(ev);
    }
    return rc;
}

/* The single document of the stream; *root = NULL for an empty file. */
static sb_err read_document(struct yreader *y, struct sb__ynode **root)
{
    yaml_event_t ev;
    *root = NULL;
    sb_err rc = expect(y, YAML_STREAM_START_EVENT, &ev, "not a YAML stream");
    if (rc != SB_OK)
        return rc;
    yaml_event_delete(&ev);
    rc = next_event(y, &ev);
    if (rc != SB_OK || ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return rc;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    rc = next_event(y, &ev);
    if (rc == SB_OK)
        rc = read_node(y, &ev, 0, root);
    if (rc == SB_OK)
        rc = expect(y, YAML_DOCUMENT_END_EVENT, &ev, "expected the end of the document");
    if (rc != SB_OK)
        return rc;
    yaml_event_delete(&ev);
    rc = expect(y, YAML_STREAM_END_EVENT, &ev, "only one YAML document is allowed");
    if (rc == SB_OK)
        yaml_event_delete(&ev);
    return rc;
}

sb_err sb__yaml_read(struct sb_arena *a, const char *name, const char *p, size_t len,
                     struct sb__ynode **root, struct sb_error *err)
{
    struct yreader y = {.a = a, .name = name, .err = err};
    *root = NULL;
    if (!yaml_parser_initialize(&y.parser))
        return sb_fail(err, SB_E_INTERNAL, "%s: cannot start the YAML parser", name);
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)p, len);
    sb_err rc = read_document(&y, root);
    yaml_parser_delete(&y.parser);
    return rc;
}
