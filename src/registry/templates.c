/* SPDX-License-Identifier: MIT */
/*
 * templates.c - the templates that ship with switchboard (data).
 *
 * One row per service: the wire format, the base URL its own SDK uses, and
 * a few current models. Every OpenAI-compatible service is an `openai` row:
 * adding one is data, never code (DESIGN.md §6). They are listed beside the
 * database's templates by GET /api/templates, marked is_system, read-only,
 * and a config-file provider may name one (`template: groq`) for its type,
 * base URL and options. Pricing is USD per million tokens where the service
 * publishes it (checked 2026-12; prices change: edit the model after apply).
 * Model lists are starting points; users add or remove models after apply.
 */
#include <stddef.h>
#include <string.h>

#include "registry/templates.h"

#define M2(id, up, ctx, out, tools, vision)                                                        \
    "{\"id\":\"" id "\",\"upstream_model\":\"" up "\",\"context_length\":" #ctx                    \
    ",\"max_output_tokens\":" #out ",\"capabilities\":{\"streaming\":true,\"tools\":" tools        \
    ",\"vision\":" vision "}}"
#define M(id, ctx, out, tools, vision) M2(id, id, ctx, out, tools, vision)
/* The same with public prices, USD per million input / output tokens. */
#define MP(id, up, ctx, out, tools, vision, pin, pout)                                             \
    "{\"id\":\"" id "\",\"upstream_model\":\"" up "\",\"context_length\":" #ctx                    \
    ",\"max_output_tokens\":" #out ",\"capabilities\":{\"streaming\":true,\"tools\":" tools        \
    ",\"vision\":" vision "},\"pricing\":{\"input_per_mtok\":" #pin ",\"output_per_mtok\":" #pout  \
    "}}"

const struct sb_store_template sb_templates_builtin[] = {
    {.id = "openai",
     .name = "OpenAI",
     .type = "openai",
     .base_url = "https://api.openai.com/v1",
     .description = "OpenAI Chat Completions",
     .models = "[" MP("gpt-4o-mini", "gpt-4o-mini", 128000, 16384, "true", "true", 0.15,
                      0.6) "," MP("gpt-4o", "gpt-4o", 128000, 16384, "true", "true", 2.5, 10) "]"},
    {.id = "anthropic",
     .name = "Anthropic",
     .type = "anthropic",
     .base_url = "https://api.anthropic.com",
     .description = "Anthropic Messages API",
     .models = "[" MP("claude-sonnet-4-5", "claude-sonnet-4-5", 200000, 64000, "true", "true", 3,
                      15) "," MP("claude-haiku-4-5", "claude-haiku-4-5", 200000, 64000, "true",
                                 "true", 1, 5) "]"},
    {.id = "gemini",
     .name = "Google AI Studio",
     .type = "gemini",
     .base_url = "https://generativelanguage.googleapis.com/v1beta",
     .description = "Gemini API (generateContent)",
     .models = "[" MP("gemini-2.5-flash", "gemini-2.5-flash", 1048576, 65536, "true", "true", 0.3,
                      2.5) "," MP("gemini-2.5-pro", "gemini-2.5-pro", 1048576, 65536, "true",
                                  "true", 1.25, 10) "]"},
    {.id = "cohere",
     .name = "Cohere",
     .type = "cohere",
     .base_url = "https://api.cohere.com",
     .description = "Cohere Chat v2",
     .models = "[" MP("command-a-03-2025", "command-a-03-2025", 256000, 8000, "true", "false", 2.5,
                      10) "]"},
    {.id = "ollama",
     .name = "Ollama",
     .type = "ollama",
     .base_url = "http://127.0.0.1:11434",
     .description = "A local Ollama server (native API)",
     .models = "[" M("llama3.2", 131072, 4096, "true", "false") "]"},
    {.id = "huggingface",
     .name = "Hugging Face TGI",
     .type = "huggingface",
     .description = "A Text Generation Inference endpoint: give its URL as base_url",
     .models = "[]"},
    {.id = "azure",
     .name = "Azure OpenAI",
     .type = "azure",
     .options = "{\"api_version\":\"2024-10-21\"}",
     .description = "Azure OpenAI: base_url is the resource root, a model's upstream_model its "
                    "deployment",
     .models = "[]"},
    {.id = "bedrock",
     .name = "AWS Bedrock",
     .type = "bedrock",
     .base_url = "https://bedrock-runtime.us-east-1.amazonaws.com",
     .options = "{\"region\":\"us-east-1\"}",
     .description = "Bedrock Converse API (SigV4)",
     .models = "[]"},
    {.id = "deepseek",
     .name = "DeepSeek",
     .type = "openai",
     .base_url = "https://api.deepseek.com/v1",
     .description = "OpenAI-compatible",
     .models = "[" MP("deepseek-chat", "deepseek-chat", 128000, 8192, "true", "false", 0.27,
                      1.1) "," MP("deepseek-reasoner", "deepseek-reasoner", 128000, 65536, "true",
                                  "false", 0.55, 2.19) "]"},
    {.id = "groq",
     .name = "Groq",
     .type = "openai",
     .base_url = "https://api.groq.com/openai/v1",
     .description = "OpenAI-compatible",
     .models = "[" MP("llama-3.3-70b-versatile", "llama-3.3-70b-versatile", 131072, 32768, "true",
                      "false", 0.59, 0.79) "]"},
    {.id = "together",
     .name = "Together AI",
     .type = "openai",
     .base_url = "https://api.together.xyz/v1",
     .description = "OpenAI-compatible",
     .models = "[" MP("llama-3.3-70b-instruct-turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                      131072, 8192, "true", "false", 0.88, 0.88) "]"},
    {.id = "mistral",
     .name = "Mistral AI",
     .type = "openai",
     .base_url = "https://api.mistral.ai/v1",
     .description = "OpenAI-compatible",
     .models = "[" MP("mistral-large-latest", "mistral-large-latest", 131072, 8192, "true", "false",
                      2, 6) "," MP("mistral-small-latest", "mistral-small-latest", 131072, 8192,
                                   "true", "true", 0.1, 0.3) "]"},
    {.id = "cerebras",
     .name = "Cerebras",
     .type = "openai",
     .base_url = "https://api.cerebras.ai/v1",
     .description = "OpenAI-compatible",
     .models =
         "[" MP("llama-3.3-70b", "llama-3.3-70b", 65536, 8192, "true", "false", 0.85, 1.2) "]"},
    {.id = "nvidia-nim",
     .name = "NVIDIA NIM",
     .type = "openai",
     .base_url = "https://integrate.api.nvidia.com/v1",
     .description = "OpenAI-compatible",
     .models = "[" M2("llama-3.3-70b-instruct", "meta/llama-3.3-70b-instruct", 131072, 4096, "true",
                      "false") "]"},
    {.id = "openrouter",
     .name = "OpenRouter",
     .type = "openai",
     .base_url = "https://openrouter.ai/api/v1",
     .description = "OpenAI-compatible",
     .models = "[]"},
    {.id = "fireworks",
     .name = "Fireworks AI",
     .type = "openai",
     .base_url = "https://api.fireworks.ai/inference/v1",
     .description = "OpenAI-compatible",
     .models = "[]"},
    {.id = "xai",
     .name = "xAI",
     .type = "openai",
     .base_url = "https://api.x.ai/v1",
     .description = "OpenAI-compatible",
     .models = "[" MP("grok-4", "grok-4", 256000, 32768, "true", "true", 3, 15) "]"},
    {.id = "vllm",
     .name = "vLLM",
     .type = "openai",
     .base_url = "http://127.0.0.1:8000/v1",
     .description = "A vLLM server's OpenAI-compatible API",
     .models = "[]"},
    {.id = "lm-studio",
     .name = "LM Studio",
     .type = "openai",
     .base_url = "http://127.0.0.1:1234/v1",
     .description = "LM Studio's local server",
     .models = "[]"},
    {.id = "llama-cpp",
     .name = "llama.cpp server",
     .type = "openai",
     .base_url = "http://127.0.0.1:8080/v1",
     .description = "llama.cpp's llama-server (OpenAI-compatible); change the port if switchboard "
                    "already listens on 8080",
     .models = "[]"},
    {.id = "perplexity",
     .name = "Perplexity",
     .type = "openai",
     .base_url = "https://api.perplexity.ai",
     .description = "OpenAI-compatible (Sonar models, answers with web search)",
     .models = "[" MP("sonar", "sonar", 127072, 8192, "false", "false", 1, 1) "," MP(
         "sonar-pro", "sonar-pro", 200000, 8192, "false", "false", 3, 15) "]"},
    {.id = "hf-router",
     .name = "Hugging Face Inference Providers",
     .type = "openai",
     .base_url = "https://router.huggingface.co/v1",
     .description = "Hugging Face's OpenAI-compatible router (an hf_ token)",
     .models = "[" M2("hf-llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct", 131072, 8192, "true",
                      "false") "]"},
    {.id = "meta-llama",
     .name = "Meta Llama API",
     .type = "openai",
     .base_url = "https://api.llama.com/compat/v1",
     .description = "Meta's Llama API, OpenAI-compatible endpoint",
     .models = "[" M2("llama-4-maverick", "Llama-4-Maverick-17B-128E-Instruct-FP8", 1048576, 4028,
                      "true", "true") "]"},
};

const size_t sb_templates_nbuiltin = sizeof(sb_templates_builtin) / sizeof(sb_templates_builtin[0]);

const struct sb_store_template *sb_templates_find(const char *id)
{
    for (size_t i = 0; id && i < sb_templates_nbuiltin; i++)
        if (strcmp(sb_templates_builtin[i].id, id) == 0)
            return &sb_templates_builtin[i];
    return NULL;
}
