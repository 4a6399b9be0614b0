/* SPDX-License-Identifier: MIT */
/*
 * when.c - times clients send: ISO-8601 or Unix milliseconds.
 *
 * Accepted: "2030-01-31" (midnight UTC), "2030-01-31T12:00Z",
 * "2030-01-31T12:00:00Z", "2030-01-31T12:00:00.250+02:00" (any fraction
 * length, kept to the millisecond; 'T', 't' or one space between date and
 * time; offsets ±HH:MM or ±HHMM), or a string or JSON number of Unix ms.
 * A time of day without a zone is refused rather than guessed: "local time"
 * on a server is rarely the client's. Years 1970..9999. The calendar
 * arithmetic is our own (days from the civil date), not timegm(), so the
 * result never depends on the process's time zone.
 */
#include <string.h>

#include "api/internal.h"

struct cursor {
    const char *p, *end;
};

/* Exactly n digits as a number, or -1. */
static int digits(struct cursor *c, int n)
{
    int v = 0;
    if (c->end - c->p < n)
        return -1;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return -1;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    return v;
}

static bool eat(struct cursor *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * well-known days_from_civil construction: eras of 400 years). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "HH:MM[:SS[.f+]]" into ms since midnight; false when malformed. */
static bool time_of_day(struct cursor *c, int64_t *ms)
{
    int h = digits(c, 2), mi = eat(c, ':') ? digits(c, 2) : -1, s = 0, frac = 0;
    if (h < 0 || h > 23 || mi < 0 || mi > 59)
        return false;
    if (eat(c, ':'))
        s = digits(c, 2);
    if (s < 0 || s > 59)
        return false;
    if (eat(c, '.') || eat(c, ',')) {
        int n = 0;
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, n++)
            if (n < 3)
                frac = frac * 10 + (*c->p - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac *= 10;
    }
    *ms = ((int64_t)h * 3600 + mi * 60 + s) * 1000 + frac;
    return true;
}

/* "Z" or "±HH[:]MM" into an offset in ms (to subtract); false when malformed. */
static bool zone(struct cursor *c, int64_t *off)
{
    if (eat(c, 'Z') || eat(c, 'z')) {
        *off = 0;
        return true;
    }
    int sign = eat(c, '+') ? 1 : eat(c, '-') ? -1 : 0;
    int h = sign ? digits(c, 2) : -1;
    eat(c, ':');
    int m = h >= 0 ? digits(c, 2) : -1;
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return false;
    *off = sign * ((int64_t)h * 60 + m) * 60000;
    return true;
}

static bool iso(struct cursor *c, int64_t *ms)
{
    int y = digits(c, 4), m = eat(c, '-') ? digits(c, 2) : -1, d = eat(c, '-') ? digits(c, 2) : -1;
    int64_t tod = 0, off = 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return false;
    if (c->p < c->end) {
        if (!eat(c, 'T') && !eat(c, 't') && !eat(c, ' '))
            return false;
        if (!time_of_day(c, &tod) || !zone(c, &off))
            return false;
    }
    *ms = days_from_civil(y, m, d) * 86400000 + tod - off;
    return c->p == c->end && *ms >= 0;
}

sb_err sb__api_parse_time(struct sb_slice s, int64_t *ms, struct sb_error *err)
{
    struct cursor c = {s.p, s.p + s.len};
    unsigned long long u;
    *ms = 0;
    if (s.len && s.len <= 15 && memchr(s.p, '-', s.len) == NULL && sb_slice_to_u64(s, &u)) {
        *ms = (int64_t)u;
        return SB_OK;
    }
    if (s.len && s.len <= 64 && iso(&c, ms))
        return SB_OK;
    *ms = 0;
    return sb_fail(err, SB_E_BAD_REQUEST,
                   "expected an ISO-8601 time with a zone (2030-01-31T12:00:00Z), a date "
                   "(2030-01-31), or Unix milliseconds");
}

sb_err sb__api_body_time(struct sb_api_call *c, const char *key, int64_t *ms)
{
    const struct sb_json *v = c->json ? sb_json_get(c->json, key) : NULL;
    char msg[sizeof(c->err.msg)];
    *ms = 0;
    if (!v || v->type == SB_JSON_NULL)
        return SB_OK;
    struct sb_slice text = v->type == SB_JSON_STRING ? v->str : v->raw;
    if ((v->type == SB_JSON_STRING || v->type == SB_JSON_NUMBER) &&
        sb__api_parse_time(text, ms, &c->err) == SB_OK)
        return SB_OK;
    if (v->type != SB_JSON_STRING && v->type != SB_JSON_NUMBER)
        sb_fail(&c->err, SB_E_BAD_REQUEST, "expected a string or a number");
    memcpy(msg, c->err.msg, sizeof(msg));
    return sb__api_fail(c, SB_E_BAD_REQUEST, key, "%s: %s", key, msg);
}

sb_err sb_api_parse_time(const char *s, int64_t *ms, struct sb_error *err)
{
    return sb__api_parse_time(sb_slice_cstr(s), ms, err);
}
