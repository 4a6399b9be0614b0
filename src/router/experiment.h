/* SPDX-License-Identifier: MIT */
/*
 * experiment.h - which variant of an A/B experiment serves a request.
 *
 * Assignment is a pure function of the experiment and the request's
 * conversation key, so it needs no stored state and every worker agrees:
 * the key is the x-switchboard-conversation header, else the OpenAI `user`
 * field, else none (then a random draw the caller passes decides). The key
 * and the experiment id are hashed to a point in [0, total weight) and the
 * variant whose weight interval holds the point is chosen. The same
 * conversation therefore gets the same variant for as long as the variants
 * and weights stay the same (a weight change moves some conversations, as
 * any re-split must); a variant of weight 0 is never chosen; different
 * experiments split the same conversations independently (the id is part
 * of the hash).
 *
 * A paused or ended experiment serves every request with its first variant
 * (the control) and does not count it: the proxy records no variant and
 * answers no x-switchboard-variant, so the results compare only requests
 * that were split at random.
 */
#ifndef SB_ROUTER_EXPERIMENT_H
#define SB_ROUTER_EXPERIMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/slice.h"
#include "registry/registry.h"

struct sb_experiment_choice {
    const struct sb_experiment_variant *variant; /* whose target serves the request; never
                                                    NULL; valid while the snapshot is held */
    bool counted; /* drawn in an active experiment: record variant->name on the usage row
                     (route = the experiment id) and answer x-switchboard-variant */
    bool sticky;  /* the draw came from a conversation key (not rnd) */
};

/* Chooses for x (nvariants >= 1, total_weight > 0, as the snapshot guarantees).
 * conversation: the x-switchboard-conversation header's value; user: the body's
 * `user` string; either may be empty. rnd decides when both are. Borrows all. */
void sb_experiment_assign(const struct sb_experiment_entry *x, struct sb_slice conversation,
                          struct sb_slice user, uint64_t rnd, struct sb_experiment_choice *out);

/* A random value for rnd: per thread, no lock (not cryptographic). */
uint64_t sb_experiment_random(void);

#endif
