/* SPDX-License-Identifier: MIT */
/*
 * cli.h - subcommands that are clients of a running gateway.
 */
#ifndef SB_CLI_CLI_H
#define SB_CLI_CLI_H

/* `switchboard chat -m MODEL [--url URL] "prompt"`: streams the answer to stdout.
 * Returns the process exit code. */
int sb_cli_chat(int argc, char **argv);

#endif
