/* SPDX-License-Identifier: MIT */
/*
 * cli.h - subcommands that are clients of a running gateway.
 */
#ifndef SB_CLI_CLI_H
#define SB_CLI_CLI_H

/* `switchboard chat -m MODEL [--url URL] "prompt"`: streams the answer to stdout.
 * Returns the process exit code. */
int sb_cli_chat(int argc, char **argv);

/* `switchboard users|keys|rotate-key ...` against the database directly
 * (argv[0] is the subcommand). usage is printed for --help. Returns the
 * process exit code. */
int sb_cli_admin(int argc, char **argv, const char *usage);

#endif
