/* SPDX-License-Identifier: MIT */
/*
 * usage.c - the usage queue, its writer thread and the spill journal's
 * replay (see usage.h for what is guaranteed).
 *
 * Two byte arrays take turns: producers append packed rows (struct packed:
 * only the bytes a row uses, about 150 of the struct's 520) to `queue`
 * under the mutex; the writer swaps it with its own emptied `spare` (its
 * "hand") under the same mutex and writes the records with the lock
 * released, so a worker's submit costs a pack outside the lock, one memcpy
 * of the packed bytes and an uncontended lock however slow the database
 * is. The writer wakes every FLUSH_MS, or early when WAKE_ROWS are
 * waiting: waking it per request would cost two context switches and a
 * one-row transaction each (measured: a quarter of the gateway's CPU at c1).
 *
 * Bounded memory. The queue takes at most max_rows records and max_bytes
 * bytes; the hand is a former queue, so memory holds at most twice the cap.
 * A submit that finds the queue full appends its record to the journal
 * itself. That is one encode and one write() into the page cache under
 * the journal's mutex, never an fsync (the writer syncs it on its next
 * round). Measured (usage_test.c prints it; shared 2-core box, 4 threads,
 * cap 500, 40,000 rows nearly all overflowing): 6 us per submit on
 * average, against well under 1 us for the queue; the worst single submit
 * took ~20 ms (the journal's creation, which syncs its header and
 * directory under the mutex, and CPU contention). It happens only while
 * the writer is stuck inside a database call (SQLite waits up to its 5 s
 * busy timeout) with a full queue behind it. Blocking the worker instead
 * would stall every request on that loop for seconds; dropping would lose
 * usage.
 *
 * Spill and replay. While the journal holds records (`spilling`), the
 * writer appends each round's records to it instead of the database, so
 * the database receives records in journal order, and, once the journal is
 * replayed, in submission order. (The one exception: records that overflow
 * a full queue enter the journal ahead of the up to two caps of older
 * records then in memory.) The first failed batch switches to spilling; the
 * failed batch and the rest of its round go to the journal, there is no
 * sleep-and-retry. Every RETRY_MS the writer replays: it reads REPLAY_BATCH
 * records and inserts them together with the replay mark "<journal id>:
 * <offset past them>" in ONE transaction (sb_store_write_usage). The
 * mark is read back before each replay session and records before it are
 * skipped, so a batch whose commit landed but was reported failed, or a
 * crash between the commit and the journal's removal, never inserts twice.
 * A new journal has a new random id, so an old mark never matches it.
 *
 * Audit records ride in a second pair of arrays under the same mutex and
 * go first in each round (a control-plane change should be on disk first).
 * Each is one heap block holding its strings, freed after its round.
 *
 * One commit per batch. The writer unpacks BATCH rows at a time into an
 * array the store binds from, and writes them in one transaction
 * (sb_store_write_usage); the round's last transaction also raises
 * last_used_at of the keys and models the round used. The raises had been
 * two transactions of their own per round.
 *
 * Many workers share the one mutex (DESIGN.md 1.7 has the arithmetic for
 * 32): it is held for one memcpy of ~150 bytes and a few counters, and a
 * single writer, at ~2 us of SQLite per row, saturates long before it.
 */
#include "store/usage.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/identity.h"
#include "store/store.h"
#include "store/usage_journal.h"

/* Rows per transaction. Each commit costs a fixed share (the WAL frames of
 * the pages it touched, which rewrite the same half-filled leaf pages, and
 * the lock calls), so fewer commits make a row cheaper: the writer's CPU per
 * row (bench/usage_bench, 10k rows/s, a WAL file, schedstat) was 4.6-5.2 us
 * at 64, 3.0-3.3 us at 256 and 2.9-3.0 us at 1024. 256 takes most of it and
 * keeps a transaction near a millisecond, short enough to yield the core
 * between them. */
#define BATCH 256
#define REPLAY_BATCH 64 /* records per replay transaction (journal reads, marks) */
#define FLUSH_MS 100   /* longest a row waits in the queue under light load */
#define WAKE_ROWS 1024 /* queued rows that wake the writer before FLUSH_MS */
#define KEEP_BYTES (256u << 10)     /* array kept between rounds (WAKE_ROWS fit); more is freed */
#define MIN_BYTES (16u << 10)       /* a queue's first allocation */
#define AUDIT_FIELD_MAX (64 * 1024) /* longer before/after JSON is replaced (usage.h) */
#define MAX_ROWS 65536              /* default queue cap, records */
#define MAX_BYTES (16u << 20)       /* default queue cap, bytes (~100k packed usage rows) */
#define RETRY_MS 1000               /* between replay attempts on a failing database */
#define REPLAY_BATCHES 64           /* replay transactions per round, then the queue's turn */
#define SPILL_CHUNK 256             /* records per journal write() */
/* Pacing. While few requests are in flight, each is as slow as what else
 * the core runs meanwhile: a 256-row transaction (0.2-0.6 ms) is that much
 * added to the request it overlaps, the whole of the c1 tail in `make bench`
 * (added p99 344-366 us with the writer, 49 us without, nginx 50-110). Then
 * the insert yields the core every PACE_ROWS rows (~20 us of work). Under
 * load requests queue anyway, and the yields would cost a context switch
 * each (about 1 us more writer CPU per row at 8), so it does not. */
#define PACE_INFLIGHT 4 /* requests in flight at or under which the writer paces */
#define PACE_ROWS 8     /* rows between yields when pacing */

/*
 * The queue holds usage rows packed: this head, then the row's strings back
 * to back, padded to a multiple of 8 bytes. A gateway row is about 150
 * bytes where struct sb_usage, whose fixed arrays are mostly empty, is 520:
 * a writer stalled for half a second at one worker's saturation held 4.3
 * MB of queue before, about a third now (DESIGN.md 7). In memory only: the
 * journal has its own, canonical encoding (usage_journal.c).
 */
struct packed {
    int64_t ts_ms, prompt_tokens, completion_tokens;
    double cost_usd, latency_ms, ttft_ms;
    int32_t http_status, fallbacks;
    bool streamed;
    uint8_t len[9]; /* each string's bytes, in the order of pstrs[] (every array < 256) */
};

#define PSTR(f)                                                                                    \
    {                                                                                              \
        offsetof(struct sb_usage, f), sizeof(((struct sb_usage *)0)->f)                            \
    }

/* The string fields of a usage row, in packed order. */
static const struct {
    size_t off, size;
} pstrs[] = {PSTR(request_id), PSTR(user_id), PSTR(key_id), PSTR(route),     PSTR(provider),
             PSTR(model),      PSTR(variant), PSTR(status), PSTR(error_code)};

#define NPSTRS (sizeof(pstrs) / sizeof(pstrs[0]))
_Static_assert(sizeof(((struct packed *)0)->len) == NPSTRS, "one length per string field");
/* The largest packed row: the head and every array full but for its NUL. */
#define PACKED_MAX (sizeof(struct packed) + sizeof(struct sb_usage))

struct rows {
    unsigned char *p; /* packed rows back to back */
    size_t len, cap;  /* bytes */
    size_t n;         /* rows */
};

struct audits {
    struct sb_audit *p; /* each element's strings live in one malloc block at p[i].actor */
    size_t n, cap;
};

struct sb_usage_writer {
    struct sb_store *store; /* owned; used only by the writer thread */
    struct sb_uj *journal;  /* owned; NULL = none */
    pthread_t thread;
    pthread_mutex_t mu;   /* guards queue, aqueue, qbytes and stopping */
    pthread_cond_t wake;  /* signalled when a batch is waiting or on stop */
    struct rows queue;    /* filled by submit */
    struct rows spare;    /* the writer's hand; empty between rounds */
    struct audits aqueue; /* audit records filled by submit_audit */
    struct audits aspare; /* the writer's */
    size_t qbytes;        /* bytes queue and aqueue hold */
    size_t max_rows;      /* queue cap, records (usage and audit together) */
    size_t max_bytes;     /* queue cap, bytes */
    long (*inflight)(void); /* requests in flight now, NULL = never pace */
    bool stopping;        /* stop() called: drain, then exit */
    /* The writer thread's own. */
    bool spilling;     /* the journal holds records the database lacks */
    int64_t retry_at;  /* monotonic ms of the next replay attempt */
    struct sb_buf enc; /* journal encoding buffer */
    struct sb_usage *batch; /* BATCH rows unpacked for the store; allocated at the first round */
    struct uses *uses;      /* last-use raises not yet written */
    _Atomic uint64_t written;
    _Atomic uint64_t lost;
    _Atomic uint64_t audit_written;
    _Atomic uint64_t audit_lost;
    _Atomic uint64_t in_memory; /* records in queue, aqueue and the hand */
    _Atomic uint64_t peak;      /* most records queue + aqueue held */
    _Atomic uint64_t spilled;   /* records appended to the journal */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Loud, but not once per row: the first loss and every 10,000th after it. */
static void count_lost(_Atomic uint64_t *counter, uint64_t n, const char *what, const char *why)
{
    uint64_t before = atomic_fetch_add(counter, n);
    if (before == 0 || before / 10000 != (before + n) / 10000)
        sb_error("msg=\"%s lost\" rows=%" PRIu64 " total=%" PRIu64 " err=\"%s\"", what, n,
                 before + n, why);
}

/* ---- packed rows ---- */

/* Packs u into out (PACKED_MAX bytes); returns the bytes used, a multiple of 8. */
static size_t pack(const struct sb_usage *u, unsigned char *out)
{
    struct packed h = {
        u->ts_ms,   u->prompt_tokens, u->completion_tokens, u->cost_usd, u->latency_ms,
        u->ttft_ms, u->http_status,   u->fallbacks,         u->streamed, {0}};
    size_t at = sizeof(h);
    for (size_t i = 0; i < NPSTRS; i++) {
        const char *f = (const char *)u + pstrs[i].off;
        size_t n = strnlen(f, pstrs[i].size - 1); /* the NUL is not packed */
        h.len[i] = (uint8_t)n;
        memcpy(out + at, f, n);
        at += n;
    }
    memcpy(out, &h, sizeof(h));
    size_t padded = (at + 7) & ~(size_t)7;
    memset(out + at, 0, padded - at);
    return padded;
}

/* Unpacks the row at p into *u (its strings NUL-terminated, the rest of
 * each array left as it was: the store reads up to the NUL); returns the
 * packed row's bytes. */
static size_t unpack(const unsigned char *p, struct sb_usage *u)
{
    struct packed h;
    memcpy(&h, p, sizeof(h));
    u->ts_ms = h.ts_ms;
    u->prompt_tokens = h.prompt_tokens;
    u->completion_tokens = h.completion_tokens;
    u->cost_usd = h.cost_usd;
    u->latency_ms = h.latency_ms;
    u->ttft_ms = h.ttft_ms;
    u->http_status = h.http_status;
    u->fallbacks = h.fallbacks;
    u->streamed = h.streamed;
    size_t at = sizeof(h);
    for (size_t i = 0; i < NPSTRS; i++) {
        char *f = (char *)u + pstrs[i].off;
        memcpy(f, p + at, h.len[i]);
        f[h.len[i]] = '\0';
        at += h.len[i];
    }
    return (at + 7) & ~(size_t)7;
}

/* ---- the journal side ---- */

/* Appends encoded records in chunks; each failed chunk is counted lost. */
static void spill_flush(struct sb_usage_writer *w, size_t nrows, size_t naudits)
{
    struct sb_error err = {0};
    if (nrows + naudits == 0)
        return;
    if (w->journal &&
        sb_uj_append(w->journal, w->enc.p, w->enc.len, nrows + naudits, &err) == SB_OK) {
        atomic_fetch_add(&w->spilled, nrows + naudits);
    } else {
        const char *why = w->journal ? err.msg : "no journal configured";
        if (nrows)
            count_lost(&w->lost, nrows, "usage rows", why);
        if (naudits)
            count_lost(&w->audit_lost, naudits, "audit records", why);
    }
    sb_buf_reset(&w->enc);
}

static void spill_rows(struct sb_usage_writer *w, const struct sb_usage *rows, size_t n)
{
    for (size_t off = 0; off < n; off += SPILL_CHUNK) {
        size_t k = n - off < SPILL_CHUNK ? n - off : SPILL_CHUNK;
        for (size_t i = 0; i < k; i++)
            sb_uj_encode_usage(&w->enc, &rows[off + i]);
        spill_flush(w, k, 0);
    }
}

static void spill_audits(struct sb_usage_writer *w, const struct sb_audit *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sb_uj_encode_audit(&w->enc, &a[i]);
        if ((i + 1) % SPILL_CHUNK == 0 || i + 1 == n)
            spill_flush(w, 0, (i % SPILL_CHUNK) + 1);
    }
}

/* True when the journal holds records the database has not taken. */
static bool journal_pending(struct sb_usage_writer *w)
{
    uint64_t recs = 0, bytes = 0;
    if (!w->journal)
        return false;
    sb_uj_pending(w->journal, &recs, &bytes);
    return recs > 0 || bytes > 0;
}

/* ---- the database side ---- */

/*
 * Last-use raises (api_keys.last_used_at, models.last_used_at) not written
 * yet. They ride in a round's last transaction, not in each batch's: every
 * transaction that carries them rewrites the keys' and models' pages, and a
 * round at saturation is four batches (bench/usage_bench, writer CPU per
 * row: 2.07-2.21 us carried by every batch, 1.90-2.10 by the last, 1.88-1.99
 * with no raises at all). A failed transaction keeps them for
 * the next; past USES_MAX distinct keys or models pending, more are not
 * recorded (the key's or model's next use raises it).
 */
#define USES_MAX (2 * BATCH)
#define MODEL_MAX sizeof(((struct sb_usage *)0)->model)

struct uses {
    struct sb_store_key_use keys[USES_MAX];
    struct sb_store_model_use models[USES_MAX]; /* .model points into names */
    char names[USES_MAX][MODEL_MAX];
    size_t nkeys, nmodels;
};

/* usage key_id is the key's row id in decimal, empty for the admin token. */
static void use_key(struct uses *us, const struct sb_usage *u)
{
    unsigned long long id = 0;
    struct sb_slice k = {u->key_id, strnlen(u->key_id, sizeof(u->key_id))};
    if (!sb_slice_to_u64(k, &id) || id > INT64_MAX)
        return;
    size_t j = 0;
    while (j < us->nkeys && us->keys[j].key_id != (int64_t)id)
        j++;
    if (j == us->nkeys && j < USES_MAX)
        us->keys[us->nkeys++] = (struct sb_store_key_use){(int64_t)id, u->ts_ms};
    else if (j < us->nkeys && u->ts_ms > us->keys[j].ts_ms)
        us->keys[j].ts_ms = u->ts_ms;
}

/* A model that never answered was not used: only ok rows count. */
static void use_model(struct uses *us, const struct sb_usage *u)
{
    if (!u->model[0] || strcmp(u->status, "ok") != 0)
        return;
    size_t j = 0;
    while (j < us->nmodels && strcmp(us->models[j].model, u->model) != 0)
        j++;
    if (j == us->nmodels && j < USES_MAX) {
        snprintf(us->names[j], MODEL_MAX, "%s", u->model);
        us->models[us->nmodels++] = (struct sb_store_model_use){us->names[j], u->ts_ms};
    } else if (j < us->nmodels && u->ts_ms > us->models[j].ts_ms) {
        us->models[j].ts_ms = u->ts_ms;
    }
}

static void uses_add(struct uses *us, const struct sb_usage *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        use_key(us, &rows[i]);
        use_model(us, &rows[i]);
    }
}

/* tx carries every pending raise. */
static void uses_into(const struct uses *us, struct sb_store_usage_tx *tx)
{
    tx->keys = us->keys;
    tx->nkeys = us->nkeys;
    tx->models = us->models;
    tx->nmodels = us->nmodels;
}

/* The database failed: from now on records go to the journal until replayed. */
static void start_spilling(struct sb_usage_writer *w, const char *why)
{
    if (!w->spilling)
        sb_warn("msg=\"database refused usage records%s\" err=\"%s\"",
                w->journal ? ": spilling to the journal" : "", why);
    w->spilling = w->journal != NULL;
    w->retry_at = now_ms() + RETRY_MS;
}

/* Rows rows[0..n) in one transaction, with the pending raises when carry
 * is set (the round's last batch) or they are many. False when the database
 * failed (nothing was stored; the raises stay pending). */
static bool db_rows(struct sb_usage_writer *w, const struct sb_usage *rows, size_t n, bool carry)
{
    struct sb_error err = {0};
    struct sb_store_usage_tx tx = {.rows = rows, .n = n};
    uses_add(w->uses, rows, n);
    if (carry || w->uses->nkeys > BATCH || w->uses->nmodels > BATCH)
        uses_into(w->uses, &tx);
    if (sb_store_write_usage(w->store, &tx, &err) != SB_OK) {
        start_spilling(w, err.msg);
        return false;
    }
    if (tx.keys)
        w->uses->nkeys = w->uses->nmodels = 0;
    atomic_fetch_add(&w->written, n);
    return true;
}

static bool db_audits(struct sb_usage_writer *w, const struct sb_audit *a, size_t n)
{
    struct sb_error err = {0};
    if (sb_store_audit_insert(w->store, a, n, &err) == SB_OK) {
        atomic_fetch_add(&w->audit_written, n);
        return true;
    }
    if (err.code == SB_E_BAD_REQUEST) {
        count_lost(&w->audit_lost, n, "audit records (refused by the schema)", err.msg);
        return true; /* retrying or journaling cannot help */
    }
    start_spilling(w, err.msg);
    return false;
}

/* Writes the hand: to the database while it takes writes, else (and from
 * the first failed batch on) to the journal. */
static void write_hand(struct sb_usage_writer *w, struct audits *a, const struct rows *r)
{
    size_t ai = 0;
    for (; !w->spilling && ai < a->n; ai += BATCH)
        if (!db_audits(w, a->p + ai, a->n - ai < BATCH ? a->n - ai : BATCH))
            break;
    if (ai < a->n)
        spill_audits(w, a->p + ai, a->n - ai);
    if (r->n == 0)
        return; /* r->p may be NULL: no pointer arithmetic on it */
    if (!w->batch)
        w->batch = sb_xmalloc(BATCH * sizeof(*w->batch));
    for (const unsigned char *at = r->p, *end = r->p + r->len; at < end;) {
        size_t n = 0;
        for (; n < BATCH && at < end; n++)
            at += unpack(at, &w->batch[n]);
        if (w->spilling) {
            spill_rows(w, w->batch, n);
            continue;
        }
        bool pace = w->inflight && w->inflight() <= PACE_INFLIGHT;
        sb_store_usage_pace(w->store, pace ? PACE_ROWS : 0);
        if (db_rows(w, w->batch, n, at == end))
            sched_yield(); /* a worker waiting for this core gets it now, not after the backlog */
        else
            spill_rows(w, w->batch, n); /* and, spilling now, every later batch */
    }
}

/* ---- replay ---- */


struct replay {
    struct sb_uj_rec recs[REPLAY_BATCH];
    uint64_t ends[REPLAY_BATCH];
    struct sb_usage rows[REPLAY_BATCH];
    struct sb_audit audits[REPLAY_BATCH];
    uint64_t skip_to; /* records ending at or before it are in the database */
};

/* Inserts records [from, to) of the batch with the mark past record to-1. */
static sb_err insert_range(struct sb_usage_writer *w, struct replay *rp, size_t from, size_t to,
                           struct sb_error *err)
{
    size_t nr = 0, na = 0;
    char mark[64];
    for (size_t i = from; i < to; i++) {
        if (rp->ends[i] <= rp->skip_to)
            continue; /* committed before (the mark says so) */
        if (rp->recs[i].type == SB_UJ_USAGE)
            rp->rows[nr++] = rp->recs[i].usage;
        else
            rp->audits[na++] = rp->recs[i].audit;
    }
    if (nr + na == 0)
        return SB_OK;
    sb_uj_mark(w->journal, rp->ends[to - 1], mark);
    struct sb_store_usage_tx tx = {.rows = rp->rows,
                                   .n = nr,
                                   .audits = rp->audits,
                                   .na = na,
                                   .mark_key = SB_UJ_MARK_KEY,
                                   .mark_value = mark};
    uses_add(w->uses, rp->rows, nr);
    uses_into(w->uses, &tx);
    sb_err rc = sb_store_write_usage(w->store, &tx, err);
    if (rc == SB_OK) {
        w->uses->nkeys = w->uses->nmodels = 0;
        atomic_fetch_add(&w->written, nr);
        atomic_fetch_add(&w->audit_written, na);
    }
    return rc;
}

/* A batch the schema refused: one record at a time; a refused record is
 * passed with a mark-only transaction and counted lost. */
static bool insert_one_by_one(struct sb_usage_writer *w, struct replay *rp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sb_error err = {0};
        char mark[64];
        sb_err rc = insert_range(w, rp, i, i + 1, &err);
        if (rc == SB_E_BAD_REQUEST) {
            count_lost(rp->recs[i].type == SB_UJ_USAGE ? &w->lost : &w->audit_lost, 1,
                       "journaled record (refused by the schema)", err.msg);
            sb_uj_mark(w->journal, rp->ends[i], mark);
            struct sb_store_usage_tx tx = {.mark_key = SB_UJ_MARK_KEY, .mark_value = mark};
            rc = sb_store_write_usage(w->store, &tx, &err);
        }
        if (rc != SB_OK) {
            start_spilling(w, err.msg);
            return false;
        }
        sb_uj_done(w->journal, rp->ends[i], 1);
    }
    return true;
}

/* Reads and inserts one batch. False when the database failed or nothing is left. */
static bool replay_batch(struct sb_usage_writer *w, struct replay *rp, bool *failed)
{
    struct sb_error err = {0};
    size_t n = 0;
    uint64_t next = 0, skipped = 0;
    if (sb_uj_read(w->journal, rp->recs, REPLAY_BATCH, &n, rp->ends, &next, &skipped, &err) !=
        SB_OK) {
        sb_error("msg=\"usage journal unreadable: replay waits\" err=\"%s\"", err.msg);
        w->retry_at = now_ms() + RETRY_MS;
        *failed = true;
        return false;
    }
    if (skipped)
        count_lost(&w->lost, skipped, "journal records (damaged region skipped)", "checksum");
    if (n == 0) {
        sb_uj_done(w->journal, next, 0); /* past damage, if any */
        return false;
    }
    bool ok = true;
    sb_err rc = insert_range(w, rp, 0, n, &err);
    if (rc == SB_OK)
        sb_uj_done(w->journal, next, n);
    else if (rc == SB_E_BAD_REQUEST)
        ok = insert_one_by_one(w, rp, n);
    else {
        ok = false;
        start_spilling(w, err.msg);
    }
    for (size_t i = 0; i < n; i++)
        free(rp->recs[i].block);
    *failed = !ok;
    return ok;
}

/* One replay session: at most max_batches batches (0 = until done). */
static void replay(struct sb_usage_writer *w, int max_batches)
{
    struct sb_error err = {0};
    char *mark = NULL;
    bool failed = false;
    if (sb_store_setting_get(w->store, SB_UJ_MARK_KEY, &mark, &err) != SB_OK) {
        start_spilling(w, err.msg);
        return;
    }
    struct replay *rp = sb_xcalloc(1, sizeof(*rp));
    rp->skip_to = sb_uj_mark_offset(w->journal, mark);
    free(mark);
    for (int b = 0; (max_batches == 0 || b < max_batches) && replay_batch(w, rp, &failed); b++)
        sched_yield();
    free(rp);
    if (!failed && sb_uj_remove_if_done(w->journal)) {
        w->spilling = false;
        sb_info("msg=\"usage journal replayed and removed\" written=%" PRIu64,
                atomic_load(&w->written));
    }
}

/* ---- the writer thread ---- */

static void release_hand(struct sb_usage_writer *w, struct audits *a, struct rows *r)
{
    atomic_fetch_sub(&w->in_memory, a->n + r->n);
    for (size_t i = 0; i < a->n; i++)
        free((void *)a->p[i].actor); /* the block holding all its strings */
    a->n = 0;
    r->n = 0;
    r->len = 0;
    if (r->cap > KEEP_BYTES) {
        free(r->p);
        r->p = NULL;
        r->cap = 0;
    }
}

/* One round: the hand to the database or the journal, a sync, and a replay when due. */
static void write_round(struct sb_usage_writer *w)
{
    struct sb_error err = {0};
    if (!w->spilling && journal_pending(w))
        w->spilling = true; /* a submitter overflowed into it */
    write_hand(w, &w->aspare, &w->spare);
    release_hand(w, &w->aspare, &w->spare);
    if (w->journal && sb_uj_sync(w->journal, &err) != SB_OK)
        sb_error("msg=\"usage journal not synced: a crash now may lose its tail\" err=\"%s\"",
                 err.msg);
    if (w->spilling && now_ms() >= w->retry_at)
        replay(w, REPLAY_BATCHES);
}

static void deadline_in(struct timespec *at, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, at);
    at->tv_nsec += ms * 1000000L;
    at->tv_sec += at->tv_nsec / 1000000000L;
    at->tv_nsec %= 1000000000L;
}

/* Sleeps until a full batch waits, FLUSH_MS passed with records queued or a
 * journal to replay, or stop. */
static void wait_for_work(struct sb_usage_writer *w)
{
    struct timespec at;
    deadline_in(&at, FLUSH_MS);
    while (!w->stopping && w->queue.n < WAKE_ROWS) {
        bool timed_out = pthread_cond_timedwait(&w->wake, &w->mu, &at) != 0;
        if (timed_out && (w->queue.n + w->aqueue.n > 0 || w->spilling))
            return;
        if (timed_out)
            deadline_in(&at, FLUSH_MS); /* idle: restart the period */
    }
}

static void *writer_main(void *arg)
{
    struct sb_usage_writer *w = arg;
    /* No lower priority (nice): on a saturated core a niced writer falls
     * behind for good. Short transactions with a yield between them keep
     * the workers' latency low instead. */
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wait_for_work(w);
        if (w->stopping && w->queue.n == 0 && w->aqueue.n == 0)
            break; /* stopping and drained */
        struct rows t = w->queue;
        w->queue = w->spare;
        w->spare = t;
        struct audits at = w->aqueue;
        w->aqueue = w->aspare;
        w->aspare = at;
        w->qbytes = 0;
        pthread_mutex_unlock(&w->mu);
        write_round(w);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    if (w->spilling) /* one last try, to the end; what fails waits for the next start */
        replay(w, 0);
    return NULL;
}

bool sb_usage_journal_path(const char *db_url, char *out, size_t size)
{
    static const char scheme[] = "sqlite:", suffix[] = ".usage-journal";
    if (strncmp(db_url, scheme, sizeof(scheme) - 1) != 0)
        return false;
    const char *path = db_url + sizeof(scheme) - 1;
    if (strncmp(path, "//", 2) == 0)
        path += 2; /* sqlite:///abs/path, as the store reads it */
    if (!*path || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return false;
    int n = snprintf(out, size, "%s%s", path, suffix);
    return n > 0 && (size_t)n < size;
}

static void writer_free(struct sb_usage_writer *w)
{
    sb_uj_close(w->journal);
    sb_store_close(w->store);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    sb_buf_free(&w->enc);
    free(w->batch);
    free(w->uses);
    free(w->queue.p);
    free(w->spare.p);
    free(w->aqueue.p);
    free(w->aspare.p);
    free(w);
}

struct sb_usage_writer *sb_usage_writer_open(struct sb_store *store, const struct sb_usage_opts *o,
                                             struct sb_error *err)
{
    struct sb_usage_writer *w = sb_xcalloc(1, sizeof(*w));
    w->store = store;
    w->max_rows = o && o->max_rows ? o->max_rows : MAX_ROWS;
    w->max_bytes = o && o->max_bytes ? o->max_bytes : MAX_BYTES;
    w->inflight = o ? o->inflight : NULL;
    w->uses = sb_xcalloc(1, sizeof(*w->uses)); /* 80 KB, touched as far as used */
    sb_buf_init(&w->enc, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (o && o->journal_path && sb_uj_open(o->journal_path, &w->journal, err) != SB_OK) {
        writer_free(w);
        return NULL;
    }
    w->spilling = journal_pending(w); /* replayed first, in the background */
    if (w->journal && !w->spilling)
        sb_uj_remove_if_done(w->journal); /* a header with no records */
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        sb_fail(err, SB_E_INTERNAL, "usage writer: cannot start thread");
        writer_free(w);
        return NULL;
    }
    /* A name in /proc/PID/task/TID/comm (top -H, perf): make bench reads this
     * thread's CPU time to report what usage logging costs. */
    pthread_setname_np(w->thread, "sb-usage");
    return w;
}

struct sb_usage_writer *sb_usage_writer_start(struct sb_store *store, struct sb_error *err)
{
    return sb_usage_writer_open(store, NULL, err);
}

/* Called with mu held: room for one more record of size bytes? */
static bool has_room(struct sb_usage_writer *w, size_t bytes)
{
    size_t n = w->queue.n + w->aqueue.n;
    return n < w->max_rows && w->qbytes + bytes <= w->max_bytes;
}

/* Called with mu held, after a record went in. */
static void queued(struct sb_usage_writer *w, size_t bytes)
{
    w->qbytes += bytes;
    atomic_fetch_add(&w->in_memory, 1);
    uint64_t n = w->queue.n + w->aqueue.n;
    if (n > atomic_load(&w->peak))
        atomic_store(&w->peak, n);
}

/* Called with mu held: room in q for size more bytes (has_room said the cap allows them). */
static void reserve(struct rows *q, size_t size, size_t max_bytes)
{
    if (q->len + size <= q->cap)
        return;
    size_t cap = q->cap ? q->cap : MIN_BYTES;
    while (cap < q->len + size)
        cap *= 2;
    if (cap > max_bytes && q->len + size <= max_bytes)
        cap = max_bytes;
    q->p = sb_xrealloc(q->p, cap);
    q->cap = cap;
}

void sb_usage_submit(struct sb_usage_writer *w, const struct sb_usage *u)
{
    _Alignas(8) unsigned char row[PACKED_MAX];
    size_t size = pack(u, row); /* outside the lock: under it, one memcpy of the bytes used */
    pthread_mutex_lock(&w->mu);
    struct rows *q = &w->queue;
    if (has_room(w, size)) {
        reserve(q, size, w->max_bytes);
        memcpy(q->p + q->len, row, size);
        q->len += size;
        q->n++;
        queued(w, size);
        /* Wake the writer early only for a full batch; otherwise its timer does. */
        if (q->n == WAKE_ROWS)
            pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    pthread_mutex_unlock(&w->mu);
    /* Full: the writer is stuck in a database call. Journal it ourselves. */
    struct sb_error err = {0};
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_uj_encode_usage(&b, u);
    if (w->journal && sb_uj_append(w->journal, b.p, b.len, 1, &err) == SB_OK)
        atomic_fetch_add(&w->spilled, 1);
    else
        count_lost(&w->lost, 1, "usage rows (queue full)",
                   w->journal ? err.msg : "no journal configured");
    sb_buf_free(&b);
}

void sb_usage_writer_stop(struct sb_usage_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    uint64_t recs = 0, bytes = 0;
    if (w->journal)
        sb_uj_pending(w->journal, &recs, &bytes);
    if (recs)
        sb_warn("msg=\"usage journal kept: replayed at the next start\" rows=%" PRIu64, recs);
    writer_free(w);
}

/* C11 atomic_load takes a non-const pointer (fixed only in C17 by DR 459),
 * so the const is cast away for the read; nothing is written. */
#define LOAD(w, f) atomic_load(&((struct sb_usage_writer *)(w))->f)

void sb_usage_stats(struct sb_usage_writer *w, struct sb_usage_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->written = LOAD(w, written);
    out->lost = LOAD(w, lost);
    out->audit_written = LOAD(w, audit_written);
    out->audit_lost = LOAD(w, audit_lost);
    out->queue_rows = LOAD(w, in_memory);
    out->queue_peak = LOAD(w, peak);
    out->spilled = LOAD(w, spilled);
    if (w->journal)
        sb_uj_pending(w->journal, &out->journal_rows, &out->journal_bytes);
}

uint64_t sb_usage_written(const struct sb_usage_writer *w)
{
    return LOAD(w, written);
}

uint64_t sb_usage_failed(const struct sb_usage_writer *w)
{
    return LOAD(w, lost);
}

uint64_t sb_usage_audit_written(const struct sb_usage_writer *w)
{
    return LOAD(w, audit_written);
}

uint64_t sb_usage_audit_failed(const struct sb_usage_writer *w)
{
    return LOAD(w, audit_lost);
}

/* ---- audit ---- */

/* Copies one string field into the block at *at; NULL stays NULL. Strings
 * over AUDIT_FIELD_MAX become repl (the JSON fields) so one huge record
 * cannot stall the writer. */
static const char *copy_field(const char *src, char **at, const char *repl)
{
    if (!src)
        return NULL;
    size_t n = strlen(src);
    if (n > AUDIT_FIELD_MAX) {
        src = repl;
        n = strlen(repl);
    }
    char *dst = *at;
    memcpy(dst, src, n + 1);
    *at += n + 1;
    return dst;
}

static size_t field_size(const char *s, const char *repl)
{
    size_t n = s ? strlen(s) : 0;
    return s ? (n > AUDIT_FIELD_MAX ? strlen(repl) : n) + 1 : 0;
}

/* The store refuses a record without actor or action, or with another
 * outcome, and would lose its whole batch with it: repair here instead. */
static const char *nonempty(const char *s)
{
    return s && *s ? s : "unknown";
}

static const char *outcome(const char *s)
{
    return s && (strcmp(s, "ok") == 0 || strcmp(s, "denied") == 0) ? s : "failed";
}

/* The record with every string in one block (*size bytes), whose start is
 * the actor field. At most 10 x 64 KiB: it fits a journal record. */
static struct sb_audit copy_audit(const struct sb_audit *a, size_t *size)
{
    static const char trunc[] = "{\"truncated\":true}", dots[] = "...";
    const char *const *f[] = {&a->actor,      &a->actor_role, &a->action, &a->target_type,
                              &a->target_id,  &a->before,     &a->after,  &a->ip,
                              &a->request_id, &a->outcome};
    size_t total = 16; /* room for the "unknown" / "failed" repairs */
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        total += field_size(*f[i], i == 5 || i == 6 ? trunc : dots);
    struct sb_audit c = {.ts_ms = a->ts_ms ? a->ts_ms : (int64_t)time(NULL) * 1000};
    char *block = sb_xmalloc(total), *at = block;
    /* actor first: it is the block's start, which release_hand frees. */
    c.actor = copy_field(nonempty(a->actor), &at, dots);
    c.actor_role = copy_field(a->actor_role, &at, dots);
    c.action = copy_field(nonempty(a->action), &at, dots);
    c.target_type = copy_field(a->target_type, &at, dots);
    c.target_id = copy_field(a->target_id, &at, dots);
    c.before = copy_field(a->before, &at, trunc);
    c.after = copy_field(a->after, &at, trunc);
    c.ip = copy_field(a->ip, &at, dots);
    c.request_id = copy_field(a->request_id, &at, dots);
    c.outcome = copy_field(outcome(a->outcome), &at, dots);
    *size = total + sizeof(c);
    return c;
}

void sb_usage_submit_audit(struct sb_usage_writer *w, const struct sb_audit *a)
{
    size_t size = 0;
    struct sb_audit c = copy_audit(a, &size); /* outside the lock: it may be a large copy */
    pthread_mutex_lock(&w->mu);
    struct audits *q = &w->aqueue;
    if (has_room(w, size)) {
        if (q->n == q->cap) {
            q->cap = q->cap ? 2 * q->cap : 16;
            q->p = sb_xrealloc(q->p, q->cap * sizeof(*q->p));
        }
        q->p[q->n++] = c;
        queued(w, size);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    pthread_mutex_unlock(&w->mu);
    struct sb_error err = {0};
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_uj_encode_audit(&b, &c);
    if (w->journal && sb_uj_append(w->journal, b.p, b.len, 1, &err) == SB_OK)
        atomic_fetch_add(&w->spilled, 1);
    else
        count_lost(&w->audit_lost, 1, "audit records (queue full)",
                   w->journal ? err.msg : "no journal configured");
    sb_buf_free(&b);
    free((void *)c.actor);
}
