"""Fleetline demo helpers (stdlib only): wait for the runner, print the seed's three
answers from the REST API, and check them against the simulator's ground truth.

  demo_report.py wait-caught-up --truth T --status-url U --functions a,b [--timeout S]
  demo_report.py answers --truth T --api URL
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get_json(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body}


def wait_caught_up(args):
    truth = json.load(open(args.truth))
    expected = truth["counts"]["records_sent"]
    functions = [f for f in args.functions.split(",") if f]
    deadline = time.monotonic() + args.timeout
    last_line = ""
    while True:
        done = {}
        try:
            _, status = get_json(args.status_url, timeout=5)
            for shard in status.get("shards", []):
                f = shard.get("function")
                done[f] = done.get(f, 0) + shard.get("records_acknowledged", 0) + shard.get(
                    "records_to_on_failure", 0
                )
        except (OSError, ValueError):
            pass
        line = "  runner: " + ", ".join(f"{f} {done.get(f, 0)}/{expected}" for f in functions)
        if line != last_line:
            print(line, flush=True)
            last_line = line
        if all(done.get(f, 0) >= expected for f in functions):
            return 0
        if time.monotonic() > deadline:
            print(f"  gave up after {args.timeout}s waiting for the runner", file=sys.stderr)
            return 1
        time.sleep(0.5)


def paged(api, path, params):
    rows, token = [], None
    while True:
        q = dict(params)
        if token:
            q["next_token"] = token
        url = f"{api}{path}" + ("?" + urllib.parse.urlencode(q) if q else "")
        code, body = get_json(url)
        if code != 200:
            raise RuntimeError(f"GET {url} -> {code}: {body}")
        rows.extend(body.get("data", []))
        token = body.get("next_token")
        if not token:
            return rows, body.get("boundary")


def answers(args):
    truth = json.load(open(args.truth))
    api = args.api.rstrip("/")
    problems = []

    print("\n== Rapid accelerations by driver (VIN) and year  (GET /v1/vehicles/rapid-accelerations)")
    rows, boundary = paged(api, "/v1/vehicles/rapid-accelerations", {})
    got = {(r["vin"], r["year"]): r["rapid_accelerations"] for r in rows}
    want = {(r["vin"], r["year"]): r["rapid_accelerations"] for r in truth["rapid_accelerations_by_vin_year"]}
    print(f"   {'VIN':<17}  {'year':>4}  {'rapid accelerations':>19}")
    for (vin, year), n in sorted(got.items()):
        print(f"   {vin:<17}  {year:>4}  {n:>19}")
    for k in set(got) | set(want):
        if got.get(k, 0) != want.get(k, 0):
            problems.append(f"rapid accelerations {k}: API {got.get(k)} vs truth {want.get(k)}")

    print("\n== Total miles driven by the fleet per year  (GET /v1/fleet/miles)")
    code, body = get_json(f"{api}/v1/fleet/miles")
    if code != 200:
        raise RuntimeError(f"/v1/fleet/miles -> {code}: {body}")
    for r in body["data"]:
        print(f"   {r['year']}: {r['total_miles']:.6f} miles")
    want_miles = {r["year"]: r["total_miles_nano"] for r in truth["total_miles_by_year"]}
    got_miles = {r["year"]: r["total_miles"] for r in body["data"]}
    for y in set(want_miles) | set(got_miles):
        w = want_miles.get(y, 0) / 1e9
        g = got_miles.get(y, 0.0)
        # The API rounds miles to 6 decimals; the truth is exact nano-miles.
        if abs(w - g) > 5e-7:
            problems.append(f"miles {y}: API {g} vs truth {w:.9f}")

    print("\n== Average speed per trip  (GET /v1/vehicles/{vin}/trips?date=…)")
    print(f"   {'VIN':<17}  {'date':<10}  {'trip':<21}  {'readings':>8}  {'avg km/h':>8}  {'miles':>9}")
    want_trips = {(r["vin"], r["date"], r["trip_id"]): r for r in truth["avg_speed_by_trip"]}
    for vin, date in sorted({(r["vin"], r["date"]) for r in truth["avg_speed_by_trip"]}):
        rows, _ = paged(api, f"/v1/vehicles/{vin}/trips", {"date": date})
        for r in rows:
            print(
                f"   {vin:<17}  {date:<10}  {r['trip_id']:<21}  {r['readings']:>8}  "
                f"{r['avg_speed_kmh']:>8.3f}  {r['miles']:>9.6f}"
            )
            w = want_trips.pop((vin, date, r["trip_id"]), None)
            if w is None:
                problems.append(f"trip {vin} {date} {r['trip_id']} not in the truth")
                continue
            if r["readings"] != w["readings"] or abs(r["avg_speed_kmh"] - w["avg_speed_kmh"]) > 5e-4:
                problems.append(
                    f"trip {vin} {date} {r['trip_id']}: API {r['readings']} readings, "
                    f"{r['avg_speed_kmh']} km/h vs truth {w['readings']}, {w['avg_speed_kmh']}"
                )
    for k in want_trips:
        problems.append(f"trip {k} missing from the API")

    print(f"\n   boundary day: {boundary} (batch layer answers days before it, speed layer the rest)")
    c = truth["counts"]
    print(
        f"   sent {c['records_sent']} records: {c['valid_readings']} valid readings, "
        f"{c['duplicates_sent']} duplicates, {c['malformed_sent']} malformed (dead-lettered)"
    )
    if problems:
        print("\n   MISMATCHES against the simulator's ground truth:")
        for p in problems[:50]:
            print("   - " + p)
        return 1
    print("   every answer equals the simulator's ground truth exactly")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait-caught-up")
    w.add_argument("--truth", required=True)
    w.add_argument("--status-url", required=True)
    w.add_argument("--functions", required=True)
    w.add_argument("--timeout", type=float, default=600)
    a = sub.add_parser("answers")
    a.add_argument("--truth", required=True)
    a.add_argument("--api", required=True)
    args = p.parse_args()
    return wait_caught_up(args) if args.cmd == "wait-caught-up" else answers(args)


if __name__ == "__main__":
    sys.exit(main())
