/* SPDX-License-Identifier: MIT */
/*
 * spool_test.c - request bodies in unlinked files: bytes in, the same bytes
 * out of the map, of pread and of the pieces that lie in the map; pages
 * dropped and read back; every descriptor closed; a write error reported.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_in_map_and_pieces),
        cmocka_unit_test(empty_body),
        cmocka_unit_test(errors_name_the_cause),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
