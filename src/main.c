/* SPDX-License-Identifier: MIT */
/*
 * main.c - the switchboard command line.
 *
 * `serve` wires the layers together in this order: config file (optional)
 * -> the listen address (claimed first, so a second instance on it stops here
 * with "address in use" before it touches the store) -> master key -> store (migrate, sync the
 * file's system entries) -> admin token -> registry snapshot -> usage writer -> HTTP workers. Then
 * the main thread waits for SIGINT/SIGTERM and unwinds in reverse: workers finish in-flight
 * requests (bounded), the usage queue is flushed, exit 0. A process started with --takeover sends
 * the old one that same signal once it serves the address (the net layer's handed_over hook).
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "batch/runner.h"
#include "front/front.h"
#include "net/http.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/spool.h"
#include "crypto/keys.h"
#include "registry/config.h"
#include "gateway/gateway.h"
#include "gateway/metrics.h"
#include "gateway/sessions.h"
#include "registry/registry.h"
#include "router/cache.h"
#include "router/limits.h"
#include "router/router.h"
#include "registry/registry_build.h"
#include "store/store.h"
#include "store/usage.h"
#include "upstream/client.h"

struct serve_args {
    const char *config; /* --config */
    const char *listen; /* --listen HOST:PORT */
    const char *db;     /* --db URL */
    const char *redis;  /* --redis URL */
    int workers;        /* --workers, 0 = from config or cores */
    bool takeover;      /* --takeover: replace the switchboard serving the address */
};

static struct sb_gateway gateway;
static struct sb_front front = {.gw = &gateway};
/* The private loopback listener batch jobs send their lines to (batch/runner.h): the same
 * data plane, accepting only the runner's token (gateway.h batch_only). */
static struct sb_gateway batch_gateway;
static struct sb_front batch_front = {.gw = &batch_gateway};

/* ======================================================================
 * serve
 * ==================================================================== */

static sb_err split_listen(const char *listen, char *host, size_t cap, int *port,
                           struct sb_error *err)
{
    const char *colon = strrchr(listen, ':');
    unsigned long long p;
    if (!colon || (size_t)(colon - listen) >= cap ||
        !sb_slice_to_u64(sb_slice_cstr(colon + 1), &p) || p > 65535)
        return sb_fail(err, SB_E_CONFIG, "--listen: expected HOST:PORT, got '%s'", listen);
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && listen[0] == '[' && listen[n - 1] == ']') {
        listen++;
        n -= 2;
    }
    memcpy(host, listen, n);
    host[n] = '\0';
    *port = (int)p;
    return SB_OK;
}

/* A generated admin token, kept until the listener is up so the curl
 * command shown with it names the real address; then printed once and wiped. */
static struct sb_secret *new_admin_token;

static void print_new_token(const char *host, int port)
{
    if (!new_admin_token)
        return;
    struct sb_slice t = sb_secret_reveal(new_admin_token);
    /* To the terminal only, never through the logger. */
    printf("\n  admin token (shown once, store it now): %.*s\n"
           "  It administers the gateway; do not give it to applications.\n\n",
           SB_FMT(t));
    if (host)
        printf("  Create a virtual key for an application (shown once):\n"
               "    curl -s http://%s:%d/api/keys -H 'Authorization: Bearer %.*s' \\\n"
               "      -H 'content-type: application/json' -d '{\"name\":\"my-app\"}'\n"
               "  or: build/switchboard keys create --name my-app\n\n",
               host, port, SB_FMT(t));
    fflush(stdout);
    sb_secret_free(new_admin_token);
    new_admin_token = NULL;
}

static sb_err setup_admin(struct sb_store *store, struct sb_error *err)
{
    char *stored = NULL;
    struct sb_admin_setup a;
    sb_err rc = sb_store_setting_get(store, SB_KEYS_ADMIN_SETTING, &stored, err);
    if (rc == SB_OK)
        rc = sb_keys_admin_setup(stored, &a, err);
    free(stored);
    if (rc != SB_OK)
        return rc;
    if (a.changed && sb_store_setting_set(store, SB_KEYS_ADMIN_SETTING, a.stored, err) != SB_OK) {
        sb_secret_free(a.generated);
        return err->code;
    }
    gateway.admin = a.hash;
    gateway.has_admin = true;
    new_admin_token = a.generated;
    return SB_OK;
}

static int wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    return sig;
}

struct serve_state {
    struct sb_config *cfg;
    struct sb_keyring *keyring;
    struct sb_sessions *sessions; /* console sessions, mirrored for the data plane */
    struct sb_store *store;
    struct sb_usage_writer *usage;
    struct sb_api *api;
    struct sb_secret *metrics_token;
    struct sb_router *router;      /* health state behind routes and failover */
    struct sb_limits *limits;      /* rate limits and budgets */
    struct sb_cache *cache;        /* the response cache */
    struct sb_listen_claim *claim; /* the listen address, until the server takes it */
    char host[256];                /* the listen host, for messages */
    struct sb_server *server;
    struct sb_batch_runner *batch; /* batch jobs in the background */
    struct sb_server *batch_server; /* its private listener on 127.0.0.1 */
    char body_dir[4096];            /* where bodies over body_buffer_bytes are kept */
};

/* The directory for request bodies over body_buffer_bytes (unlinked files,
 * src/core/spool.h): server.body_temp_dir, else the SQLite database's own
 * directory (the gateway's data directory: on disk, where /tmp may be a
 * tmpfs, which is RAM), else $TMPDIR, else /tmp. Checked once here by
 * creating a file, so a directory that cannot hold one fails the start. */
static sb_err pick_body_dir(struct serve_state *s, const char *db, struct sb_error *err)
{
    const char *dir = s->cfg->server.body_temp_dir;
    char path[4096];
    if ((!dir || !*dir) && sb_usage_journal_path(db, path, sizeof(path))) {
        char *slash = strrchr(path, '/');
        if (slash == path)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(path, sizeof(path), ".");
        dir = path;
    }
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    snprintf(s->body_dir, sizeof(s->body_dir), "%s", dir);
    struct sb_spool *probe = NULL;
    if (s->cfg->server.body_buffer_bytes > 0 && sb_spool_create(s->body_dir, &probe, err) != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "server.body_temp_dir: %s", err->msg);
    sb_spool_free(probe);
    return SB_OK;
}

/* The start-up connection migrates and seeds, then becomes the control plane's
 * (one connection fewer to open and cache); the usage writer and the batch
 * runner open their own (one thread per connection). */
static sb_err open_store(struct serve_state *s, const char *db, struct sb_error *err)
{
    /* Each of the gateway's threads opens its own connection, and every
     * connection to ":memory:" is a database of its own. */
    if (strcmp(db, "sqlite::memory:") == 0)
        return sb_fail(err, SB_E_CONFIG,
                       "--db sqlite::memory: cannot be shared by the gateway's connections; "
                       "use sqlite:PATH (a temporary file works)");
    struct sb_store *wstore = NULL;
    if (sb_store_open(db, &s->store, err) != SB_OK || sb_store_migrate(s->store, err) != SB_OK ||
        sb_store_sync_system(s->store, &s->cfg->system, err) != SB_OK ||
        setup_admin(s->store, err) != SB_OK)
        return err->code;
    if (sb_store_open(db, &wstore, err) != SB_OK)
        return err->code;
    char journal[4096];
    /* The in-memory usage queue is capped at 1 MiB per worker (4 MiB from 4
     * workers up): about 7,000 packed rows of ~150 bytes, half a second of
     * one worker's requests at saturation. A longer stall of the writer (a
     * checkpoint's fsync on a busy disk) sends the rest to the journal; with
     * the writer's default of 16 MiB, a second-long stall at 1 KB c64 grew
     * the queue of one worker to 11 MB (DESIGN.md section 7). */
    int workers = s->claim ? sb_listen_claim_workers(s->claim) : 1;
    struct sb_usage_opts uo = {.max_bytes = (size_t)(workers < 4 ? workers : 4) << 20,
                               .inflight = sb_metrics_inflight_now};
    if (sb_usage_journal_path(db, journal, sizeof(journal)))
        uo.journal_path = journal; /* spill file beside the database (usage.h) */
    s->usage = sb_usage_writer_open(wstore, &uo, err);
    if (!s->usage)
        return err->code;
    gateway.sessions = s->sessions;
    const struct sb_routing_limits *rl = &s->cfg->routing;
    struct sb_router_opts ro = {(int)rl->breaker_failures, rl->breaker_cooldown_ms};
    gateway.router = s->router = sb_router_create(&ro);
    gateway.retry = (struct sb_retry_opts){(int)rl->retries, rl->retry_backoff_ms,
                                           rl->retry_max_wait_ms, rl->deadline_ms};
    gateway.limits = s->limits = sb_limits_create();
    struct sb_cache_opts co = {(size_t)s->cfg->cache.max_bytes, (size_t)s->cfg->cache.max_entries,
                               (size_t)s->cfg->cache.max_entry_bytes};
    gateway.cache = s->cache = sb_cache_memory_create(&co);
    gateway.cache_max_entry = sb_cache_max_entry(&co);
    /* Budgets count what this period already spent (usage rows), before serving. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (sb_limits_load_spend(s->limits, s->store, (int64_t)now.tv_sec * 1000, NULL, err) != SB_OK)
        return err->code;
    struct sb_batch_runner_opts bo = {db, (unsigned)s->cfg->server.shutdown_timeout_ms};
    if (sb_batch_runner_create(&bo, &s->batch, err) != SB_OK)
        return err->code;
    struct sb_api_opts o = {
        .db_url = db,
        .batches = s->batch,
        .keyring = s->keyring,
        .sessions = s->sessions,
        .admin = &gateway.admin,
        .writer = s->usage,
        .allow_private_base_urls = s->cfg->allow_private_base_urls,
        .router = s->router,
        .store = s->store,
    };
    s->store = NULL; /* the api's now, even if create fails */
    return sb_api_create(&o, &s->api, err); /* publishes the first snapshot */
}

/* First of all: one address, one gateway (src/net/claim.c). */
static sb_err claim_address(struct serve_state *s, const struct serve_args *a, struct sb_error *err)
{
    int port = 0, workers = a->workers;
    if (split_listen(a->listen ? a->listen : s->cfg->listen, s->host, sizeof(s->host), &port,
                     err) != SB_OK)
        return err->code;
    if (workers <= 0)
        workers = s->cfg->workers > 0 ? (int)s->cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return sb_listen_claim(s->host, port, workers, a->takeover, &s->claim, err);
}

/* The net layer's handed_over hook: the new process serves; stop as SIGTERM does. */
static void handed_over(void *ud)
{
    kill(getpid(), SIGTERM);
}

static sb_err start_server(struct serve_state *s, struct sb_error *err)
{
    const char *host = s->host;
    int workers = sb_listen_claim_workers(s->claim);
    const struct sb_server_limits *l = &s->cfg->server;
    gateway.usage = s->usage;
    gateway.max_body_bytes = (size_t)l->max_body_bytes;
    gateway.max_upstream_bytes = 64u << 20;
    struct sb_server_opts o = {
        .host = host,
        .port = sb_listen_claim_port(s->claim),
        .workers = workers,
        .max_header_bytes = (size_t)l->max_header_bytes,
        .max_body_bytes = (size_t)l->max_body_bytes,
        .header_timeout_ms = (unsigned)l->header_timeout_ms,
        .idle_timeout_ms = (unsigned)l->idle_timeout_ms,
        .max_connections = (unsigned)l->max_connections,
        .shutdown_timeout_ms = (unsigned)l->shutdown_timeout_ms,
        .handler = sb_front_handle,
        .worker_start = sb_front_worker_start,
        .worker_stop = sb_front_worker_stop,
        .error_body = sb_front_error_body,
        .ud = &front,
        .claim = s->claim,
        .handed_over = handed_over,
        .body_buffer_bytes = (size_t)l->body_buffer_bytes,
        .body_temp_dir = s->body_dir,
    };
    front.api = s->api;
    front.usage = s->usage;
    if (sb_config_resolve_secret(s->cfg->metrics_token, &s->metrics_token, err) != SB_OK)
        return err->code;
    front.metrics_token = s->metrics_token;
    s->claim = NULL; /* the server owns it now, even if it fails */
    if (sb_server_start(&o, &s->server, err) != SB_OK)
        return err->code;
    atomic_store(&front.server, s->server);
    sb_info("msg=\"listening\" addr=%s:%d workers=%d config=\"%s\"", host,
            sb_server_port(s->server), workers, s->cfg->path);
    print_new_token(host, sb_server_port(s->server));
    return SB_OK;
}

/* Batch jobs: a private listener on 127.0.0.1 (any free port, one worker) in front of
 * the same data plane, then the runner that sends lines to it. Not the public address:
 * a --takeover hands that to a process whose runner has another token. */
static sb_err start_batches(struct serve_state *s, struct sb_error *err)
{
    const struct sb_server_limits *l = &s->cfg->server;
    struct sb_server_opts o = {
        .host = "127.0.0.1",
        .port = 0,
        .workers = 1,
        .max_header_bytes = (size_t)l->max_header_bytes,
        .max_body_bytes = (size_t)l->max_body_bytes,
        .header_timeout_ms = (unsigned)l->header_timeout_ms,
        .idle_timeout_ms = 60000,
        .max_connections = 4 * SB_BATCH_MAX_IN_FLIGHT,
        .shutdown_timeout_ms = (unsigned)l->shutdown_timeout_ms,
        .handler = sb_front_handle,
        .worker_start = sb_front_worker_start,
        .worker_stop = sb_front_worker_stop,
        .error_body = sb_front_error_body,
        .ud = &batch_front,
        .body_buffer_bytes = (size_t)l->body_buffer_bytes,
        .body_temp_dir = s->body_dir,
    };
    batch_gateway = gateway; /* every field is set by now: the same data plane */
    batch_gateway.batch_only = true;
    sb_batch_runner_token_digest(s->batch, batch_gateway.batch_token.digest);
    batch_front.usage = s->usage;
    if (sb_server_start(&o, &s->batch_server, err) != SB_OK)
        return err->code;
    return sb_batch_runner_start(s->batch, sb_server_port(s->batch_server), err);
}

static void serve_cleanup(struct serve_state *s)
{
    /* Start failed after the token's hash was stored: show it all the same. */
    print_new_token(NULL, 0);
    /* Batch lines stop first: none is sent once the public address drains, and those in
     * flight finish (bounded by shutdown_timeout_ms) while it does; then their listener. */
    sb_batch_runner_stop(s->batch);
    sb_server_free(s->server);
    sb_batch_runner_free(s->batch);
    sb_server_free(s->batch_server);
    sb_listen_claim_free(s->claim); /* start failed before the server took it */
    sb_api_free(s->api);
    sb_router_free(s->router);
    sb_limits_free(s->limits);
    sb_cache_free(s->cache);
    sb_secret_free(s->metrics_token);
    sb_usage_writer_stop(s->usage); /* flushes every queued row */
    sb_registry_shutdown();
    sb_store_close(s->store);
    sb_sessions_free(s->sessions);
    sb_keys_keyring_free(s->keyring);
    sb_config_free(s->cfg);
}

static int serve(const struct serve_args *a)
{
    struct serve_state s = {0};
    struct sb_error err = {0};
    int code = 1;
    if (a->config ? sb_config_load(a->config, &s.cfg, &err) != SB_OK
                  : !(s.cfg = sb_config_default()))
        goto out;
    if (claim_address(&s, a, &err) != SB_OK)
        goto out;
    if (sb_keys_keyring_load(NULL, &s.keyring, &err) != SB_OK)
        goto out;
    s.sessions = sb_sessions_create();
    if (open_store(&s, a->db ? a->db : s.cfg->database, &err) != SB_OK ||
        pick_body_dir(&s, a->db ? a->db : s.cfg->database, &err) != SB_OK)
        goto out;
    if (a->redis || s.cfg->redis)
        sb_warn("msg=\"redis is not used yet: limits and cache are per instance\"");
    if (start_server(&s, &err) != SB_OK || start_batches(&s, &err) != SB_OK)
        goto out;
    int sig = wait_for_signal();
    sb_info("msg=\"shutting down\" signal=%d", sig);
    code = 0;
out:
    if (code)
        fprintf(stderr, "switchboard: %s\n", err.msg);
    serve_cleanup(&s);
    if (!code)
        sb_info("msg=\"stopped\"");
    return code;
}

/* ======================================================================
 * Other subcommands and argument parsing
 * ==================================================================== */

static int migrate(const char *db)
{
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    int code = 0;
    if (sb_store_open(db, &s, &err) != SB_OK || sb_store_migrate(s, &err) != SB_OK) {
        fprintf(stderr, "switchboard migrate: %s\n", err.msg);
        code = 1;
    } else {
        printf("switchboard migrate: %s is up to date\n", db);
    }
    sb_store_close(s);
    return code;
}

static const char usage_text[] =
    "switchboard " SB_VERSION " - a self-hosted LLM gateway\n"
    "\n"
    "usage:\n"
    "  switchboard serve [--config FILE] [--listen HOST:PORT] [--db URL] [--redis URL]\n"
    "                    [--workers N] [--takeover]\n"
    "  switchboard migrate [--db URL]\n"
    "  switchboard chat -m MODEL [--url URL] \"prompt\"\n"
    "  switchboard users add --username U --role admin|developer|user [--db URL]\n"
    "                   (password from SWITCHBOARD_PASSWORD, else asked on the terminal)\n"
    "  switchboard users list [--db URL]\n"
    "  switchboard keys create --name N [--user U] [--models a,b] [--expires ISO] [--db URL]\n"
    "  switchboard keys list [--user U] [--db URL]\n"
    "  switchboard keys revoke ID [--db URL]\n"
    "  switchboard rotate-key [--db URL]   (new key: SWITCHBOARD_NEW_MASTER_KEY or generated;\n"
    "                   stop the server first)\n"
    "  switchboard version\n"
    "\n"
    "defaults: --listen 127.0.0.1:8080, --db sqlite:./switchboard.db, workers = cores\n"
    "--takeover: replace the switchboard serving --listen without dropping a connection\n"
    "            (it hands over its sockets, then drains and exits)\n"
    "environment: SWITCHBOARD_MASTER_KEY (base64 of 32 bytes; else ./switchboard.key),\n"
    "             SWITCHBOARD_ADMIN_TOKEN (else generated on first start and printed once)\n"
    "             SWITCHBOARD_LOG_LEVEL=debug|info|warn|error (debug logs every request)\n"
    "             SWITCHBOARD_CA_FILE (PEM trust anchors for upstream TLS; default: system)\n";

static int parse_serve(int argc, char **argv, struct serve_args *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
        {"db", required_argument, NULL, 'd'},      {"redis", required_argument, NULL, 'r'},
        {"workers", required_argument, NULL, 'w'}, {"takeover", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    unsigned long long n;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:l:d:r:w:th", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            a->config = optarg;
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'd':
            a->db = optarg;
            break;
        case 'r':
            a->redis = optarg;
            break;
        case 'w':
            if (!sb_slice_to_u64(sb_slice_cstr(optarg), &n) || n < 1 || n > 256) {
                fprintf(stderr, "switchboard: --workers must be 1..256\n");
                return 2;
            }
            a->workers = (int)n;
            break;
        case 't':
            a->takeover = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "switchboard: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

static void raise_fd_limit(void)
{
    /* Each open stream holds two sockets; the soft limit (often 1024) would
     * cap us far below max_connections. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void set_log_level(void)
{
    const char *v = getenv("SWITCHBOARD_LOG_LEVEL");
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; v && i < 4; i++)
        if (strcmp(v, names[i]) == 0)
            sb_log_set_level((enum sb_log_level)i);
}

static void block_signals(void)
{
    /* Workers inherit this mask, so only the main thread's sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a body file over RLIMIT_FSIZE: EFBIG, a 500, not death */
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "--help";
    int code = 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "migrate") == 0) {
        struct serve_args a = {0};
        code = parse_serve(argc - 1, argv + 1, &a);
        if (code < 0 && strcmp(cmd, "migrate") == 0) {
            code = migrate(a.db ? a.db : "sqlite:./switchboard.db");
        } else if (code < 0) {
            block_signals();
            raise_fd_limit();
            sb_alloc_tune_server();
            set_log_level();
            code = serve(&a);
        }
    } else if (strcmp(cmd, "chat") == 0) {
        code = sb_cli_chat(argc - 1, argv + 1);
    } else if (strcmp(cmd, "users") == 0 || strcmp(cmd, "keys") == 0 ||
               strcmp(cmd, "rotate-key") == 0) {
        code = sb_cli_admin(argc - 1, argv + 1, usage_text);
    } else if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("switchboard %s\n", SB_VERSION);
        code = 0;
    } else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        code = 0;
    } else {
        fprintf(stderr, "switchboard: unknown command '%s'\n\n%s", cmd, usage_text);
    }
    curl_global_cleanup();
    return code;
}
