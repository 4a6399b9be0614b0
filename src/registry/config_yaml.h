/* SPDX-License-Identifier: MIT */
/*
 * config_yaml.h - a YAML document as a small tree with line numbers.
 *
 * Inside the registry layer only (config*.c). libyaml's event parser feeds a
 * tree of our own so the config walker can report file:line for every
 * value. The reader refuses what a config file never needs and an attacker
 * could abuse: aliases (no billion-laughs expansion), more than one
 * document, duplicate keys, non-scalar keys, NUL bytes, and input past
 * fixed bounds on nesting, node count and keys per mapping.
 */
#ifndef SB_REGISTRY_CONFIG_YAML_H
#define SB_REGISTRY_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"

enum sb__ykind { SB_Y_SCALAR, SB_Y_MAP, SB_Y_SEQ };

struct sb__ynode {
    enum sb__ykind kind;
    int line;                /* 1-based line of the node's start */
    bool plain;              /* unquoted scalar: may be a number, bool or null */
    const char *str;         /* SCALAR: NUL-terminated copy (no NUL inside) */
    size_t len;              /* SCALAR: bytes in str */
    size_t count;            /* MAP: pairs; SEQ: items */
    struct sb__ynode *child; /* MAP: key, value, key, value, ...; SEQ: items */
    struct sb__ynode *last;  /* last child, for appending */
    struct sb__ynode *next;  /* next sibling */
};

/* Appends child to parent's children (a MAP's come as key, value, key, ...). */
void sb__ynode_append(struct sb__ynode *parent, struct sb__ynode *child);

/*
 * Parses p[0..len) (borrowed) into a tree allocated from a. *root is NULL
 * for an empty stream. Errors are SB_E_CONFIG "name:line: what".
 */
sb_err sb__yaml_read(struct sb_arena *a, const char *name, const char *p, size_t len,
                     struct sb__ynode **root, struct sb_error *err);

/*
 * The same tree from a parsed JSON value (config_json.c), for /api bodies:
 * JSON strings become quoted scalars, numbers and literals plain ones, lines
 * are 0. Allocates from a; borrows nothing after it returns. Duplicate keys
 * and strings with NUL are SB_E_BAD_REQUEST.
 */
sb_err sb__json_to_ynode(struct sb_arena *a, const struct sb_json *j, struct sb__ynode **out,
                         struct sb_error *err);

#endif
