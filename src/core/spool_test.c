/* SPDX-License-Identifier: MIT */
/*
 * spool_test.c - request bodies in unlinked files: bytes in, the same bytes
 * out of the map, of pread and of the pieces that lie in the map; pages
 * dropped and read back; every descriptor closed; a write error reported;
 * a pool's files reused for shorter and longer bodies within its bounds.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fd_testlib.h"

#include "core/spool.h"

static char dir[] = "/tmp/sb-spool-test-XXXXXX";

/* Nothing is left in the directory: the file never had a name (or lost it at once). */
static int dir_entries(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void bytes_in_map_and_pieces(void **state)
{
    int before = sbt_open_fds();
    struct sb_spool *s;
    struct sb_error err = {0};
    assert_int_equal(sb_spool_create(dir, &s, &err), SB_OK);
    assert_int_equal(dir_entries(), 0);
    size_t n = 3 * 1024 * 1024 + 17; /* pages and a ragged end */
    char *src = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (char)(i * 131 + 7);
    for (size_t at = 0; at < n; at += 65536) /* as reads arrive */
        assert_int_equal(sb_spool_write(s, src + at, n - at < 65536 ? n - at : 65536, &err), SB_OK);
    assert_int_equal(sb_spool_len(s), n);
    struct sb_slice body;
    assert_int_equal(sb_spool_map(s, &body, &err), SB_OK);
    assert_int_equal(body.len, n);
    assert_memory_equal(body.p, src, n);
    assert_int_equal(body.p[n], '\0'); /* as an sb_buf ends */
    assert_int_equal(sb_spool_len(s), n);

    /* Pieces: inside the map (with their offset), partly outside, elsewhere. */
    uint64_t off = 99;
    assert_true(sb_spool_holds(s, body.p, n, &off));
    assert_int_equal(off, 0);
    assert_true(sb_spool_holds(s, body.p + 1000, 5, &off));
    assert_int_equal(off, 1000);
    assert_true(sb_spool_holds(s, body.p + n, 0, &off));
    assert_false(sb_spool_holds(s, body.p + n - 2, 3, &off)); /* runs into the NUL */
    assert_false(sb_spool_holds(s, src, 10, &off));
    assert_false(sb_spool_holds(NULL, body.p, 10, &off));

    /* pread gives the same bytes; the end reads 0. */
    char buf[4096];
    assert_int_equal(sb_spool_read(s, buf, sizeof(buf), n - 100), 100);
    assert_memory_equal(buf, src + n - 100, 100);
    assert_int_equal(sb_spool_read(s, buf, sizeof(buf), n), 0);

    /* Dropping the pages loses nothing: reads fault them back from the file. */
    sb_spool_release(s);
    assert_memory_equal(body.p, src, n);
    sb_spool_release(s);
    sb_spool_release(NULL);

    sb_spool_free(s);
    sb_spool_free(NULL);
    free(src);
    assert_int_equal(sbt_open_fds(), before);
    assert_int_equal(dir_entries(), 0);
}

static void empty_body(void **state)
{
    struct sb_spool *s;
    struct sb_error err = {0};
    assert_int_equal(sb_spool_create(dir, &s, &err), SB_OK);
    struct sb_slice body;
    assert_int_equal(sb_spool_map(s, &body, &err), SB_OK);
    assert_int_equal(body.len, 0);
    assert_int_equal(body.p[0], '\0');
    sb_spool_free(s);
}

static void errors_name_the_cause(void **state)
{
    int before = sbt_open_fds();
    struct sb_spool *s = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_spool_create("/nonexistent/sb-spool", &s, &err), SB_E_IO);
    assert_null(s);
    assert_non_null(strstr(err.msg, "/nonexistent/sb-spool"));

    /* A file size limit fails write(2) with EFBIG, as a full disk fails with ENOSPC. */
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    small = (struct rlimit){.rlim_cur = 8192, .rlim_max = old.rlim_max};
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(sb_spool_create(dir, &s, &err), SB_OK);
    char page[4096] = {0};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    sb_err a = sb_spool_write(s, page, sizeof(page), &err);
    sb_err b = sb_spool_write(s, page, sizeof(page), &err);
    sb_err c = sb_spool_write(s, page, sizeof(page), &err);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_int_equal(a, SB_OK);
    assert_int_equal(b, SB_OK);
    assert_int_equal(c, SB_E_IO);
    assert_non_null(strstr(err.msg, "File too large"));
    sb_spool_free(s);
    assert_int_equal(sbt_open_fds(), before);
}

/* Writes n bytes of pattern k (in pieces) and maps them; the map must hold
 * exactly them, then a NUL. */
static struct sb_slice fill(struct sb_spool *s, size_t n, int k)
{
    struct sb_error err = {0};
    char *src = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        src[i] = (char)('a' + (i * (size_t)k) % 26);
    for (size_t at = 0; at < n; at += 65536)
        assert_int_equal(sb_spool_write(s, src + at, n - at < 65536 ? n - at : 65536, &err), SB_OK);
    struct sb_slice body;
    assert_int_equal(sb_spool_map(s, &body, &err), SB_OK);
    assert_int_equal(body.len, n);
    assert_memory_equal(body.p, src, n);
    assert_int_equal(body.p[n], '\0');
    free(src);
    return body;
}

static void pool_reuses_files(void **state)
{
    int before = sbt_open_fds();
    struct sb_spool_pool pool = {0};
    struct sb_spool *s, *t;
    struct sb_error err = {0};
    uint64_t off;
    char buf[64];
    /* A 200 KB body, then a shorter one in the same file: only the new
     * bytes show, in the map, in pread, in sb_spool_holds. */
    assert_int_equal(sb_spool_take(&pool, dir, &s, &err), SB_OK);
    fill(s, 200000, 7);
    sb_spool_give(&pool, s);
    assert_int_equal(pool.n, 1);
    assert_int_equal(sbt_open_fds(), before + 1);
    assert_int_equal(sb_spool_take(&pool, dir, &t, &err), SB_OK);
    assert_ptr_equal(t, s);
    assert_int_equal(pool.n, 0);
    assert_int_equal(sb_spool_len(t), 0);
    assert_false(sb_spool_holds(t, buf, 1, &off)); /* not mapped for this body yet */
    struct sb_slice b = fill(t, 5000, 3);
    assert_int_equal(sb_spool_read(t, buf, sizeof(buf), 4990), 10);
    assert_int_equal(sb_spool_read(t, buf, sizeof(buf), 5000),
                     0); /* the old body's bytes are not read */
    assert_true(sb_spool_holds(t, b.p, 5000, &off));
    assert_false(sb_spool_holds(t, b.p + 4999, 2, &off));
    sb_spool_release(t);
    assert_memory_equal(b.p, "adgjm", 5); /* faulted back from the file */
    sb_spool_give(&pool, t);
    /* A body larger than the file's map: mapped again, every byte right. */
    assert_int_equal(sb_spool_take(&pool, dir, &t, &err), SB_OK);
    fill(t, 700000, 11);
    sb_spool_give(&pool, t);
    assert_int_equal(pool.n, 1);
    /* A file over SB_SPOOL_POOL_FILE_BYTES is closed, not kept. */
    assert_int_equal(sb_spool_take(&pool, dir, &t, &err), SB_OK);
    fill(t, SB_SPOOL_POOL_FILE_BYTES + 1, 5);
    sb_spool_give(&pool, t);
    assert_int_equal(pool.n, 0);
    assert_int_equal(pool.bytes, 0);
    assert_int_equal(sbt_open_fds(), before);
    /* At most SB_SPOOL_POOL_FILES files, and SB_SPOOL_POOL_BYTES in all. */
    struct sb_spool *many[SB_SPOOL_POOL_FILES + 2];
    for (size_t i = 0; i < SB_SPOOL_POOL_FILES + 2; i++) {
        assert_int_equal(sb_spool_take(&pool, dir, &many[i], &err), SB_OK);
        fill(many[i], 100, 1);
    }
    for (size_t i = 0; i < SB_SPOOL_POOL_FILES + 2; i++)
        sb_spool_give(&pool, many[i]);
    assert_int_equal(pool.n, SB_SPOOL_POOL_FILES);
    assert_int_equal(sbt_open_fds(), before + SB_SPOOL_POOL_FILES);
    sb_spool_pool_free(&pool);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(sb_spool_take(&pool, dir, &many[i], &err), SB_OK);
        fill(many[i], SB_SPOOL_POOL_FILE_BYTES - 1, 2); /* with its NUL: the largest kept */
    }
    for (size_t i = 0; i < 20; i++)
        sb_spool_give(&pool, many[i]);
    assert_true(pool.bytes <= SB_SPOOL_POOL_BYTES);
    assert_int_equal(pool.n, SB_SPOOL_POOL_BYTES / SB_SPOOL_POOL_FILE_BYTES);
    sb_spool_pool_free(&pool);
    sb_spool_give(&pool, NULL);
    assert_int_equal(pool.n, 0);
    assert_int_equal(sbt_open_fds(), before);
    assert_int_equal(dir_entries(), 0);
}

static bool in_region(const struct sb_spool_pool *p, const char *q)
{
    return p->region && q >= p->region &&
           q < p->region + (size_t)SB_SPOOL_POOL_FILES * SB_SPOOL_POOL_FILE_BYTES;
}

/* The region has no hole: madvise fails with ENOMEM over unmapped addresses. */
static void region_whole(const struct sb_spool_pool *p)
{
    assert_int_equal(
        madvise(p->region, (size_t)SB_SPOOL_POOL_FILES * SB_SPOOL_POOL_FILE_BYTES, MADV_DONTNEED),
        0);
}

static void pool_maps_in_one_region(void **state)
{
    int before = sbt_open_fds();
    struct sb_spool_pool pool = {0};
    struct sb_spool *s[SB_SPOOL_POOL_FILES + 1], *big;
    struct sb_error err = {0};
    struct sb_slice b[SB_SPOOL_POOL_FILES + 1];
    /* Every file of the pool maps into a slot of its own; one more than
     * there are slots maps on its own, as does a body over a slot. */
    for (int i = 0; i <= SB_SPOOL_POOL_FILES; i++) {
        assert_int_equal(sb_spool_take(&pool, dir, &s[i], &err), SB_OK);
        b[i] = fill(s[i], 1000 + (size_t)i, i + 1);
    }
    for (int i = 0; i < SB_SPOOL_POOL_FILES; i++) {
        assert_true(in_region(&pool, b[i].p));
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(b[i].p, b[k].p);
    }
    assert_false(in_region(&pool, b[SB_SPOOL_POOL_FILES].p));
    assert_int_equal(sb_spool_take(&pool, dir, &big, &err), SB_OK);
    struct sb_slice bb = fill(big, SB_SPOOL_POOL_FILE_BYTES + 5, 3);
    assert_false(in_region(&pool, bb.p));
    /* A release waits for the sweep; the sweep drops every slot's pages, and
     * reads fault the right bytes back. */
    sb_spool_release(s[3]);
    assert_true(pool.dirty);
    sb_spool_pool_sweep(&pool);
    assert_false(pool.dirty);
    region_whole(&pool);
    for (int i = 0; i <= SB_SPOOL_POOL_FILES; i++)
        assert_int_equal(b[i].p[999], 'a' + (999 * (i + 1)) % 26);
    /* A file in use keeps the region when the pool is emptied; the last
     * one back lets it go. */
    sb_spool_give(&pool, s[0]);
    sb_spool_pool_free(&pool);
    assert_non_null(pool.region);
    region_whole(&pool);
    sb_spool_give(&pool, s[SB_SPOOL_POOL_FILES]); /* the one mapped on its own: last out */
    for (int i = 1; i < SB_SPOOL_POOL_FILES; i++)
        sb_spool_give(&pool, s[i]);
    sb_spool_give(&pool, big); /* over a pool's file size: closed */
    assert_int_equal(pool.n, SB_SPOOL_POOL_FILES);
    region_whole(&pool);
    /* Taken again, a file keeps its slot: nothing is mapped anew. */
    struct sb_spool *t;
    assert_int_equal(sb_spool_take(&pool, dir, &t, &err), SB_OK);
    struct sb_slice again = fill(t, 500, 9);
    assert_true(in_region(&pool, again.p));
    sb_spool_give(&pool, t);
    sb_spool_pool_free(&pool);
    assert_null(pool.region);
    assert_int_equal(pool.slots, 0);
    assert_int_equal(sbt_open_fds(), before);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_in_map_and_pieces), cmocka_unit_test(empty_body),
        cmocka_unit_test(errors_name_the_cause),   cmocka_unit_test(pool_reuses_files),
        cmocka_unit_test(pool_maps_in_one_region),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
