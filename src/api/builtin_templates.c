/* SPDX-License-Identifier: MIT */
/*
 * builtin_templates.c - the templates that ship with switchboard (data).
 *
 * One row per service: the wire format, the base URL its own SDK uses, and
 * a few current models. Every OpenAI-compatible service is an `openai` row:
 * adding one is data, never code (DESIGN.md §6). They are listed beside the
 * database's templates by GET /api/templates, marked is_system, read-only.
 * Model lists are starting points; users add or remove models after apply.
 */
#include <stddef.h>

#include "api/internal.h"

#define M2(id, up, ctx, out, tools, vision) \
    "{\"id\":\"" id "\",\"upstream_model\":\"" up "\",\"context_length\":" #ctx \
    ",\"max_output_tokens\":" #out ",\"capabilities\":{\"streaming\":true,\"tools\":" #tools \
    ",\"vision\":" #vision "}}"
#define M(id, ctx, out, tools, vision) M2(id, id, ctx, out, tools, vision)

const struct sb_store_template sb__api_builtin_templates[] = {
    {.id = "openai", .name = "OpenAI", .type = "openai", .base_url = "https://api.openai.com/v1",
     .description = "OpenAI Chat Completions",
     .models = "[" M("gpt-4o-mini", 128000, 16384, true, true) "," M("gpt-4o", 128000, 16384, true,
                                                                      true) "]"},
    {.id = "anthropic", .name = "Anthropic", .type = "anthropic",
     .base_url = "https://api.anthropic.com", .description = "Anthropic Messages API",
     .models = "[" M("claude-sonnet-4-5", 200000, 64000, true, true) "," M(
         "claude-haiku-4-5", 200000, 64000, true, true) "]"},
    {.id = "gemini", .name = "Google AI Studio", .type = "gemini",
     .base_url = "https://generativelanguage.googleapis.com/v1beta",
     .description = "Gemini API (generateContent)",
     .models = "[" M("gemini-2.5-flash", 1048576, 65536, true, true) "," M(
         "gemini-2.5-pro", 1048576, 65536, true, true) "]"},
    {.id = "cohere", .name = "Cohere", .type = "cohere", .base_url = "https://api.cohere.com",
     .description = "Cohere Chat v2",
     .models = "[" M("command-a-03-2025", 256000, 8000, true, false) "]"},
    {.id = "ollama", .name = "Ollama", .type = "ollama", .base_url = "http://127.0.0.1:11434",
     .description = "A local Ollama server (native API)",
     .models = "[" M("llama3.2", 131072, 4096, true, false) "]"},
    {.id = "huggingface", .name = "Hugging Face TGI", .type = "huggingface",
     .description = "A Text Generation Inference endpoint: give its URL as base_url",
     .models = "[]"},
    {.id = "azure", .name = "Azure OpenAI", .type = "azure", .options = "{\"api_version\":\"2024-10-21\"}",
     .description = "Azure OpenAI: base_url is the resource root, a model's upstream_model its "
                    "deployment",
     .models = "[]"},
    {.id = "bedrock", .name = "AWS Bedrock", .type = "bedrock",
     .base_url = "https://bedrock-runtime.us-east-1.amazonaws.com",
     .options = "{\"region\":\"us-east-1\"}", .description = "Bedrock Converse API (SigV4)",
     .models = "[]"},
    {.id = "deepseek", .name = "DeepSeek", .type = "openai",
     .base_url = "https://api.deepseek.com/v1", .description = "OpenAI-compatible",
     .models = "[" M("deepseek-chat", 128000, 8192, true, false) "," M(
         "deepseek-reasoner", 128000, 65536, true, false) "]"},
    {.id = "groq", .name = "Groq", .type = "openai", .base_url = "https://api.groq.com/openai/v1",
     .description = "OpenAI-compatible",
     .models = "[" M("llama-3.3-70b-versatile", 131072, 32768, true, false) "]"},
    {.id = "together", .name = "Together AI", .type = "openai",
     .base_url = "https://api.together.xyz/v1", .description = "OpenAI-compatible",
     .models = "[" M2("llama-3.3-70b-instruct-turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 131072, 8192, true, false) "]"},
    {.id = "mistral", .name = "Mistral AI", .type = "openai", .base_url = "https://api.mistral.ai/v1",
     .description = "OpenAI-compatible",
     .models = "[" M("mistral-large-latest", 131072, 8192, true, false) "," M(
         "mistral-small-latest", 131072, 8192, true, true) "]"},
    {.id = "cerebras", .name = "Cerebras", .type = "openai", .base_url = "https://api.cerebras.ai/v1",
     .description = "OpenAI-compatible", .models = "[" M("llama-3.3-70b", 65536, 8192, true, false) "]"},
    {.id = "nvidia-nim", .name = "NVIDIA NIM", .type = "openai",
     .base_url = "https://integrate.api.nvidia.com/v1", .description = "OpenAI-compatible",
     .models = "[" M2("llama-3.3-70b-instruct", "meta/llama-3.3-70b-instruct", 131072, 4096, true, false) "]"},
    {.id = "openrouter", .name = "OpenRouter", .type = "openai",
     .base_url = "https://openrouter.ai/api/v1", .description = "OpenAI-compatible",
     .models = "[]"},
    {.id = "fireworks", .name = "Fireworks AI", .type = "openai",
     .base_url = "https://api.fireworks.ai/inference/v1", .description = "OpenAI-compatible",
     .models = "[]"},
    {.id = "xai", .name = "xAI", .type = "openai", .base_url = "https://api.x.ai/v1",
     .description = "OpenAI-compatible", .models = "[" M("grok-4", 256000, 32768, true, true) "]"},
    {.id = "vllm", .name = "vLLM", .type = "openai", .base_url = "http://127.0.0.1:8000/v1",
     .description = "A vLLM server's OpenAI-compatible API", .models = "[]"},
    {.id = "lm-studio", .name = "LM Studio", .type = "openai", .base_url = "http://127.0.0.1:1234/v1",
     .description = "LM Studio's local server", .models = "[]"},
};

const size_t sb__api_nbuiltin_templates =
    sizeof(sb__api_builtin_templates) / sizeof(sb__api_builtin_templates[0]);
