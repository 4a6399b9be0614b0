/* SPDX-License-Identifier: MIT */
/*
 * templates_test.c - every built-in template is valid data: its options
 * make a valid provider and each of its models a valid model entry, by the
 * config file's own key tables (what apply will run them through).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "registry/templates.h"
#include "core/json.h"
#include "core/buf.h"
#include "registry/config.h"

static void check_model(struct sb_arena *a, const struct sb_json *m, const char *tid)
{
    struct sb_buf b;
    struct sb_json *doc = NULL;
    struct sb_json_limits lim = {0};
    struct sb_store_model sm;
    struct sb_error err = {0};
    sb_buf_init(&b, 0);
    sb_buf_printf(&b, "{\"provider\":\"p\",%.*s", (int)(m->raw.len - 1), m->raw.p + 1);
    const char *text = sb_arena_strndup(a, b.p, b.len);
    sb_buf_free(&b);
    assert_int_equal(sb_json_parse(a, text, strlen(text), &lim, &doc, &err), SB_OK);
    if (sb_config_entry_from_json(a, SB_CONFIG_MODEL, doc, &sm, NULL, &err) != SB_OK)
        fail_msg("template %s: %s", tid, err.msg);
}

static void test_builtins_valid(void **state)
{
    (void)state;
    assert_true(sb_templates_nbuiltin >= 8);
    for (size_t i = 0; i < sb_templates_nbuiltin; i++) {
        const struct sb_store_template *t = &sb_templates_builtin[i];
        struct sb_arena *a = sb_arena_create(4096);
        struct sb_json *models = NULL;
        struct sb_json_limits lim = {0};
        struct sb_error err = {0};
        assert_non_null(sb_config_type_find(sb_slice_cstr(t->type)));
        assert_int_equal(sb_json_parse(a, t->models, strlen(t->models), &lim, &models, &err),
                         SB_OK);
        assert_int_equal(models->type, SB_JSON_ARRAY);
        for (const struct sb_json *m = models->child; m; m = m->next)
            check_model(a, m, t->id);
        for (size_t k = 0; k < i; k++) /* ids are unique */
            assert_string_not_equal(t->id, sb_templates_builtin[k].id);
        sb_arena_free(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_builtins_valid)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
