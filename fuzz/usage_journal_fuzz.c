/* SPDX-License-Identifier: MIT */
/*
 * usage_journal_fuzz.c - libFuzzer target for the usage journal's record
 * parser (store/usage_journal.h).
 *
 * The input is a run of bytes as a journal file holds them after its
 * header. Parsing must not crash or read out of bounds; walking the input
 * as a reader does (a record, or one byte of resync) must terminate; an
 * accepted record re-encodes to exactly its own bytes (one encoding per
 * record), and its strings are NUL-terminated within their fields. The
 * header parser gets the raw input as well.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/usage_journal.h"

static void check_usage(const struct sb_usage *u)
{
    assert(memchr(u->request_id, 0, sizeof(u->request_id)));
    assert(memchr(u->model, 0, sizeof(u->model)));
    assert(memchr(u->error_code, 0, sizeof(u->error_code)));
}

static void check_accepted(const uint8_t *p, size_t used, const struct sb_uj_rec *rec)
{
    struct sb_buf again;
    sb_buf_init(&again, 0);
    if (rec->type == SB_UJ_USAGE) {
        check_usage(&rec->usage);
        sb_uj_encode_usage(&again, &rec->usage);
    } else {
        assert(rec->type == SB_UJ_AUDIT);
        sb_uj_encode_audit(&again, &rec->audit);
    }
    assert(again.len == used && memcmp(again.p, p, used) == 0);
    sb_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t id[16];
    size_t off = 0;
    (void)sb_uj_parse_header(data, size, id);
    while (off < size) {
        struct sb_uj_rec rec;
        struct sb_error err = {0};
        size_t used = 0;
        sb_err rc = sb_uj_parse(data + off, size - off, &rec, &used, &err);
        if (rc == SB_OK) {
            assert(used >= SB_UJ_REC_HEAD && used <= size - off);
            check_accepted(data + off, used, &rec);
            free(rec.block);
            off += used;
        } else {
            assert(rc == SB_AGAIN || (rc == SB_E_BAD_REQUEST && err.msg[0]));
            off++; /* resync, as the file reader does */
        }
    }
    return 0;
}
