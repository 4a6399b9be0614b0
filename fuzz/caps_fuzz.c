/* SPDX-License-Identifier: MIT */
/*
 * caps_fuzz.c - libFuzzer target for the capability checks and the
 * prompt-token estimate (gateway/caps.h) over any JSON a client may send.
 *
 * The input is a JSON document (both front doors' bodies reach these
 * functions parsed). The estimate must never be negative and must not shrink
 * when the body is counted against a declared model; the checks must answer
 * SB_OK or SB_E_BAD_REQUEST with a message, a field and an api_code, for a
 * model that declares nothing, one that declares everything but embeddings,
 * and one with a tiny context length.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/json.h"
#include "gateway/caps.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sb_provider p = {.id = "p"};
    const struct sb_model models[] = {
        {.id = "unknown", .provider = &p, .caps = SB_CAP_STREAMING},
        {.id = "declared",
         .provider = &p,
         .caps = SB_CAP_DECLARED | SB_CAP_TOOLS | SB_CAP_VISION | SB_CAP_JSON_MODE},
        {.id = "tiny", .provider = &p, .caps = SB_CAP_DECLARED, .context_length = 3},
    };
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    struct sb_json *j;
    struct sb_error err;
    if (sb_json_parse(a, (const char *)data, size, &lim, &j, &err) == SB_OK) {
        CHECK(sb_token_estimate(j) >= 0);
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
            for (int op = SB_OP_CHAT; op <= SB_OP_EMBEDDINGS; op++) {
                struct sb_error e = {0};
                sb_err rc = sb_caps_check(&models[i], (enum sb_op)op, j, -1, &e);
                CHECK(rc == SB_OK ||
                      (rc == SB_E_BAD_REQUEST && e.msg[0] && e.field[0] && e.api_code[0]));
                CHECK(i != 0 || rc == SB_OK); /* unknown capabilities refuse nothing */
            }
        }
    }
    sb_arena_free(a);
    return 0;
}
