/* SPDX-License-Identifier: MIT */
/*
 * when_fuzz.c - libFuzzer target for the control plane's time parser
 * (src/api/when.c: expires_at, audit from/to).
 *
 * Any input either fails with SB_E_BAD_REQUEST and *ms = 0, or succeeds with
 * a time in [0, 9999-12-31T23:59:59.999Z + 1 day] (a zone offset may carry
 * the last day past midnight) or a Unix-ms number; and a success written
 * back as ISO-8601 (sb__api_iso) parses to the same millisecond. Seeds:
 * fuzz/corpus/when/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_ISO_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_error err = {0};
    int64_t ms = -1;
    sb_err rc = sb__api_parse_time((struct sb_slice){(const char *)data, size}, &ms, &err);
    if (rc != SB_OK) {
        CHECK(rc == SB_E_BAD_REQUEST && ms == 0);
        return 0;
    }
    CHECK(ms >= 0);
    bool digits_only = size > 0;
    for (size_t i = 0; i < size; i++)
        digits_only = digits_only && data[i] >= '0' && data[i] <= '9';
    CHECK(digits_only || ms <= MAX_ISO_MS + 86400000LL);
    if (ms <= MAX_ISO_MS) {
        char iso[32];
        int64_t back = -1;
        sb__api_iso(ms, iso);
        CHECK(sb__api_parse_time(sb_slice_cstr(iso), &back, &err) == SB_OK);
        CHECK(back == ms);
    }
    return 0;
}
