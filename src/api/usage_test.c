/* SPDX-License-Identifier: MIT */
/*
 * usage_test.c - GET /api/usage above the store: the handler called as the
 * dispatcher calls it (a struct sb_api_call with a query string and an
 * actor) over a real SQLite file. Checks the window, every refusal
 * (unknown, repeated or badly encoded parameters, bad values), the rule that
 * a user or developer reads only their own rows, and the JSON and CSV
 * answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"
#include <jansson.h>

#include "api/internal.h"
#include "store/usage.h"

static char path[64];
static struct sb_api API;
static struct sb_api_call C;
static json_t *J; /* the last JSON answer */

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define HOUR 3600000LL

static void add_rows(void)
{
    static const struct {
        int64_t dt;
        const char *user, *model, *status;
        double latency, ttft;
    } rows[] = {
        {0, "alice", "m1", "ok", 100, -1},
        {1, "alice", "m2", "error", 200, 20},
        {HOUR, "bob", "m1", "ok", 300, 30},
        {HOUR + 1, "", "m,\"x\"", "ok", 400, -1},
        {2 * HOUR, "bob", "=cmd", "cancelled", 500, -1},
    };
    struct sb_usage u[5];
    struct sb_error err = {0};
    memset(u, 0, sizeof(u));
    for (size_t i = 0; i < 5; i++) {
        snprintf(u[i].request_id, sizeof(u[i].request_id), "r%zu", i);
        u[i].ts_ms = T0 + rows[i].dt;
        snprintf(u[i].user_id, sizeof(u[i].user_id), "%s", rows[i].user);
        snprintf(u[i].provider, sizeof(u[i].provider), "fake");
        snprintf(u[i].model, sizeof(u[i].model), "%s", rows[i].model);
        snprintf(u[i].status, sizeof(u[i].status), "%s", rows[i].status);
        u[i].latency_ms = rows[i].latency;
        u[i].ttft_ms = rows[i].ttft;
        u[i].streamed = rows[i].ttft >= 0;
        u[i].prompt_tokens = 10;
        u[i].completion_tokens = 5;
        u[i].cost_usd = 0.5;
    }
    if (sb_store_insert_usage(API.store, u, 5, &err) != SB_OK)
        fail_msg("%s", err.msg);
}

static int setup(void **state)
{
    char url[80];
    struct sb_error err = {0};
    (void)state;
    sbt_db_new("usage-api", path, url);
    memset(&API, 0, sizeof(API));
    if (sb_store_open(url, &API.store, &err) != SB_OK || sb_store_migrate(API.store, &err) != SB_OK)
        fail_msg("%s", err.msg);
    add_rows();
    J = NULL;
    return 0;
}

static void call_end(void)
{
    json_decref(J);
    J = NULL;
    sb_buf_free(&C.out);
    sb_arena_free(C.arena);
    memset(&C, 0, sizeof(C));
}

static int teardown(void **state)
{
    (void)state;
    call_end();
    sb_store_close(API.store);
    sbt_db_remove(path);
    return 0;
}

/* Runs GET /api/usage?query as (name, role); returns the handler's result. */
static sb_err get(const char *query, const char *name, unsigned role)
{
    call_end();
    C.api = &API;
    C.arena = sb_arena_create(4096);
    C.query = sb_slice_cstr(query);
    C.request_id = "test";
    snprintf(C.actor.name, sizeof(C.actor.name), "%s", name);
    C.actor.role = role;
    sb_buf_init(&C.out, 0);
    sb_jw_init(&C.jw, &C.out);
    sb_err rc = sb__api_usage(&C);
    if (rc == SB_OK && !C.content_type)
        J = json_loadb(C.out.p, C.out.len, 0, NULL);
    return rc;
}

static sb_err admin(const char *query)
{
    return get(query, "admin-token", SB_ROLE_ADMIN);
}

/* data[i][key] of the last JSON answer. */
static json_t *at(size_t i, const char *key)
{
    json_t *row = json_array_get(json_object_get(J, "data"), i);
    assert_non_null(row);
    return json_object_get(row, key);
}

#define W "from=2026-01-01T00:00:00Z&to=2026-01-02"

/* from/to through the handler: Unix ms and ISO-8601 (when.c) name the same window. */
static void test_window(void **state)
{
    static const char *const same[] = {
        "from=1767225600000&to=1767312000000",
        "from=2026-01-01&to=2026-01-02",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00.000Z",
        "from=2026-01-01T02:00:00%2B02:00&to=2026-01-01T19:00:00-05:00",
        "from=2025-12-31T23:00:00-0100&to=2026-01-02t00:00z",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        if (admin(same[i]) != SB_OK)
            fail_msg("%s: %s", same[i], C.err.msg);
        assert_string_equal(json_string_value(json_object_get(J, "from")),
                            "2026-01-01T00:00:00.000Z");
        assert_string_equal(json_string_value(json_object_get(J, "to")),
                            "2026-01-02T00:00:00.000Z");
        assert_int_equal(json_integer_value(at(0, "requests")), 5);
    }
    /* [from, to): the row at T0 + 1 ms is out of [T0 + 1, ...) no more than in. */
    assert_int_equal(admin("from=1767225600001&to=1767225600002"), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 1);
    assert_int_equal(admin("from=1767225600000&to=1767225600001"), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 1);
    /* Only `to`: the 24 hours before it. */
    assert_int_equal(admin("to=2026-01-01T03:00:00Z"), SB_OK);
    assert_string_equal(json_string_value(json_object_get(J, "from")), "2025-12-31T03:00:00.000Z");
    assert_int_equal(json_integer_value(at(0, "requests")), 5);
    /* An unencoded '+' arrives as a space: refused, and told why. */
    assert_int_equal(admin("from=2026-01-01T02:00:00+02:00"), SB_E_BAD_REQUEST);
    assert_string_equal(C.err.field, "from");
    assert_non_null(strstr(C.err.msg, "%2B"));
    assert_int_equal(admin("to=253402300800000"), SB_E_BAD_REQUEST);
    assert_string_equal(C.err.field, "to");
}

static void test_refusals(void **state)
{
    static const struct {
        const char *query;
        sb_err code;
        const char *field; /* "" = none */
    } cases[] = {
        {"frm=1", SB_E_BAD_REQUEST, ""},
        {"model=a&model=b", SB_E_BAD_REQUEST, "model"},
        {"model=%zz", SB_E_BAD_REQUEST, "model"},
        {"model=", SB_E_BAD_REQUEST, "model"},
        {"from=yesterday", SB_E_BAD_REQUEST, "from"},
        {"to=2026-02-30", SB_E_BAD_REQUEST, "to"},
        {"from=2026-01-02&to=2026-01-01", SB_E_BAD_REQUEST, "from"},
        {"group_by=week", SB_E_BAD_REQUEST, "group_by"},
        {"status=failed", SB_E_BAD_REQUEST, "status"},
        {"format=xml", SB_E_BAD_REQUEST, "format"},
        {"limit=0", SB_E_BAD_REQUEST, "limit"},
        {"limit=10001", SB_E_BAD_REQUEST, "limit"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sb_err rc = admin(cases[i].query);
        if (rc != cases[i].code || strcmp(C.err.field, cases[i].field) != 0)
            fail_msg("%s: got %d field '%s' (%s)", cases[i].query, rc, C.err.field, C.err.msg);
    }
    assert_int_equal(admin("frm=1"), SB_E_BAD_REQUEST);
    assert_non_null(strstr(C.err.msg, "unknown parameter 'frm'"));
}

static void test_admin_json(void **state)
{
    (void)state;
    assert_int_equal(admin(W "&group_by=user"), SB_OK);
    assert_non_null(J);
    assert_string_equal(json_string_value(json_object_get(J, "from")), "2026-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(J, "group_by")), "user");
    assert_int_equal(json_integer_value(json_object_get(J, "rows")), 5);
    assert_true(json_is_false(json_object_get(J, "truncated")));
    assert_int_equal(json_array_size(json_object_get(J, "data")), 3);
    assert_true(json_is_null(at(0, "group"))); /* the admin token's row */
    assert_string_equal(json_string_value(at(1, "group")), "alice");
    assert_int_equal(json_integer_value(at(1, "requests")), 2);
    assert_int_equal(json_integer_value(at(1, "errors")), 1);
    assert_true(json_real_value(at(1, "error_rate")) == 0.5);
    assert_true(json_number_value(at(1, "latency_p50_ms")) == 100);
    assert_true(json_number_value(at(1, "latency_p99_ms")) == 200);
    assert_true(json_number_value(at(1, "ttft_p95_ms")) == 20);
    assert_true(json_is_null(at(0, "ttft_p50_ms"))); /* nothing streamed */
    assert_string_equal(json_string_value(at(1, "last_ts")), "2026-01-01T00:00:00.001Z");
    assert_int_equal(json_integer_value(at(2, "cancelled")), 1);
    /* Time buckets are ISO times; an empty window is one null-latency row. */
    assert_int_equal(admin(W "&group_by=hour"), SB_OK);
    assert_string_equal(json_string_value(at(1, "group")), "2026-01-01T01:00:00.000Z");
    assert_int_equal(admin("from=2025-01-01&to=2025-01-02"), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 0);
    assert_true(json_is_null(at(0, "latency_p50_ms")));
    assert_true(json_is_null(at(0, "first_ts")));
    /* A bounded number of groups says so. */
    assert_int_equal(admin(W "&group_by=model&limit=2"), SB_OK);
    assert_true(json_is_true(json_object_get(J, "truncated")));
    assert_non_null(strstr(json_string_value(json_object_get(J, "note")), "more than 2 groups"));
    assert_int_equal(json_array_size(json_object_get(J, "data")), 2);
}

static void test_own_rows(void **state)
{
    (void)state;
    /* A user sees their own rows, whatever they group by. */
    assert_int_equal(get(W "&group_by=user", "bob", SB_ROLE_USER), SB_OK);
    assert_int_equal(json_array_size(json_object_get(J, "data")), 1);
    assert_string_equal(json_string_value(at(0, "group")), "bob");
    assert_int_equal(json_integer_value(json_object_get(J, "rows")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(J, "filters"), "user")),
                        "bob");
    assert_int_equal(get(W "&user=bob", "bob", SB_ROLE_USER), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 2);
    /* ... and asking for someone else's is refused, for developers too. */
    assert_int_equal(get(W "&user=alice", "bob", SB_ROLE_USER), SB_E_FORBIDDEN);
    assert_string_equal(C.err.field, "user");
    assert_int_equal(get(W "&user=bob", "alice", SB_ROLE_DEVELOPER), SB_E_FORBIDDEN);
    assert_int_equal(get(W, "alice", SB_ROLE_DEVELOPER), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 2);
    /* A user with no usage sees zeros, not everyone's. */
    assert_int_equal(get(W, "carol", SB_ROLE_USER), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 0);
    /* An admin session reads anyone's. */
    assert_int_equal(get(W "&user=alice", "root", SB_ROLE_ADMIN), SB_OK);
    assert_int_equal(json_integer_value(at(0, "requests")), 2);
}

static void test_csv(void **state)
{
    (void)state;
    assert_int_equal(admin(W "&group_by=model&format=csv"), SB_OK);
    assert_string_equal(C.content_type, "text/csv; charset=utf-8");
    const char *want =
        "model,requests,errors,cancelled,error_rate,latency_p50_ms,latency_p95_ms,"
        "latency_p99_ms,streamed,ttft_p50_ms,ttft_p95_ms,prompt_tokens,completion_tokens,"
        "cost_usd,first_ts,last_ts\r\n"
        "'=cmd,1,0,1,0,500,500,500,0,,,10,5,0.5,2026-01-01T02:00:00.000Z,"
        "2026-01-01T02:00:00.000Z\r\n"
        "\"m,\"\"x\"\"\",1,0,0,0,400,400,400,0,,,10,5,0.5,2026-01-01T01:00:00.001Z,"
        "2026-01-01T01:00:00.001Z\r\n" /* byte order: ',' sorts before '1' */
        "m1,2,0,0,0,100,300,300,1,30,30,20,10,1,2026-01-01T00:00:00.000Z,"
        "2026-01-01T01:00:00.000Z\r\n"
        "m2,1,1,0,1,200,200,200,1,20,20,10,5,0.5,2026-01-01T00:00:00.001Z,"
        "2026-01-01T00:00:00.001Z\r\n";
    assert_int_equal(C.out.len, strlen(want));
    assert_memory_equal(C.out.p, want, C.out.len);
    assert_int_equal(C.nextra, 1);
    assert_true(sb_slice_eq_cstr(C.extra[0].name, "content-disposition"));
    /* The total: the header names the column "group". */
    assert_int_equal(admin(W "&format=csv&limit=1&group_by=day"), SB_OK);
    assert_true(strncmp(C.out.p, "day,requests,", 13) == 0);
    assert_non_null(strstr(C.out.p, "\r\n2026-01-01T00:00:00.000Z,5,1,1,0.2,"));
    assert_int_equal(admin(W "&format=csv&group_by=hour&limit=1"), SB_OK);
    assert_int_equal(C.nextra, 2);
    assert_true(sb_slice_eq_cstr(C.extra[1].name, "x-switchboard-truncated"));
    assert_int_equal(admin(W "&format=csv"), SB_OK);
    assert_true(strncmp(C.out.p, "group,requests,", 15) == 0);
    assert_non_null(strstr(C.out.p, "\r\n,5,1,1,0.2,300,500,500,2,20,30,"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_window), T(test_refusals), T(test_admin_json), T(test_own_rows), T(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
