/* SPDX-License-Identifier: MIT */
/*
 * experiment.c - the rules every store backend keeps for A/B experiments,
 * and their variants column (store.h), with no SQL.
 *
 * An experiment's id becomes usage_logs.route and a variant's name
 * usage_logs.variant, so both are bounded by those fields' sizes
 * (store/usage.h) and limited to characters that need no quoting in a
 * header (x-switchboard-variant). Weights are integers >= 0 with a positive
 * sum: a weight of 0 keeps a variant defined but out of traffic.
 */
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "store/store.h"

#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static const char *const statuses[] = {"active", "paused", "ended"};

static bool matches(const char *s, const char *chars, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= max && strspn(s, chars) == n;
}

static sb_err check_variant(const struct sb_store_experiment *x, size_t i, struct sb_error *err)
{
    const struct sb_store_variant *v = &x->variants[i];
    if (!matches(v->name, NAME_CHARS, SB_STORE_VARIANT_NAME_MAX))
        return sb_fail_field(err, SB_E_BAD_REQUEST, "variants",
                             "variants[%zu].name must match [A-Za-z0-9._-]+ (at most %d "
                             "characters)",
                             i, SB_STORE_VARIANT_NAME_MAX);
    for (size_t k = 0; k < i; k++)
        if (strcmp(x->variants[k].name, v->name) == 0)
            return sb_fail_field(err, SB_E_BAD_REQUEST, "variants",
                                 "variants[%zu].name: '%s' is already the name of variants[%zu]", i,
                                 v->name, k);
    if (!v->target || !*v->target)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "variants", "variants[%zu].target is required",
                             i);
    if (v->weight < 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "variants",
                             "variants[%zu].weight must not be negative", i);
    return SB_OK;
}

static sb_err check_status(const char *status, struct sb_error *err)
{
    for (size_t i = 0; status && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(status, statuses[i]) == 0)
            return SB_OK;
    if (!status)
        return SB_OK; /* active */
    return sb_fail_field(err, SB_E_BAD_REQUEST, "status", "status must be active, paused or ended");
}

sb_err sb_store_experiment_check(const struct sb_store_experiment *x, struct sb_error *err)
{
    int64_t total = 0;
    if (!matches(x->id, ID_CHARS, SB_STORE_EXPERIMENT_ID_MAX))
        return sb_fail_field(err, SB_E_BAD_REQUEST, "id",
                             "experiment id must match [A-Za-z0-9._:-]+ (at most %d characters)",
                             SB_STORE_EXPERIMENT_ID_MAX);
    if (check_status(x->status, err) != SB_OK)
        return err->code;
    if (x->nvariants == 0 || x->nvariants > SB_STORE_EXPERIMENT_MAX_VARIANTS)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "variants",
                             "an experiment needs 1 to %d variants",
                             SB_STORE_EXPERIMENT_MAX_VARIANTS);
    for (size_t i = 0; i < x->nvariants; i++) {
        if (check_variant(x, i, err) != SB_OK)
            return err->code;
        /* Bounded so that the sum of at most 16 weights cannot overflow. */
        if (x->variants[i].weight > INT64_MAX / SB_STORE_EXPERIMENT_MAX_VARIANTS)
            return sb_fail_field(err, SB_E_BAD_REQUEST, "variants",
                                 "variants[%zu].weight is too large", i);
        total += x->variants[i].weight;
    }
    if (total <= 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "variants",
                             "at least one variant needs a positive weight");
    return SB_OK;
}

void sb__enc_variants(const struct sb_store_experiment *x, struct sb_buf *out)
{
    struct sb_jw w;
    sb_buf_reset(out);
    sb_jw_init(&w, out);
    sb_jw_arr_begin(&w);
    for (size_t i = 0; i < x->nvariants; i++) {
        sb_jw_obj_begin(&w);
        sb_jw_key(&w, "name");
        sb_jw_cstr(&w, x->variants[i].name);
        sb_jw_key(&w, "target");
        sb_jw_cstr(&w, x->variants[i].target);
        sb_jw_key(&w, "weight");
        sb_jw_int(&w, x->variants[i].weight);
        sb_jw_obj_end(&w);
    }
    sb_jw_arr_end(&w);
}

static sb_err dec_one(struct sb_arena *a, const struct sb_json *o, struct sb_store_variant *v,
                      struct sb_error *err)
{
    const struct sb_json *name = sb_json_get(o, "name"), *target = sb_json_get(o, "target");
    if (!sb_json_is_string(name) || !sb_json_is_string(target) ||
        !sb_json_int64(sb_json_get(o, "weight"), &v->weight))
        return sb_fail(err, SB_E_STORE, "column variants: a variant lacks name, target or weight");
    v->name = sb_arena_strndup(a, name->str.p, name->str.len);
    v->target = sb_arena_strndup(a, target->str.p, target->str.len);
    return SB_OK;
}

sb_err sb__dec_variants(struct sb_arena *a, const char *text, struct sb_store_experiment *x,
                        struct sb_error *err)
{
    struct sb_json *arr = NULL;
    x->variants = NULL;
    x->nvariants = 0;
    if (!text || !*text)
        return SB_OK;
    if (sb_json_parse(a, text, strlen(text), NULL, &arr, err) != SB_OK ||
        arr->type != SB_JSON_ARRAY)
        return sb_fail(err, SB_E_STORE, "column variants: not a JSON array");
    x->variants = sb_arena_calloc(a, (arr->count + 1) * sizeof(*x->variants));
    for (const struct sb_json *v = arr->child; v; v = v->next)
        if (dec_one(a, v, &x->variants[x->nvariants++], err) != SB_OK)
            return err->code;
    return SB_OK;
}
