/* SPDX-License-Identifier: MIT */
/*
 * eventstream_test.c - unit tests for the AWS event-stream decoder: the
 * aws-c-event-stream reference messages, every header type through the
 * encoder, CRC and length errors, limits, split invariance, zero-copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "provider/eventstream.h"

/* Three messages from aws-c-event-stream's tests: empty, payload only, one string header. */
static const unsigned char ref3[] = {
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff,
    0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36, 0x00, 0x00, 0x00,
    0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C, 'c',  'o',  'n',  't',  'e',  'n',
    't',  '-',  't',  'y',  'p',  'e',  0x07, 0x00, 0x10, 'a',  'p',  'p',  'l',  'i',  'c',  'a',
    't',  'i',  'o',  'n',  '/',  'j',  's',  'o',  'n',  0x7b, 0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a,
    0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8D, 0x9C, 0x08, 0xB1,
};

struct rec {
    struct sb_buf out; /* "name=type:value;..." "|payload\n" per message */
    int count;
    int stop_at;
    const char *input;
    size_t input_len;
    int zero_copy;
};

static int on_msg(void *ud, const struct sb_eventstream_msg *m)
{
    struct rec *r = ud;
    r->count++;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct sb_eventstream_header *h = &m->headers[i];
        sb_buf_printf(&r->out, "%.*s=%d:", SB_FMT(h->name), (int)h->type);
        if (h->value.len)
            sb_buf_printf(&r->out, "[%zu]%.*s;", h->value.len,
                          h->type == SB_EVENTSTREAM_UUID ? 0 : (int)h->value.len, h->value.p);
        else
            sb_buf_printf(&r->out, "%lld;", (long long)h->num);
    }
    sb_buf_printf(&r->out, "|%.*s|%.*s|%.*s|%.*s\n", SB_FMT(m->event_type), SB_FMT(m->message_type),
                  SB_FMT(m->exception_type), SB_FMT(m->payload));
    if (r->input && m->payload.len && m->payload.p >= r->input &&
        m->payload.p < r->input + r->input_len)
        r->zero_copy++;
    return (r->stop_at && r->count == r->stop_at) ? 66 : 0;
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    sb_buf_init(&r->out, 0);
    sb_buf_append_char(&r->out, 'x');
    sb_buf_reset(&r->out);
}

static sb_err run(const void *s, size_t len, size_t step, size_t max, struct rec *r)
{
    struct sb_eventstream d;
    struct sb_error err;
    sb_err rc = SB_OK;
    sb_eventstream_init(&d, max);
    if (step == 0)
        step = len ? len : 1;
    for (size_t i = 0; i < len && rc == SB_OK; i += step)
        rc = sb_eventstream_feed(&d, (const char *)s + i, len - i < step ? len - i : step, on_msg,
                                 r, &err);
    if (rc == SB_OK)
        rc = sb_eventstream_finish(&d, &err);
    sb_eventstream_free(&d);
    return rc;
}

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(sb_eventstream_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(sb_eventstream_crc32(0, "", 0), 0);
    uint32_t part = sb_eventstream_crc32(0, "1234", 4);
    assert_int_equal(sb_eventstream_crc32(part, "56789", 5), 0xCBF43926u);
}

static void test_reference_messages(void **state)
{
    (void)state;
    const char *want = "||||\n"
                       "||||{'foo':'bar'}\n"
                       "content-type=7:[16]application/json;||||{'foo':'bar'}\n";
    for (size_t step = 0; step <= sizeof(ref3); step++) {
        struct rec r;
        rec_init(&r);
        assert_int_equal(run(ref3, sizeof(ref3), step, 0, &r), SB_OK);
        assert_string_equal(r.out.p, want);
        sb_buf_free(&r.out);
    }
}

static void test_all_header_types(void **state)
{
    (void)state;
    static const char uuid[16] = "0123456789abcdef";
    struct sb_eventstream_header h[] = {
        {SB_SLICE(":event-type"), SB_EVENTSTREAM_STRING, SB_SLICE("contentBlockDelta"), 0},
        {SB_SLICE(":message-type"), SB_EVENTSTREAM_STRING, SB_SLICE("event"), 0},
        {SB_SLICE("t"), SB_EVENTSTREAM_BOOL_TRUE, SB_SLICE_NULL, 1},
        {SB_SLICE("f"), SB_EVENTSTREAM_BOOL_FALSE, SB_SLICE_NULL, 0},
        {SB_SLICE("b"), SB_EVENTSTREAM_BYTE, SB_SLICE_NULL, -5},
        {SB_SLICE("s"), SB_EVENTSTREAM_SHORT, SB_SLICE_NULL, -300},
        {SB_SLICE("i"), SB_EVENTSTREAM_INT, SB_SLICE_NULL, -70000},
        {SB_SLICE("l"), SB_EVENTSTREAM_LONG, SB_SLICE_NULL, -5000000000LL},
        {SB_SLICE("bin"), SB_EVENTSTREAM_BYTES, SB_SLICE("\x01\x02"), 0},
        {SB_SLICE("ts"), SB_EVENTSTREAM_TIMESTAMP, SB_SLICE_NULL, 1440938160000LL},
        {SB_SLICE("u"), SB_EVENTSTREAM_UUID, {uuid, 16}, 0},
        {SB_SLICE("empty"), SB_EVENTSTREAM_STRING, SB_SLICE_NULL, 0},
    };
    struct sb_buf enc;
    sb_buf_init(&enc, 0);
    assert_int_equal(sb_eventstream_encode(&enc, h, sizeof(h) / sizeof(h[0]),
                                           SB_SLICE("{\"delta\":{\"text\":\"Hi\"}}")),
                     SB_OK);
    struct rec r;
    rec_init(&r);
    assert_int_equal(run(enc.p, enc.len, 0, 0, &r), SB_OK);
    assert_string_equal(r.out.p, ":event-type=7:[17]contentBlockDelta;:message-type=7:[5]event;"
                                 "t=0:1;f=1:0;b=2:-5;s=3:-300;i=4:-70000;l=5:-5000000000;"
                                 "bin=6:[2]\x01\x02;ts=8:1440938160000;u=9:[16];empty=7:0;"
                                 "|contentBlockDelta|event||{\"delta\":{\"text\":\"Hi\"}}\n");
    sb_buf_free(&r.out);
    sb_buf_free(&enc);
}

static int check_lookup(void *ud, const struct sb_eventstream_msg *m)
{
    (void)ud;
    const struct sb_eventstream_header *h = sb_eventstream_header(m, ":exception-type");
    assert_non_null(h);
    assert_true(sb_slice_eq_cstr(h->value, "throttlingException"));
    assert_true(sb_slice_eq_cstr(m->exception_type, "throttlingException"));
    assert_true(sb_slice_eq_cstr(m->message_type, "exception"));
    assert_null(sb_eventstream_header(m, ":event-type"));
    assert_int_equal(m->event_type.len, 0);
    return 0;
}

static void test_lookup_exception(void **state)
{
    (void)state;
    struct sb_eventstream_header h[] = {
        {SB_SLICE(":message-type"), SB_EVENTSTREAM_STRING, SB_SLICE("exception"), 0},
        {SB_SLICE(":exception-type"), SB_EVENTSTREAM_STRING, SB_SLICE("throttlingException"), 0},
    };
    struct sb_buf enc;
    struct sb_eventstream d;
    struct sb_error err;
    sb_buf_init(&enc, 0);
    assert_int_equal(sb_eventstream_encode(&enc, h, 2, SB_SLICE("{\"message\":\"slow down\"}")),
                     SB_OK);
    sb_eventstream_init(&d, 0);
    assert_int_equal(sb_eventstream_feed(&d, enc.p, enc.len, check_lookup, NULL, &err), SB_OK);
    assert_int_equal(sb_eventstream_finish(&d, &err), SB_OK);
    sb_eventstream_free(&d);
    sb_buf_free(&enc);
}

/* Encodes a message then lets `mutate` damage it; expects `want` from the decoder. */
static void expect_error(size_t at, unsigned char value, sb_err want)
{
    struct sb_eventstream_header h = {SB_SLICE("k"), SB_EVENTSTREAM_STRING, SB_SLICE("v"), 0};
    struct sb_buf enc;
    sb_buf_init(&enc, 0);
    assert_int_equal(sb_eventstream_encode(&enc, &h, 1, SB_SLICE("payload")), SB_OK);
    enc.p[at] = (char)value;
    for (size_t step = 0; step < 4; step++) {
        struct rec r;
        rec_init(&r);
        assert_int_equal(run(enc.p, enc.len, step, 0, &r), want);
        assert_int_equal(r.count, 0);
        sb_buf_free(&r.out);
    }
    sb_buf_free(&enc);
}

static void test_corruption(void **state)
{
    (void)state;
    expect_error(8, 0x00, SB_E_UPSTREAM); /* prelude CRC */
    expect_error(3, 0x30, SB_E_UPSTREAM); /* total length (prelude CRC catches it) */
    expect_error(14, 'X', SB_E_UPSTREAM); /* a header byte: message CRC */
    expect_error(20, 'X', SB_E_UPSTREAM); /* payload: message CRC */
}

/* Builds a message with a valid prelude and message CRC around arbitrary header bytes. */
static void build_raw(struct sb_buf *b, uint32_t total, uint32_t hlen, const void *body, size_t n)
{
    unsigned char pre[12] = {(unsigned char)(total >> 24), (unsigned char)(total >> 16),
                             (unsigned char)(total >> 8),  (unsigned char)total,
                             (unsigned char)(hlen >> 24),  (unsigned char)(hlen >> 16),
                             (unsigned char)(hlen >> 8),   (unsigned char)hlen};
    uint32_t c = sb_eventstream_crc32(0, pre, 8);
    for (int i = 0; i < 4; i++)
        pre[8 + i] = (unsigned char)(c >> (24 - 8 * i));
    sb_buf_reset(b);
    sb_buf_append(b, pre, 12);
    if (n)
        sb_buf_append(b, body, n);
    c = sb_eventstream_crc32(0, b->p, b->len);
    unsigned char crc[4] = {(unsigned char)(c >> 24), (unsigned char)(c >> 16),
                            (unsigned char)(c >> 8), (unsigned char)c};
    sb_buf_append(b, crc, 4);
}

static void test_malformed(void **state)
{
    (void)state;
    struct sb_buf b;
    struct rec r;
    sb_buf_init(&b, 0);
    rec_init(&r);
    build_raw(&b, 16 + 3, 3, "\x01k\x0a", 3); /* type 10 does not exist */
    assert_int_equal(run(b.p, b.len, 0, 0, &r), SB_E_UPSTREAM);
    build_raw(&b, 16 + 3, 3, "\x05k\x07", 3); /* name overruns the headers */
    assert_int_equal(run(b.p, b.len, 0, 0, &r), SB_E_UPSTREAM);
    build_raw(&b, 16 + 5, 5, "\x01k\x07\x00\x09", 5); /* string overruns */
    assert_int_equal(run(b.p, b.len, 0, 0, &r), SB_E_UPSTREAM);
    build_raw(&b, 16 + 3, 3, "\x00k\x00", 3); /* empty name */
    assert_int_equal(run(b.p, b.len, 0, 0, &r), SB_E_UPSTREAM);
    build_raw(&b, 16 + 4, 4, "\x01k\x04\x00", 4); /* int needs 4 bytes */
    assert_int_equal(run(b.p, b.len, 1, 0, &r), SB_E_UPSTREAM);
    build_raw(&b, 12, 0, "", 0); /* total shorter than the overhead */
    assert_int_equal(run(b.p, 12, 0, 0, &r), SB_E_UPSTREAM);
    build_raw(&b, 16, 4, "", 0); /* headers longer than the message */
    assert_int_equal(run(b.p, b.len, 0, 0, &r), SB_E_UPSTREAM);
    assert_int_equal(r.count, 0);
    sb_buf_free(&b);
    sb_buf_free(&r.out);
}

static void test_limits(void **state)
{
    (void)state;
    struct sb_buf b;
    struct rec r;
    char payload[100];
    memset(payload, 'p', sizeof(payload));
    sb_buf_init(&b, 0);
    rec_init(&r);
    assert_int_equal(sb_eventstream_encode(&b, NULL, 0, (struct sb_slice){payload, 100}), SB_OK);
    assert_int_equal(run(b.p, b.len, 0, 115, &r), SB_E_TOO_LARGE);
    assert_int_equal(run(b.p, b.len, 1, 115, &r), SB_E_TOO_LARGE);
    assert_int_equal(run(b.p, b.len, 0, 116, &r), SB_OK);
    /* A huge announced length fails after the prelude, before any buffering. */
    build_raw(&b, 0x7FFFFFFF, 0, "", 0);
    struct sb_eventstream d;
    struct sb_error err;
    sb_eventstream_init(&d, 0);
    assert_int_equal(sb_eventstream_feed(&d, b.p, 12, on_msg, &r, &err), SB_E_TOO_LARGE);
    assert_true(d.msg.cap <= 64);
    assert_int_equal(sb_eventstream_feed(&d, b.p, 12, on_msg, &r, &err), SB_E_TOO_LARGE);
    sb_eventstream_free(&d);
    sb_buf_free(&b);
    sb_buf_free(&r.out);
}

static void test_finish_and_stop(void **state)
{
    (void)state;
    struct sb_eventstream d;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    sb_eventstream_init(&d, 0);
    assert_int_equal(sb_eventstream_feed(&d, (const char *)ref3, 20, on_msg, &r, &err), SB_OK);
    assert_int_equal(r.count, 1);
    assert_int_equal(sb_eventstream_finish(&d, &err), SB_E_UPSTREAM);
    sb_eventstream_free(&d);
    r.stop_at = 2;
    r.count = 0;
    assert_int_equal(run(ref3, sizeof(ref3), 0, 0, &r), 66);
    assert_int_equal(r.count, 2);
    sb_buf_free(&r.out);
}

static void test_zero_copy(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r);
    r.input = (const char *)ref3;
    r.input_len = sizeof(ref3);
    assert_int_equal(run(ref3, sizeof(ref3), 0, 0, &r), SB_OK);
    assert_int_equal(r.zero_copy, 2);
    r.zero_copy = 0;
    assert_int_equal(run(ref3, sizeof(ref3), 20, 0, &r), SB_OK);
    assert_int_equal(r.zero_copy, 0);
    sb_buf_free(&r.out);
}

static void test_split_invariance(void **state)
{
    (void)state;
    struct rec whole;
    rec_init(&whole);
    assert_int_equal(run(ref3, sizeof(ref3), 0, 0, &whole), SB_OK);
    for (size_t a = 0; a <= sizeof(ref3); a++) {
        for (size_t b = a; b <= sizeof(ref3); b++) {
            struct sb_eventstream d;
            struct sb_error err;
            struct rec r;
            const char *s = (const char *)ref3;
            rec_init(&r);
            sb_eventstream_init(&d, 0);
            assert_int_equal(sb_eventstream_feed(&d, s, a, on_msg, &r, &err), SB_OK);
            assert_int_equal(sb_eventstream_feed(&d, s + a, b - a, on_msg, &r, &err), SB_OK);
            assert_int_equal(sb_eventstream_feed(&d, s + b, sizeof(ref3) - b, on_msg, &r, &err),
                             SB_OK);
            assert_int_equal(sb_eventstream_finish(&d, &err), SB_OK);
            assert_string_equal(r.out.p, whole.out.p);
            sb_eventstream_free(&d);
            sb_buf_free(&r.out);
        }
    }
    sb_buf_free(&whole.out);
}

static void test_encode_rejects(void **state)
{
    (void)state;
    struct sb_buf b;
    sb_buf_init(&b, 0);
    struct sb_eventstream_header bad[] = {
        {SB_SLICE(""), SB_EVENTSTREAM_STRING, SB_SLICE("v"), 0},
        {SB_SLICE("u"), SB_EVENTSTREAM_UUID, SB_SLICE("short"), 0},
        {SB_SLICE("x"), (enum sb_eventstream_type)11, SB_SLICE_NULL, 0},
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sb_eventstream_encode(&b, &bad[i], 1, SB_SLICE_NULL), SB_E_BAD_REQUEST);
    assert_int_equal(b.len, 0);
    struct sb_buf small;
    sb_buf_init(&small, 10);
    assert_int_equal(sb_eventstream_encode(&small, NULL, 0, SB_SLICE_NULL), SB_E_TOO_LARGE);
    sb_buf_free(&small);
    sb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_reference_messages),
        cmocka_unit_test(test_all_header_types),
        cmocka_unit_test(test_lookup_exception),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_finish_and_stop),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_split_invariance),
        cmocka_unit_test(test_encode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
