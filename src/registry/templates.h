/* SPDX-License-Identifier: MIT */
/*
 * templates.h - the built-in provider templates (templates.c): data for
 * every OpenAI-compatible service and each native wire format, used by the
 * config file (`template:`) and the control plane (GET /api/templates).
 */
#ifndef SB_REGISTRY_TEMPLATES_H
#define SB_REGISTRY_TEMPLATES_H

#include <stddef.h>

#include "store/store.h"

extern const struct sb_store_template sb_templates_builtin[];
extern const size_t sb_templates_nbuiltin;
/* The built-in template called id, or NULL. */
const struct sb_store_template *sb_templates_find(const char *id);

#endif
