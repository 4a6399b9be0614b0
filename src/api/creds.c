/* SPDX-License-Identifier: MIT */
/*
 * creds.c - storing a provider credential sent over the API.
 *
 * The key arrives in the request body, is encrypted at once (AES-256-GCM
 * under the keyring's active master key, whose id is stored beside it, the
 * row identity as associated data) and only the
 * ciphertext, the key id and a masked form reach the store. A key that does
 * not look like the provider's own format is stored all the same (formats
 * change, proxies re-issue keys) but the answer carries a warning.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "crypto/keys.h"
#include "crypto/secret.h"

/* What keys of well-known services look like; data, for warnings only. */
static const struct {
    const char *type; /* provider type, or NULL = any */
    const char *host; /* a base_url host fragment, or NULL = any */
    const char *prefix;
    const char *service;
} formats[] = {
    {"anthropic", NULL, "sk-ant-", "Anthropic"},
    {"gemini", NULL, "AIza", "Google AI Studio"},
    {"huggingface", NULL, "hf_", "Hugging Face"},
    {"openai", "api.openai.com", "sk-", "OpenAI"},
    {"openai", "api.groq.com", "gsk_", "Groq"},
    {"openai", "integrate.api.nvidia.com", "nvapi-", "NVIDIA NIM"},
    {"openai", "openrouter.ai", "sk-or-", "OpenRouter"},
    {"openai", "api.x.ai", "xai-", "xAI"},
    {"openai", "api.deepseek.com", "sk-", "DeepSeek"},
};

const char *sb__api_key_format_warning(struct sb_api_call *c, const char *type,
                                       const char *base_url, const char *key)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (strcmp(formats[i].type, type) != 0)
            continue;
        if (formats[i].host && (!base_url || !strstr(base_url, formats[i].host)))
            continue;
        if (strncmp(key, formats[i].prefix, strlen(formats[i].prefix)) == 0)
            return NULL;
        return sb_arena_printf(c->arena, "the key does not look like a %s key (%s...)",
                               formats[i].service, formats[i].prefix);
    }
    return NULL;
}

sb_err sb__api_put_credential(struct sb_api_call *c, const char *provider, const char *user,
                              const char *key, char masked[32])
{
    return sb__api_put_pool_key(c, provider, user, NULL, 0, key, masked);
}

sb_err sb__api_put_pool_key(struct sb_api_call *c, const char *provider, const char *user,
                            const char *label, int64_t weight, const char *key, char masked[32])
{
    struct sb_secret *s = sb_secret_new(key, strlen(key));
    char aad[SB_KEYS_AAD_MAX], kid[17];
    char *ct = NULL;
    sb_secret_mask(s, masked);
    sb_keys_credential_aad(provider, user, label, aad);
    sb_err rc = sb_keys_keyring_encrypt(c->api->keyring, sb_secret_reveal(s), sb_slice_cstr(aad),
                                        &ct, kid, &c->err);
    sb_secret_free(s);
    if (rc != SB_OK)
        return rc;
    struct sb_store_credential cred = {
        .provider = provider,
        .user = user,
        .key_ciphertext = ct,
        .key_id = kid,
        .masked = masked,
        .label = label,
        .weight = weight,
    };
    rc = sb_store_credential_put(c->api->store, &cred, &c->err);
    free(ct);
    return rc;
}
