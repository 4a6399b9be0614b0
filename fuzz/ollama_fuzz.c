/* SPDX-License-Identifier: MIT */
/*
 * ollama_fuzz.c - libFuzzer target for the ollama adapter: its stream parser (split-invariant),
 * response parser, error mapping and request translation (see adapter_fuzz.h).
 */
#define ADAPTER "ollama"
#include "adapter_fuzz.h"
