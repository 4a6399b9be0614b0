/* SPDX-License-Identifier: MIT */
/*
 * adapters.c - the table of provider adapters, one row per wire format.
 *
 * Adding a wire format means one adapter file exporting its const ops and
 * one row here; nothing else in the tree names a provider. Everything that
 * is OpenAI-compatible (Groq, Together, vLLM...) is a row of *data* (a
 * template with type "openai"), not a row of this table.
 */
#include "provider/provider.h"

extern const struct sb_provider_ops sb_openai_ops;
extern const struct sb_provider_ops sb_anthropic_ops;
extern const struct sb_provider_ops sb_bedrock_ops;
extern const struct sb_provider_ops sb_gemini_ops;
extern const struct sb_provider_ops sb_azure_ops;
extern const struct sb_provider_ops sb_huggingface_ops;
extern const struct sb_provider_ops sb_cohere_ops;
extern const struct sb_provider_ops sb_ollama_ops;

const struct sb_provider_ops *const sb_provider_ops_all[] = {
    &sb_openai_ops,
    &sb_anthropic_ops,
    &sb_bedrock_ops,
    &sb_gemini_ops,
    &sb_azure_ops,
    &sb_huggingface_ops,
    &sb_cohere_ops,
    &sb_ollama_ops,
    NULL,
};

const struct sb_provider_ops *sb_provider_ops_find(struct sb_slice type)
{
    for (size_t i = 0; sb_provider_ops_all[i]; i++)
        if (sb_slice_eq_cstr(type, sb_provider_ops_all[i]->type))
            return sb_provider_ops_all[i];
    return NULL;
}
