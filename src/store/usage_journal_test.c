/* SPDX-License-Identifier: MIT */
/*
 * usage_journal_test.c - the spill journal's format and file: every field
 * of a usage row and an audit record survives encode and parse; damaged,
 * short and non-canonical records are refused or reported as incomplete;
 * the file is created 0600, a torn tail is cut off at open, a damaged
 * region in the middle is skipped with the records after it kept, and a
 * file shorter than its header is removed.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/usage_journal.h"

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/sb-uj-XXXXXX");
    close(mkstemp(path));
    unlink(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void fill(struct sb_usage *u, int i)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "req-%d", i);
    snprintf(u->user_id, sizeof(u->user_id), "user-%d", i % 3);
    snprintf(u->key_id, sizeof(u->key_id), "%d", 100 + i);
    snprintf(u->route, sizeof(u->route), "route-%d", i % 5);
    snprintf(u->provider, sizeof(u->provider), "prov");
    memset(u->model, 'm', sizeof(u->model) - 1); /* the longest a model can be */
    snprintf(u->variant, sizeof(u->variant), "B");
    snprintf(u->status, sizeof(u->status), "error");
    snprintf(u->error_code, sizeof(u->error_code), "upstream_timeout");
    u->ts_ms = 1700000000000LL + i;
    u->http_status = 504;
    u->prompt_tokens = -1;
    u->completion_tokens = 1234567890123LL;
    u->cost_usd = 0.000125;
    u->latency_ms = 12.5;
    u->ttft_ms = -1;
    u->streamed = true;
    u->fallbacks = 2;
}

static void test_usage_round_trip(void **state)
{
    struct sb_usage u, back;
    struct sb_uj_rec rec;
    struct sb_error err = {0};
    struct sb_buf b;
    size_t used = 0;
    (void)state;
    sb_buf_init(&b, 0);
    fill(&u, 7);
    sb_uj_encode_usage(&b, &u);
    assert_int_equal(sb_uj_parse((const uint8_t *)b.p, b.len, &rec, &used, &err), SB_OK);
    assert_int_equal(used, b.len);
    assert_int_equal(rec.type, SB_UJ_USAGE);
    assert_null(rec.block);
    back = rec.usage;
    assert_string_equal(back.route, "route-2");
    assert_string_equal(back.variant, "B");
    assert_string_equal(back.key_id, "107");
    assert_string_equal(back.user_id, "user-1");
    assert_string_equal(back.error_code, "upstream_timeout");
    assert_int_equal(strlen(back.model), sizeof(back.model) - 1);
    assert_int_equal(back.fallbacks, 2);
    assert_int_equal(back.completion_tokens, 1234567890123LL);
    assert_true(back.cost_usd == 0.000125 && back.ttft_ms == -1 && back.streamed);
    /* every byte of the struct that carries data is the same */
    fill(&u, 7);
    assert_memory_equal(&u.request_id, &back.request_id, sizeof(u.request_id));
    assert_memory_equal(&u.model, &back.model, sizeof(u.model));
    /* every proper prefix is "incomplete", never a record */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(sb_uj_parse((const uint8_t *)b.p, n, &rec, &used, &err), SB_AGAIN);
    sb_buf_free(&b);
}

static void test_audit_round_trip(void **state)
{
    struct sb_audit a = {.ts_ms = 42,
                         .actor = "alice",
                         .action = "key.create",
                         .target_id = "",
                         .before = "{\"a\":1}",
                         .outcome = "ok"};
    struct sb_uj_rec rec;
    struct sb_error err = {0};
    struct sb_buf b;
    size_t used = 0;
    (void)state;
    sb_buf_init(&b, 0);
    sb_uj_encode_audit(&b, &a);
    assert_int_equal(sb_uj_parse((const uint8_t *)b.p, b.len, &rec, &used, &err), SB_OK);
    assert_int_equal(rec.type, SB_UJ_AUDIT);
    assert_int_equal(rec.audit.ts_ms, 42);
    assert_string_equal(rec.audit.actor, "alice");
    assert_string_equal(rec.audit.action, "key.create");
    assert_string_equal(rec.audit.target_id, "");
    assert_string_equal(rec.audit.before, "{\"a\":1}");
    assert_null(rec.audit.actor_role); /* NULL stays NULL, "" stays "" */
    assert_null(rec.audit.after);
    assert_null(rec.audit.ip);
    free(rec.block);
    sb_buf_free(&b);
}

/* Frames payload p[0..n) as the writer would (valid magic, length and CRC). */
static void framed(struct sb_buf *b, const uint8_t *p, uint32_t n)
{
    uint8_t h[12] = {'S', 'B', 'U', 'R'};
    for (int i = 0; i < 4; i++)
        h[4 + i] = (uint8_t)(n >> (8 * i));
    uint32_t crc = sb_uj_crc32(sb_uj_crc32(0, h + 4, 4), p, n);
    for (int i = 0; i < 4; i++)
        h[8 + i] = (uint8_t)(crc >> (8 * i));
    sb_buf_reset(b);
    sb_buf_append(b, h, 12);
    sb_buf_append(b, p, n);
}

static void test_refused(void **state)
{
    struct sb_usage u;
    struct sb_uj_rec rec;
    struct sb_error err = {0};
    struct sb_buf b, bad;
    size_t used = 0;
    (void)state;
    assert_int_equal(sb_uj_crc32(0, "123456789", 9), 0xcbf43926u); /* the standard check value */
    sb_buf_init(&b, 0);
    sb_buf_init(&bad, 0);
    fill(&u, 1);
    sb_uj_encode_usage(&b, &u);
    const uint8_t *p = (const uint8_t *)b.p;
    for (size_t i = 0; i < b.len; i++) { /* any flipped bit is caught */
        sb_buf_reset(&bad);
        sb_buf_append(&bad, b.p, b.len);
        bad.p[i] ^= 0x10;
        sb_err rc = sb_uj_parse((const uint8_t *)bad.p, bad.len, &rec, &used, &err);
        assert_true(rc == SB_E_BAD_REQUEST || rc == SB_AGAIN);
    }
    /* well framed but not canonical: a trailing byte, a NUL in a string, a bad type */
    uint8_t pl[1024];
    size_t n = b.len - 12;
    memcpy(pl, p + 12, n);
    pl[n] = 0;
    framed(&bad, pl, (uint32_t)n + 1);
    assert_int_equal(sb_uj_parse((const uint8_t *)bad.p, bad.len, &rec, &used, &err),
                     SB_E_BAD_REQUEST);
    memcpy(pl, p + 12, n);
    pl[3] = 0; /* inside request_id "req-1" */
    framed(&bad, pl, (uint32_t)n);
    assert_int_equal(sb_uj_parse((const uint8_t *)bad.p, bad.len, &rec, &used, &err),
                     SB_E_BAD_REQUEST);
    pl[0] = 9;
    framed(&bad, pl, (uint32_t)n);
    assert_int_equal(sb_uj_parse((const uint8_t *)bad.p, bad.len, &rec, &used, &err),
                     SB_E_BAD_REQUEST);
    assert_int_equal(sb_uj_parse((const uint8_t *)"XBUR", 4, &rec, &used, &err), SB_E_BAD_REQUEST);
    sb_buf_free(&b);
    sb_buf_free(&bad);
}

static struct sb_uj *open_j(void)
{
    struct sb_uj *j = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_uj_open(path, &j, &err), SB_OK);
    return j;
}

/* Appends rows first..first+n-1, one append each. */
static void append_rows(struct sb_uj *j, int first, int n)
{
    struct sb_error err = {0};
    struct sb_usage u;
    struct sb_buf b;
    sb_buf_init(&b, 0);
    for (int i = first; i < first + n; i++) {
        sb_buf_reset(&b);
        fill(&u, i);
        sb_uj_encode_usage(&b, &u);
        assert_int_equal(sb_uj_append(j, b.p, b.len, 1, &err), SB_OK);
    }
    assert_int_equal(sb_uj_sync(j, &err), SB_OK);
    sb_buf_free(&b);
}

/* Reads every record; returns how many, checks they are req-<first..>, counts skips. */
static int read_all(struct sb_uj *j, uint64_t *skipped)
{
    struct sb_uj_rec recs[16];
    uint64_t ends[16], next = 0;
    struct sb_error err = {0};
    size_t n = 0;
    int total = 0;
    *skipped = 0;
    for (;;) {
        assert_int_equal(sb_uj_read(j, recs, 16, &n, ends, &next, skipped, &err), SB_OK);
        sb_uj_done(j, next, n);
        if (n == 0)
            break;
        total += (int)n;
    }
    return total;
}

static off_t file_size(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_file_torn_tail(void **state)
{
    uint64_t recs = 0, bytes = 0, skipped = 0;
    struct stat st;
    (void)state;
    struct sb_uj *j = open_j();
    assert_int_equal(file_size(), -1); /* created at the first append */
    append_rows(j, 0, 10);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    sb_uj_pending(j, &recs, &bytes);
    assert_int_equal(recs, 10);
    assert_int_equal(bytes, (uint64_t)file_size() - SB_UJ_HEADER);
    off_t whole = file_size();
    sb_uj_close(j);
    /* a crash in the middle of the 11th append: half a record at the end */
    FILE *f = fopen(path, "ab");
    struct sb_usage u;
    struct sb_buf b;
    sb_buf_init(&b, 0);
    fill(&u, 10);
    sb_uj_encode_usage(&b, &u);
    fwrite(b.p, 1, b.len / 2, f);
    fclose(f);
    assert_true(file_size() > whole);
    j = open_j();
    assert_int_equal(file_size(), whole); /* cut back to the last whole record */
    sb_uj_pending(j, &recs, &bytes);
    assert_int_equal(recs, 10);
    append_rows(j, 10, 5); /* appends continue on a clean boundary */
    assert_int_equal(read_all(j, &skipped), 15);
    assert_int_equal(skipped, 0);
    assert_true(sb_uj_remove_if_done(j));
    assert_int_equal(file_size(), -1);
    sb_uj_close(j);
    sb_buf_free(&b);
}

static void test_file_damage_in_middle(void **state)
{
    uint64_t skipped = 0;
    char mark[64];
    (void)state;
    struct sb_uj *j = open_j();
    append_rows(j, 0, 20);
    off_t size = file_size();
    sb_uj_close(j);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    /* flip one byte inside a record near the middle */
    unsigned char c = 0;
    assert_int_equal(pread(fd, &c, 1, size / 2), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, size / 2), 1);
    close(fd);
    j = open_j();
    assert_int_equal(file_size(), size); /* not a tail: kept */
    assert_int_equal(read_all(j, &skipped), 19);
    assert_int_equal(skipped, 1);
    sb_uj_mark(j, 1234, mark);
    assert_int_equal(strlen(mark), 32 + 1 + 4);
    assert_int_equal(sb_uj_mark_offset(j, mark), 1234);
    mark[0] = mark[0] == 'a' ? 'b' : 'a'; /* another journal's mark */
    assert_int_equal(sb_uj_mark_offset(j, mark), 0);
    assert_int_equal(sb_uj_mark_offset(j, NULL), 0);
    sb_uj_close(j);
}

static void test_file_short_header(void **state)
{
    uint64_t recs = 0, bytes = 0;
    (void)state;
    FILE *f = fopen(path, "wb");
    fwrite("SBUSAGE1abc", 1, 11, f);
    fclose(f);
    struct sb_uj *j = open_j();
    assert_int_equal(file_size(), -1); /* torn at creation: removed */
    sb_uj_pending(j, &recs, &bytes);
    assert_int_equal(recs + bytes, 0);
    sb_uj_close(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_round_trip),
        cmocka_unit_test(test_audit_round_trip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test_setup_teardown(test_file_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_damage_in_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_short_header, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
