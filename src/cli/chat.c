/* SPDX-License-Identifier: MIT */
/*
 * chat.c - `switchboard chat`: a quick streaming client for checks.
 *
 * Sends one streaming chat completion to a running gateway and prints the
 * text deltas as they arrive. The key comes from SWITCHBOARD_API_KEY or
 * SWITCHBOARD_ADMIN_TOKEN, never from the command line (shell history).
 */
#include "cli/cli.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/sse.h"

struct chat {
    struct sb_sse sse;
    struct sb_buf errbody; /* body of a non-2xx answer */
    long status;
    bool streaming; /* 2xx: parse SSE */
    bool failed;    /* an error event arrived */
};

static int on_event(void *ud, const struct sb_sse_event *ev)
{
    struct chat *c = ud;
    if (sb_slice_eq_cstr(ev->data, "[DONE]"))
        return 0;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *j;
    if (sb_json_parse(a, ev->data.p, ev->data.len, NULL, &j, NULL) == SB_OK) {
        const struct sb_json *e = sb_json_get(j, "error");
        const struct sb_json *choice = sb_json_at(sb_json_get(j, "choices"), 0);
        const struct sb_json *d = sb_json_get(sb_json_get(choice, "delta"), "content");
        if (e) {
            const struct sb_json *m = sb_json_get(e, "message");
            struct sb_slice msg = m && m->type == SB_JSON_STRING ? m->str : SB_SLICE("unknown");
            fprintf(stderr, "\nerror: %.*s\n", SB_FMT(msg));
            c->failed = true;
        } else if (d && d->type == SB_JSON_STRING) {
            fwrite(d->str.p, 1, d->str.len, stdout);
            fflush(stdout);
        }
    }
    sb_arena_free(a);
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct chat *c = ud;
    size_t len = size * n;
    if (!c->streaming) {
        sb_buf_append(&c->errbody, p, len);
        return len;
    }
    struct sb_error err;
    sb_err rc = sb_sse_feed(&c->sse, p, len, on_event, c, &err);
    if (rc != SB_OK && rc != SB_AGAIN) {
        fprintf(stderr, "\nbad stream: %s\n", err.msg);
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct chat *c = ud;
    size_t len = size * n;
    int code;
    if (len > 9 && memcmp(p, "HTTP/", 5) == 0 && sscanf(p, "HTTP/%*s %d", &code) == 1) {
        c->status = code;
        c->streaming = code >= 200 && code < 300;
    }
    return len;
}

static char *build_body(const char *model, const char *prompt)
{
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "model");
    sb_jw_cstr(&w, model);
    sb_jw_key(&w, "stream");
    sb_jw_bool(&w, true);
    sb_jw_key(&w, "messages");
    sb_jw_arr_begin(&w);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "role");
    sb_jw_cstr(&w, "user");
    sb_jw_key(&w, "content");
    sb_jw_cstr(&w, prompt);
    sb_jw_obj_end(&w);
    sb_jw_arr_end(&w);
    sb_jw_obj_end(&w);
    return b.p;
}

static int usage(void)
{
    fprintf(stderr, "usage: switchboard chat -m MODEL [--url URL] \"prompt\"\n"
                    "  --url   gateway base URL (default http://127.0.0.1:8080)\n"
                    "  key     from SWITCHBOARD_API_KEY or SWITCHBOARD_ADMIN_TOKEN\n");
    return 2;
}

static int run(const char *url, const char *model, const char *prompt, const char *key)
{
    struct chat c = {0};
    sb_sse_init(&c.sse, 0, 0);
    sb_buf_init(&c.errbody, 1 << 20);
    char *body = build_body(model, prompt);
    char full[1024], auth[1024];
    snprintf(full, sizeof(full), "%s/v1/chat/completions", url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, full);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &c);
    CURLcode rc = curl_easy_perform(e);
    int exit_code = 0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "switchboard chat: %s: %s\n", full, curl_easy_strerror(rc));
        exit_code = 1;
    } else if (!c.streaming) {
        fprintf(stderr, "switchboard chat: HTTP %ld: %.*s\n", c.status, (int)c.errbody.len,
                c.errbody.p ? c.errbody.p : "");
        exit_code = 1;
    } else {
        fputc('\n', stdout);
        exit_code = c.failed ? 1 : 0;
    }
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    free(body);
    sb_sse_free(&c.sse);
    sb_buf_free(&c.errbody);
    return exit_code;
}

int sb_cli_chat(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *url = "http://127.0.0.1:8080";
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "m:u:h", longopts, NULL)) != -1) {
        if (ch == 'm')
            model = optarg;
        else if (ch == 'u')
            url = optarg;
        else
            return usage();
    }
    if (!model || optind != argc - 1)
        return usage();
    const char *key = getenv("SWITCHBOARD_API_KEY");
    if (!key)
        key = getenv("SWITCHBOARD_ADMIN_TOKEN");
    if (!key) {
        fprintf(stderr, "switchboard chat: set SWITCHBOARD_API_KEY or SWITCHBOARD_ADMIN_TOKEN\n");
        return 2;
    }
    return run(url, model, argv[optind], key);
}
