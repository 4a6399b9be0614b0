/* SPDX-License-Identifier: MIT */
/*
 * config_providers.c - the `providers:` entries of the config file and of
 * /api/providers bodies (DESIGN.md §3.2): their key table, the key pool's
 * rows, templates, and the checks of one entry.
 *
 * `types` (each adapter type and how it authenticates) is type knowledge
 * outside the adapters, a wart STYLE.md names; it came here unchanged from
 * config.c. Credentials stay references (env:NAME, file:PATH): the walker's
 * set_cred refuses anything else, and no message echoes one.
 *
 * Chapters: entry checks · key tables.
 */
#include <string.h>

#include "registry/config_int.h"
#include "registry/templates.h"

/* ---- entry checks ---- */

#define PROVIDER_ID_CHARS "abcdefghijklmnopqrstuvwxyz0123456789-"
#define KEY_LABEL_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_-"

static const struct sb_config_type types[] = {
    {"openai", "bearer", SB_AUTH_BEARER},   {"anthropic", "api_key", SB_AUTH_API_KEY},
    {"gemini", "api_key", SB_AUTH_API_KEY}, {"cohere", "bearer", SB_AUTH_BEARER},
    {"ollama", "bearer", SB_AUTH_BEARER},   {"huggingface", "bearer", SB_AUTH_BEARER},
    {"azure", "api_key", SB_AUTH_API_KEY},  {"bedrock", "aws_sigv4", SB_AUTH_SIGV4},
};
#define TYPE_NAMES "openai, anthropic, gemini, cohere, ollama, huggingface, azure, bedrock"

const struct sb_config_type *sb_config_type_find(struct sb_slice name)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (sb_slice_eq_cstr(name, types[i].name))
            return &types[i];
    return NULL;
}

static size_t url_scheme_len(const char *u)
{
    if (strncmp(u, "https://", 8) == 0)
        return 8;
    if (strncmp(u, "http://", 7) == 0)
        return 7;
    return 0;
}

/* base_url: http(s)://host..., trailing slashes dropped; bedrock may derive it from region. */
static sb_err check_base_url(struct walk *w, struct sb_store_provider *p, const struct sb__ynode *n)
{
    if (!p->base_url && strcmp(p->type, "bedrock") == 0 && p->region)
        p->base_url =
            sb_arena_printf(w->cfg->arena, "https://bedrock-runtime.%s.amazonaws.com", p->region);
    if (!p->base_url)
        return sb__config_missing(w, n->line, "base_url", "");
    size_t skip = url_scheme_len(p->base_url);
    if (!skip || p->base_url[skip] == '/' || !sb__config_printable(p->base_url, 2048))
        return sb__config_fail_at(w, n, "base_url", "expected an http:// or https:// URL");
    size_t len = strlen(p->base_url);
    if (p->base_url[len - 1] == '/') {
        while (len > skip + 1 && p->base_url[len - 1] == '/')
            len--;
        p->base_url = sb_arena_strndup(w->cfg->arena, p->base_url, len);
    }
    return SB_OK;
}

static sb_err check_provider_aws(struct walk *w, struct sb_store_provider *p,
                                 const struct sb__ynode *n)
{
    bool bedrock = strcmp(p->type, "bedrock") == 0;
    if (!bedrock && (p->aws_access_key_id || p->aws_secret_access_key || p->aws_session_token))
        return sb__config_fail(w, n->line, "aws_* credentials are only for type bedrock");
    if (p->region && !sb__config_chars_ok(p->region, PROVIDER_ID_CHARS, 64))
        return sb__config_fail_at(w, n, "region", "expected a region name such as us-east-1");
    if (bedrock && (!p->aws_access_key_id != !p->aws_secret_access_key))
        return sb__config_fail(w, n->line,
                               "aws_access_key_id and aws_secret_access_key go together");
    return SB_OK;
}

/* `template: groq` fills what the entry leaves out: type, base_url, and the
 * template's options (api_version, region). Models stay explicit. */
static sb_err apply_template(struct walk *w, struct sb_store_provider *p, const struct sb__ynode *n)
{
    const struct sb_store_template *t = sb_templates_find(p->template_id);
    struct sb_json *opts = NULL;
    struct sb_json_limits lim = {0};
    struct sb_error ignore;
    if (!t)
        return sb__config_fail_at(w, n, "template",
                                  "unknown template '%.40s' (GET /api/templates lists them)",
                                  p->template_id);
    if (!p->type)
        p->type = t->type;
    if (!p->base_url && t->base_url)
        p->base_url = t->base_url;
    if (t->options && sb_json_parse(w->cfg->arena, t->options, strlen(t->options), &lim, &opts,
                                    &ignore) == SB_OK) {
        const struct sb_json *v = sb_json_get(opts, "api_version");
        if (!p->api_version && sb_json_is_string(v))
            p->api_version = sb_arena_strndup(w->cfg->arena, v->str.p, v->str.len);
        v = sb_json_get(opts, "region");
        if (!p->region && sb_json_is_string(v))
            p->region = sb_arena_strndup(w->cfg->arena, v->str.p, v->str.len);
    }
    return SB_OK;
}

static sb_err check_provider(struct walk *w, void *elem, const struct sb__ynode *n)
{
    struct sb_store_provider *p = elem;
    if (p->template_id && apply_template(w, p, n) != SB_OK)
        return w->err->code;
    if (!p->id)
        return sb__config_missing(w, n->line, "id", "");
    if (!sb__config_chars_ok(p->id, PROVIDER_ID_CHARS, 64))
        return sb__config_fail_at(w, n, "id", "must match [a-z0-9-]+ (at most 64 characters)");
    if (!p->type)
        return sb__config_missing(w, n->line, "type", " (one of " TYPE_NAMES ")");
    const struct sb_config_type *t = sb_config_type_find(sb_slice_cstr(p->type));
    if (!t)
        return sb__config_fail_at(w, n, "type", "unknown type '%.40s' (one of " TYPE_NAMES ")",
                                  p->type);
    sb_err rc = check_base_url(w, p, n);
    if (rc == SB_OK)
        rc = check_provider_aws(w, p, n);
    if (rc == SB_OK && p->api_version && !sb__config_printable(p->api_version, 64))
        rc =
            sb__config_fail_at(w, n, "api_version", "expected a version string such as 2024-10-21");
    if (rc == SB_OK && p->transport && strcmp(p->transport, "auto") != 0 &&
        strcmp(p->transport, "native") != 0 && strcmp(p->transport, "curl") != 0)
        rc = sb__config_fail_at(w, n, "transport", "expected auto, native or curl");
    if (p->name && !*p->name)
        p->name = NULL;
    if (!p->name)
        p->name = p->id;
    if (rc == SB_OK && p->napi_keys && t->auth == SB_AUTH_SIGV4)
        rc = sb__config_fail_at(w, n, "api_keys",
                                "a bedrock provider signs with aws_* credentials, not keys");
    for (size_t i = 0; rc == SB_OK && i < p->napi_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->api_keys[i].label, p->api_keys[j].label) == 0)
                rc = sb__config_fail_at(w, n, "api_keys", "duplicate label '%s'",
                                        p->api_keys[i].label);
    bool keyed = p->api_key || p->napi_keys || t->auth == SB_AUTH_SIGV4;
    p->auth_method = keyed ? t->auth_method : "none";
    return rc;
}

/* ---- key tables ---- */

/* Short name for the row macros (a macro, not a typedef: STYLE.md practice 17). */
#define PROV struct sb_store_provider

static const struct field rate_fields[] = {
    INT("rpm", PROV, rpm, 0, 1000000000),
    INT("tpm", PROV, tpm, 0, 1000000000000LL),
};
static const struct table rate_table = TABLE(rate_fields, PROV, NULL, NULL);

/* One key of a provider's pool (api_keys): its label names it in the
 * admin API, /metrics and dead_keys; "primary" is the api_key's name. */
static const struct field key_ref_fields[] = {
    STR("label", struct sb_store_key_ref, label),
    CRED("key", struct sb_store_key_ref, key),
    INT("weight", struct sb_store_key_ref, weight, 1, 1000000),
};

static void init_key_ref(void *elem)
{
    ((struct sb_store_key_ref *)elem)->weight = 1;
}

static sb_err check_key_ref(struct walk *w, void *elem, const struct sb__ynode *n)
{
    const struct sb_store_key_ref *r = elem;
    if (!r->label)
        return sb__config_missing(w, n->line, "label", "");
    if (!sb__config_chars_ok(r->label, KEY_LABEL_CHARS, 32) || strcmp(r->label, "primary") == 0)
        return sb__config_fail_at(w, n, "label",
                                  "must match [a-z0-9_-]+ (at most 32 characters), not 'primary'");
    if (!r->key)
        return sb__config_missing(w, n->line, "key", " (env:NAME or file:PATH)");
    return SB_OK;
}

static const struct table key_ref_table = {key_ref_fields,
                                           sizeof(key_ref_fields) / sizeof(key_ref_fields[0]),
                                           sizeof(struct sb_store_key_ref),
                                           init_key_ref,
                                           check_key_ref,
                                           "api_keys: over the API, add pool keys with POST "
                                           "/api/providers/{id}/credentials"};

static const struct field provider_fields[] = {
    STR("id", PROV, id),
    STR("type", PROV, type),
    STR("name", PROV, name),
    STR("base_url", PROV, base_url),
    CRED("api_key", PROV, api_key),
    ARR("api_keys", F_LIST, PROV, api_keys, napi_keys, &key_ref_table),
    ARR("headers", F_HEADERS, PROV, headers, nheaders, NULL),
    MAP("rate_limits", rate_table),
    INT("timeout_ms", PROV, timeout_ms, 0, 3600000),
    INT("connect_timeout_ms", PROV, connect_timeout_ms, 0, 600000),
    INT("idle_timeout_ms", PROV, idle_timeout_ms, 0, 3600000),
    INT("max_concurrency", PROV, max_concurrency, 0, 1000000),
    STR("transport", PROV, transport),
    STR("api_version", PROV, api_version),
    STR("region", PROV, region),
    CRED("aws_access_key_id", PROV, aws_access_key_id),
    CRED("aws_secret_access_key", PROV, aws_secret_access_key),
    CRED("aws_session_token", PROV, aws_session_token),
    BOOL("enabled", PROV, enabled),
    STR("description", PROV, description),
    BOOL("personal_keys_required", PROV, personal_keys_required),
    STR("template", PROV, template_id),
};

static void init_provider(void *elem)
{
    struct sb_store_provider *p = elem;
    p->enabled = true;
    p->is_system = true;
}

const struct table sb__config_provider_table =
    TABLE(provider_fields, PROV, init_provider, check_provider);
