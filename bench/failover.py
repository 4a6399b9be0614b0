#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""failover.py - `make bench`'s failover rows: what one failover adds.

One keep-alive connection, one request at a time, alternating a request that
goes straight to a healthy upstream with one whose first target refuses the
connection, so both see the same machine. Prints one parseable line:

  RESULT n=.. ok_p50_us=.. ok_p99_us=.. fo_p50_us=.. fo_p99_us=.. errors=.. fell_over=..

fell_over counts failover answers whose x-switchboard-fallbacks header said 1
(switchboard); a proxy without that header (nginx) reports -1.

  failover.py --port P --token T --ok-path /v1/chat/completions --ok-model m1k
              --fo-path /v1/chat/completions --fo-model 'f-{i}' --routes 100 -n 400

--fo-model may hold {i}: request j uses route (j mod routes) + 1, so no
route's primary fails more than ceil(n / routes) times in a row (switchboard
opens a deployment's breaker after 5; the bench keeps it at 4).
"""
import argparse
import http.client
import json
import statistics
import time


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--ok-path", default="/v1/chat/completions")
    ap.add_argument("--ok-model", default="m1k")
    ap.add_argument("--fo-path", default="/v1/chat/completions")
    ap.add_argument("--fo-model", default="m1k")
    ap.add_argument("--routes", type=int, default=1)
    ap.add_argument("-n", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()

    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {a.token}"}

    def ask(path, model):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hello."}]})
        t0 = time.perf_counter()
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        r.read()
        us = (time.perf_counter() - t0) * 1e6
        return r.status, r.getheader("x-switchboard-fallbacks"), us

    for _ in range(a.warmup):
        ask(a.ok_path, a.ok_model)
    ok, fo = [], []
    errors = 0
    fell = 0
    has_header = False
    for j in range(a.n):
        st, _, us = ask(a.ok_path, a.ok_model)
        if st == 200:
            ok.append(us)
        else:
            errors += 1
        st, fb, us = ask(a.fo_path, a.fo_model.replace("{i}", str(j % a.routes + 1)))
        if st == 200:
            fo.append(us)
        else:
            errors += 1
        if fb is not None:
            has_header = True
            fell += fb == "1"
    print(f"RESULT n={a.n} ok_p50_us={statistics.median(ok) if ok else 0:.0f} "
          f"ok_p99_us={pct(ok, 0.99):.0f} fo_p50_us={statistics.median(fo) if fo else 0:.0f} "
          f"fo_p99_us={pct(fo, 0.99):.0f} errors={errors} fell_over={fell if has_header else -1}")


if __name__ == "__main__":
    main()
