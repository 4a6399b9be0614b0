/* SPDX-License-Identifier: MIT */
/*
 * admin.c - `switchboard users|keys|rotate-key`: identity chores on the
 * database itself, for the first admin and for scripts.
 *
 * These open the store directly (migrating it first, so they work on a
 * fresh database) and share their rules with the /api endpoints through
 * api.h (sb_api_user_add, sb_api_key_new, sb_api_rotate). Secrets never come
 * from argv, which shell history and `ps` show: a password comes from
 * SWITCHBOARD_PASSWORD or is read from the terminal with echo off. A new
 * virtual key is printed once to stdout, never logged. Each change writes an
 * audit row with actor "cli".
 *
 * rotate-key must not run beside a server on the same database: the server
 * would keep encrypting new credentials under the old key (keys.h).
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/arena.h"
#include "crypto/password.h"
#include "crypto/secret.h"
#include "store/identity.h"
#include "store/store.h"

struct opts {
    const char *db, *username, *role, *name, *user, *models, *expires;
    const char *arg; /* the one positional argument (keys revoke ID) */
};

/* ---- helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(const char *what, const struct sb_error *err)
{
    fprintf(stderr, "switchboard %s: %s\n", what, err->msg); /* messages name their field */
    return 1;
}

static sb_err open_db(const struct opts *o, struct sb_store **s, struct sb_error *err)
{
    if (sb_store_open(o->db ? o->db : "sqlite:./switchboard.db", s, err) != SB_OK ||
        sb_store_migrate(*s, err) != SB_OK)
        return err->code;
    return SB_OK;
}

static void audit(struct sb_store *s, const char *action, const char *type, const char *id,
                  const char *after)
{
    struct sb_audit row = {.actor = "cli",
                           .action = action,
                           .target_type = type,
                           .target_id = id,
                           .after = after,
                           .outcome = "ok"};
    struct sb_error err = {0};
    if (sb_store_audit_insert(s, &row, 1, &err) != SB_OK)
        fprintf(stderr, "switchboard: warning: audit row not written: %s\n", err.msg);
}

/* Reads a line from the terminal with echo off into out (cap bytes). */
static bool read_hidden(const char *prompt, char *out, size_t cap)
{
    FILE *tty = fopen("/dev/tty", "r+");
    struct termios old, quiet;
    bool ok = false;
    if (!tty)
        return false;
    fputs(prompt, tty);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        ok = fgets(out, (int)cap, tty) != NULL;
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputs("\n", tty);
    }
    fclose(tty);
    out[ok ? strcspn(out, "\r\n") : 0] = '\0';
    return ok;
}

/* The new user's password: SWITCHBOARD_PASSWORD, or asked twice on a terminal. */
static bool get_password(char *pw, size_t cap)
{
    const char *env = getenv("SWITCHBOARD_PASSWORD");
    char again[SB_PASSWORD_MAX + 2];
    if (env && *env) {
        snprintf(pw, cap, "%s", env);
        return true;
    }
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "switchboard users add: set SWITCHBOARD_PASSWORD or run on a terminal "
                        "(passwords are never taken from the command line)\n");
        return false;
    }
    bool ok = read_hidden("password: ", pw, cap) && read_hidden("again: ", again, sizeof(again));
    if (ok && strcmp(pw, again) != 0) {
        fprintf(stderr, "switchboard users add: the passwords differ\n");
        ok = false;
    }
    sb_secret_wipe(again, sizeof(again));
    return ok;
}

/* ---- users ---- */

static int users_add(struct sb_store *s, const struct opts *o)
{
    char pw[SB_PASSWORD_MAX + 2];
    struct sb_error err = {0};
    if (!o->username || !o->role) {
        fprintf(stderr, "switchboard users add: --username and --role are required\n");
        return 2;
    }
    if (!get_password(pw, sizeof(pw)))
        return 1;
    sb_err rc = sb_api_user_add(s, o->username, pw, o->role, &err);
    sb_secret_wipe(pw, sizeof(pw));
    if (rc != SB_OK)
        return fail("users add", &err);
    char doc[160];
    snprintf(doc, sizeof(doc), "{\"username\":\"%s\",\"role\":\"%s\"}", o->username, o->role);
    audit(s, "user.create", "user", o->username, doc); /* both passed the store's checks */
    printf("user %s added (role %s)\n", o->username, o->role);
    return 0;
}

static int users_list(struct sb_store *s, const struct opts *o)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_paging pg = {.limit = 1000};
    struct sb_store_user *us = NULL;
    struct sb_error err = {0};
    size_t n = 0;
    int64_t total = 0;
    (void)o;
    int code = 0;
    if (sb_store_user_list(s, &pg, a, &us, &n, &total, &err) != SB_OK) {
        code = fail("users list", &err);
    } else {
        printf("%-32s %-10s %-9s\n", "USERNAME", "ROLE", "STATUS");
        for (size_t i = 0; i < n; i++)
            printf("%-32s %-10s %-9s\n", us[i].username, us[i].role, us[i].status);
    }
    sb_arena_free(a);
    return code;
}

/* ---- keys ---- */

/* Splits "a,b" into arena strings. */
static size_t split_models(struct sb_arena *a, const char *list, const char ***out)
{
    size_t n = 0, cap = 1;
    for (const char *p = list; p && *p; p++)
        cap += *p == ',';
    const char **v = sb_arena_alloc(a, cap * sizeof(*v));
    while (list && *list) {
        size_t len = strcspn(list, ",");
        if (len)
            v[n++] = sb_arena_strndup(a, list, len);
        list += len + (list[len] == ',');
    }
    *out = v;
    return n;
}

static int keys_create(struct sb_store *s, const struct opts *o)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_api_key_new k = {.name = o->name, .owner = o->user};
    struct sb_error err = {0};
    char key[50];
    int64_t id = 0;
    int code = 0;
    const char **models = NULL;
    k.nmodels = split_models(a, o->models, &models);
    k.models = models;
    if (!o->name) {
        fprintf(stderr, "switchboard keys create: --name is required\n");
        code = 2;
    } else if ((o->expires && sb_api_parse_time(o->expires, &k.expires_at, &err) != SB_OK) ||
               sb_api_key_new(s, &k, key, &id, &err) != SB_OK) {
        code = fail("keys create", &err);
    } else {
        char sid[24], doc[256];
        snprintf(sid, sizeof(sid), "%lld", (long long)id);
        snprintf(doc, sizeof(doc), "{\"id\":\"%s\",\"prefix\":\"%.10s\"}", sid, key);
        audit(s, "key.create", "key", sid, doc);
        printf("key id %s created; the key is shown this once:\n%s\n", sid, key);
        sb_secret_wipe(key, sizeof(key));
    }
    sb_arena_free(a);
    return code;
}

static void print_key(const struct sb_store_api_key *k)
{
    const char *state = k->revoked ? "revoked" : "active";
    printf("%-6lld %-24.24s %-12s %-16.16s %-8s ", (long long)k->id, k->name, k->key_prefix,
           k->user_id ? k->user_id : "-", state);
    for (size_t j = 0; j < k->nmodels; j++)
        printf("%s%s", j ? "," : "", k->models[j]);
    printf("%s\n", k->nmodels ? "" : "(all)");
}

static int keys_list(struct sb_store *s, const struct opts *o)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_paging pg = {.limit = 1000};
    struct sb_store_api_key *ks = NULL;
    struct sb_error err = {0};
    size_t n = 0;
    int64_t total = 0;
    int code = 0;
    if (sb_store_key_list(s, o->user, &pg, a, &ks, &n, &total, &err) != SB_OK) {
        code = fail("keys list", &err);
    } else {
        printf("%-6s %-24s %-12s %-16s %-8s %s\n", "ID", "NAME", "PREFIX", "USER", "STATE",
               "MODELS");
        for (size_t i = 0; i < n; i++)
            print_key(&ks[i]);
    }
    sb_arena_free(a);
    return code;
}

static int keys_revoke(struct sb_store *s, const struct opts *o)
{
    struct sb_error err = {0};
    unsigned long long id = 0;
    if (!o->arg || !sb_slice_to_u64(sb_slice_cstr(o->arg), &id) || id == 0 || id > INT64_MAX) {
        fprintf(stderr, "switchboard keys revoke: expected a key id (see keys list)\n");
        return 2;
    }
    if (sb_store_key_revoke(s, (int64_t)id, now_ms(), &err) != SB_OK)
        return fail("keys revoke", &err);
    audit(s, "key.revoke", "key", o->arg, NULL);
    printf("key %s revoked\n", o->arg);
    return 0;
}

/* ---- rotate-key ---- */

static int rotate_key(struct sb_store *s, const struct opts *o)
{
    struct sb_keyring *kr = NULL;
    struct sb_error err = {0};
    size_t n = 0;
    char kid[17];
    (void)o;
    if (sb_keys_keyring_load(NULL, &kr, &err) != SB_OK ||
        sb_api_rotate(s, kr, &n, kid, &err) != SB_OK) {
        sb_keys_keyring_free(kr);
        return fail("rotate-key", &err);
    }
    char doc[96];
    snprintf(doc, sizeof(doc), "{\"key_id\":\"%s\",\"rotated\":%zu}", kid, n);
    audit(s, "admin.rotate_key", "master_key", kid, doc);
    printf("re-encrypted %zu credentials; master key id is now %s\n", n, kid);
    if (sb_keys_keyring_from_env(kr))
        printf("now set SWITCHBOARD_MASTER_KEY to the value of SWITCHBOARD_NEW_MASTER_KEY "
               "and unset the latter\n");
    sb_keys_keyring_free(kr);
    return 0;
}

/* ---- dispatch ---- */

static const struct {
    const char *cmd, *sub;
    int (*fn)(struct sb_store *s, const struct opts *o);
    bool takes_arg; /* one positional argument */
} commands[] = {
    {"users", "add", users_add, false},     {"users", "list", users_list, false},
    {"keys", "create", keys_create, false}, {"keys", "list", keys_list, false},
    {"keys", "revoke", keys_revoke, true},  {"rotate-key", NULL, rotate_key, false},
};

/* Parses the options after the subcommand into o; -1 to go on, else an exit code. */
static int parse(int argc, char **argv, struct opts *o, bool takes_arg, const char *usage)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"username", required_argument, NULL, 'u'},
        {"role", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'},
        {"user", required_argument, NULL, 'U'},
        {"models", required_argument, NULL, 'm'},
        {"expires", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char **slot[128] = {
        ['d'] = &o->db,   ['u'] = &o->username, ['r'] = &o->role,   ['n'] = &o->name,
        ['U'] = &o->user, ['m'] = &o->models,   ['e'] = &o->expires};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (ch < 0 || ch >= 128 || !slot[ch]) {
            fputs(usage, stderr);
            return 2;
        }
        *slot[ch] = optarg;
    }
    if (takes_arg && optind < argc)
        o->arg = argv[optind++];
    if (optind != argc) {
        fprintf(stderr, "switchboard: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

int sb_cli_admin(int argc, char **argv, const char *usage)
{
    struct opts o = {0};
    bool has_sub = argc > 1 && argv[1][0] != '-';
    const char *sub = has_sub ? argv[1] : NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].cmd, argv[0]) != 0 ||
            (commands[i].sub && (!sub || strcmp(commands[i].sub, sub) != 0)) ||
            (!commands[i].sub && sub))
            continue;
        int skip = commands[i].sub ? 1 : 0;
        int code = parse(argc - skip, argv + skip, &o, commands[i].takes_arg, usage);
        if (code >= 0)
            return code;
        struct sb_store *s = NULL;
        struct sb_error err = {0};
        if (open_db(&o, &s, &err) != SB_OK) {
            sb_store_close(s);
            return fail(argv[0], &err);
        }
        code = commands[i].fn(s, &o);
        sb_store_close(s);
        return code;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "switchboard %s: unknown subcommand '%s'\n\n%s", argv[0], sub ? sub : "",
            usage);
    return 2;
}
