/* SPDX-License-Identifier: MIT */
/*
 * cohere_fuzz.c - libFuzzer target for the cohere adapter: its stream parser (split-invariant),
 * response parser, error mapping and request translation (see adapter_fuzz.h).
 */
#define ADAPTER "cohere"
#include "adapter_fuzz.h"
