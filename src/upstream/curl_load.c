/* SPDX-License-Identifier: MIT */
/*
 * curl_load.c - libcurl, loaded by the first call that needs it.
 *
 * The binary does not link libcurl. libcurl.so.4 as distributions build it
 * brings 28 more shared libraries (GnuTLS through librtmp, Kerberos, LDAP,
 * libssh2, libidn2 ...), and the dynamic linker maps and relocates all of
 * them before main: measured on the 2-core development machine, 15 ms of CPU
 * at every start (22.4 against 7.4 ms for an empty program linked with our
 * other libraries) and 4.5 MB of resident pages (8.1 against 3.6 MB), more
 * than half of nginx's whole footprint. The default data path never needs it:
 * plain-HTTP upstreams go through the native HTTP/1.1 client (upstream/h1.c);
 * only https, HTTP/2, proxies, `transport: curl`, the console's connection
 * test and batch jobs' requests do.
 *
 * So this file defines the part of libcurl's API that switchboard calls, each
 * a trampoline into the real library, which the first call loads (dlopen of
 * the stable soname, then curl_global_init) exactly once, from any thread.
 * Callers use the documented curl API unchanged. curl_global_init before the
 * load only records its flags; curl_global_cleanup does nothing if nothing
 * was loaded. A libcurl that cannot be loaded is fatal at that first use, as
 * it was at start before (the dynamic linker refused to run the binary).
 *
 * Adding a curl function to the code: add its row to CURL_FNS (or write a
 * trampoline by hand if it is variadic, as setopt and getinfo are below);
 * the link fails until you do, since nothing else provides the symbol.
 */
#define CURL_DISABLE_TYPECHECK /* our definitions below, not gcc's checking macros */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define CURL_SONAME "libcurl.so.4" /* libcurl's ABI since 7.16 (2006) */

/* X(return type, name, parameter list, argument list) for functions returning a value;
 * V(name, parameter list, argument list) for void ones. Every row becomes a field of
 * `real` and a trampoline of the same name. */
#define CURL_FNS(X, V)                                                                             \
    X(CURL *, curl_easy_init, (void), ())                                                          \
    V(curl_easy_cleanup, (CURL * h), (h))                                                          \
    X(CURLcode, curl_easy_perform, (CURL * h), (h))                                                \
    X(CURLcode, curl_easy_pause, (CURL * h, int bitmask), (h, bitmask))                            \
    X(const char *, curl_easy_strerror, (CURLcode c), (c))                                         \
    X(CURLM *, curl_multi_init, (void), ())                                                        \
    X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))                                             \
    X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * h), (m, h))                             \
    X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * h), (m, h))                          \
    X(CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void *p), (m, s, p))              \
    X(CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int ev, int *running),     \
      (m, s, ev, running))                                                                         \
    X(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))                      \
    X(CURLMcode, curl_multi_poll,                                                                  \
      (CURLM * m, struct curl_waitfd * fds, unsigned int n, int ms, int *ret),                     \
      (m, fds, n, ms, ret))                                                                        \
    X(CURLMcode, curl_multi_wakeup, (CURLM * m), (m))                                              \
    X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))                          \
    X(const char *, curl_multi_strerror, (CURLMcode c), (c))                                       \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))      \
    V(curl_slist_free_all, (struct curl_slist * l), (l))                                           \
    V(curl_free, (void *p), (p))                                                                   \
    X(CURLU *, curl_url, (void), ())                                                               \
    V(curl_url_cleanup, (CURLU * u), (u))                                                          \
    X(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned int flags),       \
      (u, what, part, flags))                                                                      \
    X(CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned int flags),  \
      (u, what, part, flags))

#define FIELD(ret, name, params, args) ret(*name) params;
#define FIELD_V(name, params, args) void(*name) params;
static struct {
    CURL_FNS(FIELD, FIELD_V)
    CURLcode (*curl_global_init)(long flags);
    void (*curl_global_cleanup)(void);
    /* Variadic: each call passes one argument after the option (see setopt below). */
    CURLcode (*curl_easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLMcode (*curl_multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLcode (*curl_easy_getinfo)(CURL *h, CURLINFO info, ...);
} real; /* written once under `once`, read-only after */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool loaded;                           /* real is filled, curl_global_init ran */
static atomic_long init_flags = CURL_GLOBAL_DEFAULT; /* what curl_global_init asked for */

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "fatal: %s has no %s: %s\n", CURL_SONAME, name, dlerror());
        abort();
    }
    return p;
}

static void load(void)
{
    /* RTLD_LOCAL: libcurl's calls to its own API bind inside it, never to us. */
    void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "fatal: cannot load libcurl (https upstreams need it): %s\n", dlerror());
        abort();
    }
#define LOAD(ret, name, params, args) real.name = (ret(*) params)sym(lib, #name);
#define LOAD_V(name, params, args) real.name = (void(*) params)sym(lib, #name);
    CURL_FNS(LOAD, LOAD_V)
    LOAD(CURLcode, curl_global_init, (long), ())
    LOAD_V(curl_global_cleanup, (void), ())
    LOAD(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...), ())
    LOAD(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...), ())
    LOAD(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...), ())
    CURLcode rc = real.curl_global_init(atomic_load(&init_flags));
    if (rc != CURLE_OK) {
        fprintf(stderr, "fatal: curl_global_init: %s\n", real.curl_easy_strerror(rc));
        abort();
    }
    atomic_store(&loaded, true);
}

static void need(void)
{
    pthread_once(&once, load);
}

/* ---- the trampolines ---- */

#define TRAMPOLINE(ret, name, params, args)                                                        \
    ret name params                                                                                \
    {                                                                                              \
        need();                                                                                    \
        return real.name args;                                                                     \
    }
#define TRAMPOLINE_V(name, params, args)                                                           \
    void name params                                                                               \
    {                                                                                              \
        need();                                                                                    \
        real.name args;                                                                            \
    }
CURL_FNS(TRAMPOLINE, TRAMPOLINE_V)

/* Before the load: remember the flags for it; after: the real thing. */
CURLcode curl_global_init(long flags)
{
    if (atomic_load(&loaded))
        return real.curl_global_init(flags);
    atomic_store(&init_flags, flags);
    return CURLE_OK;
}

void curl_global_cleanup(void)
{
    if (atomic_load(&loaded))
        real.curl_global_cleanup();
}

/* The type of the one argument after a setopt option: its number says
 * (curl.h, CURLOPTTYPE_*), for easy and multi options alike. */
enum argtype { ARG_LONG, ARG_PTR, ARG_FN, ARG_OFF };

static enum argtype argtype(long opt)
{
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        return ARG_LONG;
    if (opt < CURLOPTTYPE_FUNCTIONPOINT)
        return ARG_PTR; /* also strings, slists, callback data */
    if (opt < CURLOPTTYPE_OFF_T)
        return ARG_FN;
    if (opt < CURLOPTTYPE_BLOB)
        return ARG_OFF;
    return ARG_PTR; /* struct curl_blob * */
}

typedef void (*any_fn)(void);

/* va_arg with the type curl itself reads the argument as (lib/setopt.c). */
#define FORWARD_SETOPT(fn, h, opt, ap)                                                             \
    (argtype(opt) == ARG_LONG  ? fn(h, opt, va_arg(ap, long))                                      \
     : argtype(opt) == ARG_PTR ? fn(h, opt, va_arg(ap, void *))                                    \
     : argtype(opt) == ARG_FN  ? fn(h, opt, va_arg(ap, any_fn))                                    \
                               : fn(h, opt, va_arg(ap, curl_off_t)))

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    va_list ap;
    need();
    va_start(ap, opt);
    CURLcode rc = FORWARD_SETOPT(real.curl_easy_setopt, h, opt, ap);
    va_end(ap);
    return rc;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
    va_list ap;
    need();
    va_start(ap, opt);
    CURLMcode rc = FORWARD_SETOPT(real.curl_multi_setopt, m, opt, ap);
    va_end(ap);
    return rc;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    va_list ap;
    need();
    va_start(ap, info);
    CURLcode rc = real.curl_easy_getinfo(h, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}
