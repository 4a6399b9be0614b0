/* SPDX-License-Identifier: MIT */
/*
 * config_fuzz.c - libFuzzer target for the config file reader.
 *
 * The input is the whole YAML file, parsed through sb_config_parse (the
 * same path as sb_config_load after reading the file). It must never
 * crash, leak or accept a config that breaks the invariants the rest of
 * the program relies on; those invariants are checked on every success.
 * Seeds: fuzz/corpus/config/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/config.h"

static void check(const struct sb_config *c)
{
    const struct sb_store_entities *e = &c->system;
    if (!c->listen || !c->database || !strchr(c->listen, ':'))
        abort();
    for (size_t i = 0; i < e->nproviders; i++) {
        const struct sb_store_provider *p = &e->providers[i];
        if (!p->id || !p->type || !p->base_url || !p->name || !p->auth_method ||
            !sb_config_type_find(sb_slice_cstr(p->type)))
            abort();
        /* Credentials are references, never literals. */
        const char *refs[] = {p->api_key, p->aws_access_key_id, p->aws_secret_access_key,
                              p->aws_session_token};
        for (size_t k = 0; k < 4; k++)
            if (refs[k] && strncmp(refs[k], "env:", 4) != 0 && strncmp(refs[k], "file:", 5) != 0)
                abort();
    }
    for (size_t i = 0; i < e->nmodels; i++)
        if (!e->models[i].id || !e->models[i].provider || !e->models[i].upstream_model)
            abort();
    for (size_t i = 0; i < e->nroutes; i++)
        if (!e->routes[i].id || !e->routes[i].strategy || e->routes[i].ntargets == 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_config *c = NULL;
    struct sb_error err;
    if (sb_config_parse("fuzz.yaml", (const char *)data, size, &c, &err) == SB_OK) {
        check(c);
        sb_config_free(c);
    } else if (c || err.code != SB_E_CONFIG || err.msg[0] == '\0') {
        abort();
    }
    return 0;
}
