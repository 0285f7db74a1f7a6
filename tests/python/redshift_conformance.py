"""Redshift conformance of the Data API emulator, driven through boto3.

Each case is one row of the conformance table in
localstack/redshift-data-emulator/README.md; tests/tests/redshift_conformance.rs runs one
case per test. Expected values are computed by hand from the Redshift documentation,
never read back from the emulator.

Usage: redshift_conformance.py ENDPOINT CASE    (prints {"case", "ok", "detail"}; exit 1 on failure)
       redshift_conformance.py ENDPOINT --list
"""

import json
import os
import sys
import time
import uuid

import boto3
from botocore.exceptions import ClientError

DB = "dev"
WORKGROUP = "fleetline"
SUFFIX = uuid.uuid4().hex[:10]


class Failed(Exception):
    pass


def client(endpoint):
    return boto3.client(
        "redshift-data",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def name(prefix):
    return f"conf_{prefix}_{SUFFIX}"


def wait(c, statement_id, until=("FINISHED", "FAILED", "ABORTED")):
    # A safety limit, not a timing assertion.
    deadline = time.time() + 120
    while True:
        d = c.describe_statement(Id=statement_id)
        if d["Status"] in until:
            return d
        if time.time() > deadline:
            raise Failed(f"statement {statement_id} stuck in {d['Status']}")
        time.sleep(0.05)


def submit(c, sql):
    return c.execute_statement(WorkgroupName=WORKGROUP, Database=DB, Sql=sql)["Id"]


def submit_batch(c, sqls):
    return c.batch_execute_statement(WorkgroupName=WORKGROUP, Database=DB, Sqls=sqls)["Id"]


def run(c, sql):
    """Runs sql; returns (status, error)."""
    d = wait(c, submit(c, sql))
    return d["Status"], d.get("Error", "")


def run_batch(c, sqls):
    d = wait(c, submit_batch(c, sqls))
    return d["Status"], d.get("Error", "")


def ok(c, sql):
    status, error = run(c, sql)
    if status != "FINISHED":
        raise Failed(f"{sql!r} should run: {status} {error}")


def refused(c, sql, *texts):
    status, error = run(c, sql)
    if status != "FAILED":
        raise Failed(f"{sql!r} should be refused, got {status}")
    for t in texts:
        if t not in error:
            raise Failed(f"{sql!r}: error {error!r} lacks {t!r}")
    return error


def rows(c, sql):
    d = wait(c, submit(c, sql))
    if d["Status"] != "FINISHED":
        raise Failed(f"{sql!r}: {d['Status']} {d.get('Error')}")
    out = []
    token = None
    while True:
        page = c.get_statement_result(Id=d["Id"], **({"NextToken": token} if token else {}))
        for r in page["Records"]:
            out.append([None if f.get("isNull") else next(iter(f.values())) for f in r])
        token = page.get("NextToken")
        if not token:
            return out


def expect(actual, wanted, what):
    if actual != wanted:
        raise Failed(f"{what}: got {actual!r}, expected {wanted!r}")


# --- Cases -----------------------------------------------------------------------------

def case_varchar_counts_bytes(c):
    t = name("vc")
    ok(c, f"CREATE TABLE {t} (s VARCHAR(4))")
    try:
        ok(c, f"INSERT INTO {t} VALUES ('abcd')")           # 4 bytes
        ok(c, f"INSERT INTO {t} VALUES ('ßß')")             # 2 characters, 4 bytes
        refused(c, f"INSERT INTO {t} VALUES ('ßßß')",        # 3 characters, 6 bytes
                "value too long for type character varying(4)")
        expect(rows(c, f"SELECT count(*) FROM {t}"), [[2]], "rows kept")
    finally:
        ok(c, f"DROP TABLE {t}")


def case_char_is_single_byte(c):
    t = name("ch")
    ok(c, f"CREATE TABLE {t} (s CHAR(4))")
    try:
        ok(c, f"INSERT INTO {t} VALUES ('abcd')")
        refused(c, f"INSERT INTO {t} VALUES ('ß')", "Multibyte character not supported for CHAR")
    finally:
        ok(c, f"DROP TABLE {t}")


def case_varchar_default_length_is_256_bytes(c):
    t = name("vd")
    ok(c, f"CREATE TABLE {t} (s VARCHAR, u TEXT)")
    try:
        ok(c, f"INSERT INTO {t} VALUES (repeat('a', 256), repeat('b', 256))")
        refused(c, f"INSERT INTO {t} (s) VALUES (repeat('é', 129))",
                "value too long for type character varying(256)")
        refused(c, f"INSERT INTO {t} (u) VALUES (repeat('a', 257))",
                "value too long for type character varying(256)")
    finally:
        ok(c, f"DROP TABLE {t}")


UNSUPPORTED = {
    "on_conflict": ("INSERT INTO {t} VALUES (1) ON CONFLICT DO NOTHING", "ON CONFLICT"),
    "returning": ("INSERT INTO {t} VALUES (1) RETURNING a", "RETURNING"),
    "jsonb_type": ("CREATE TABLE {t}_j (a JSONB)", 'type "jsonb"'),
    "json_cast": ("SELECT '{{}}'::json", 'type "json"'),
    "serial_type": ("CREATE TABLE {t}_s (a SERIAL)", 'type "serial"'),
    "uuid_cast": ("SELECT CAST('00000000-0000-0000-0000-000000000000' AS uuid)", 'type "uuid"'),
    "create_index": ("CREATE INDEX {t}_i ON {t} (a)", "CREATE INDEX"),
    "create_sequence": ("CREATE SEQUENCE {t}_q", "CREATE SEQUENCE"),
    "distinct_on": ("SELECT DISTINCT ON (a) a FROM {t}", "DISTINCT ON"),
    "aggregate_filter": ("SELECT count(*) FILTER (WHERE a > 0) FROM {t}", "FILTER"),
    "partition_by": ("CREATE TABLE {t}_p (a INT) PARTITION BY RANGE (a)", "PARTITION BY"),
    "arrays": ("SELECT ARRAY[1, 2]", "arrays"),
    "values_as_table": ("SELECT * FROM (VALUES (1), (2)) v (a)", "VALUES list"),
    "string_agg": ("SELECT string_agg(CAST(a AS VARCHAR), ',') FROM {t}", "function string_agg"),
    "is_distinct_from": ("SELECT a IS DISTINCT FROM 1 FROM {t}", "DISTINCT FROM"),
    "check_constraint": ("CREATE TABLE {t}_c (a INT CHECK (a > 0))", "CHECK"),
    "decimal_precision_above_38": ("SELECT CAST(1 AS DECIMAL(39,0))", "precision 39"),
}


def make_unsupported(feature):
    sql, text = UNSUPPORTED[feature]

    def case(c):
        t = name("u")
        ok(c, f"CREATE TABLE {t} (a INT)")
        try:
            error = refused(c, sql.format(t=t), text)
            if not error.startswith("ERROR: "):
                raise Failed(f"not a Redshift-style error: {error!r}")
        finally:
            ok(c, f"DROP TABLE {t}")
    return case


def case_reserved_words(c):
    t = name("rw")
    refused(c, f"CREATE TABLE {t} (raw VARCHAR(10))", 'syntax error at or near "raw"')
    refused(c, f"CREATE TABLE {t} (id INT, tag VARCHAR(10))", 'syntax error at or near "tag"')
    ok(c, f'CREATE TABLE {t} ("raw" VARCHAR(10) ENCODE raw, "tag" INT)')
    try:
        refused(c, f"SELECT raw FROM {t}", '"raw"')
        expect(rows(c, f'SELECT count("raw") FROM {t}'), [[0]], "quoted reserved word")
    finally:
        ok(c, f"DROP TABLE {t}")


def case_transaction_block_restrictions(c):
    t = name("tb")
    ok(c, f"CREATE TABLE {t} (a VARCHAR(10))")
    try:
        for sql, cmd in [
            (f"VACUUM {t}", "VACUUM"),
            (f"ALTER TABLE {t} ALTER COLUMN a TYPE VARCHAR(20)", "ALTER TABLE ALTER COLUMN"),
            ("CREATE DATABASE " + name("db"), "CREATE DATABASE"),
        ]:
            status, error = run_batch(c, [f"SELECT 1 FROM {t}", sql])
            expect(status, "FAILED", sql)
            if f"{cmd} cannot run inside a transaction block" not in error:
                raise Failed(f"{sql}: {error}")
        # Outside a transaction block the same VACUUM runs.
        ok(c, f"VACUUM {t}")
        # External DDL: CREATE EXTERNAL TABLE inside a batch is refused, alone it runs.
        schema = f"spectrum_conf_{SUFFIX}"
        ok(c, f"CREATE EXTERNAL SCHEMA {schema} FROM DATA CATALOG DATABASE 'conf' "
              "IAM_ROLE default CREATE EXTERNAL DATABASE IF NOT EXISTS")
        try:
            ext = (f"CREATE EXTERNAL TABLE {schema}.x (a INT) STORED AS PARQUET "
                   f"LOCATION 's3://fleetline-lake/conf-{SUFFIX}/'")
            status, error = run_batch(c, [f"SELECT 1 FROM {t}", ext])
            expect(status, "FAILED", "CREATE EXTERNAL TABLE in a batch")
            if "CREATE EXTERNAL TABLE cannot run inside a transaction block" not in error:
                raise Failed(error)
            ok(c, ext)
            status, error = run_batch(c, [f"ALTER TABLE {schema}.x ADD PARTITION (a=1) LOCATION 's3://fleetline-lake/x/'"])
            expect(status, "FAILED", "ALTER EXTERNAL TABLE in a batch")
            ok(c, f"DROP TABLE {schema}.x")
        finally:
            ok(c, f"DROP SCHEMA {schema} DROP EXTERNAL DATABASE CASCADE")
    finally:
        ok(c, f"DROP TABLE {t}")


def _started(c, statement_id, member):
    """Waits until batch member `member` (1-based) has finished, i.e. the next one runs."""
    deadline = time.time() + 60
    while time.time() < deadline:
        d = c.describe_statement(Id=statement_id)
        subs = d.get("SubStatements", [])
        if len(subs) >= member and subs[member - 1]["Status"] == "FINISHED":
            return
        if d["Status"] in ("FAILED", "ABORTED"):
            raise Failed(f"gate batch ended: {d.get('Error')}")
        time.sleep(0.05)
    raise Failed("batch member did not finish")


def _hold_gate(c, gate):
    """A batch that takes LOCK on `gate` and then keeps its transaction open (a long
    query) until it is cancelled; returns its id once the lock is held."""
    holder = submit_batch(c, [
        f"LOCK {gate}",
        "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
    ])
    _started(c, holder, 1)
    return holder


def _release(c, holder):
    c.cancel_statement(Id=holder)
    wait(c, holder)


def case_snapshot_write_conflict_is_error_1023(c):
    acct, gate = name("acct"), name("gate")
    ok(c, f"CREATE TABLE {acct} (id INT, v INT)")
    ok(c, f"CREATE TABLE {gate} (x INT)")
    try:
        ok(c, f"INSERT INTO {acct} VALUES (1, 0)")
        holder = _hold_gate(c, gate)
        # T1 reads (its snapshot starts here), then waits for the gate, then writes.
        t1 = submit_batch(c, [
            f"SELECT v FROM {acct} WHERE id = 1",
            f"LOCK {gate}",
            f"UPDATE {acct} SET v = v + 1 WHERE id = 1",
        ])
        _started(c, t1, 1)
        # T2 changes the same row and commits while T1 waits.
        ok(c, f"UPDATE {acct} SET v = v + 10 WHERE id = 1")
        _release(c, holder)
        d = wait(c, t1)
        expect(d["Status"], "FAILED", "T1 after a concurrent update of its row")
        error = d.get("Error", "")
        if not error.startswith("ERROR: 1023") or "Serializable isolation violation on table" not in error:
            raise Failed(f"not Redshift's serialization error: {error!r}")
        expect(rows(c, f"SELECT v FROM {acct}"), [[10]], "only T2 committed")
    finally:
        ok(c, f"DROP TABLE {acct}")
        ok(c, f"DROP TABLE {gate}")


def case_snapshot_starts_at_first_read_not_at_lock(c):
    data, gate = name("data"), name("gate")
    ok(c, f"CREATE TABLE {data} (id INT)")
    ok(c, f"CREATE TABLE {gate} (x INT)")
    try:
        results = {}
        for label, first in [("lock_first", None), ("read_first", f"SELECT count(*) FROM {data}")]:
            holder = _hold_gate(c, gate)
            sqls = ([first] if first else []) + [f"LOCK {gate}", f"SELECT count(*) FROM {data}"]
            t1 = submit_batch(c, sqls)
            if first:
                _started(c, t1, 1)
            else:
                # Nothing observable marks "waiting on the lock"; the LOCK takes no
                # snapshot, so the outcome does not depend on when the insert lands.
                time.sleep(0.2)
            ok(c, f"INSERT INTO {data} VALUES (1)")
            _release(c, holder)
            d = wait(c, t1)
            expect(d["Status"], "FINISHED", label)
            last = d["SubStatements"][-1]["Id"]
            page = c.get_statement_result(Id=last)
            results[label] = page["Records"][0][0]["longValue"]
        before = rows(c, f"SELECT count(*) FROM {data}")[0][0]
        # LOCK first: the count sees the row inserted while it waited (2 rows exist by
        # the second round, 1 in the first). Read first: the snapshot predates the insert.
        expect(results["lock_first"], 1, "LOCK first sees the committed insert")
        expect(results["read_first"], 1, "read first keeps its earlier snapshot (1 row, not 2)")
        expect(before, 2, "both inserts committed")
    finally:
        ok(c, f"DROP TABLE {data}")
        ok(c, f"DROP TABLE {gate}")


def case_date_functions(c):
    got = rows(c, "SELECT CAST(DATEADD(day, 1, CAST('2026-02-28' AS DATE)) AS VARCHAR), "
                  "CAST(DATEADD(month, 1, CAST('2026-01-31 10:00:00' AS TIMESTAMP)) AS VARCHAR), "
                  "CAST(DATEADD(qtr, 1, CAST('2026-01-15' AS TIMESTAMP)) AS VARCHAR), "
                  "DATEDIFF(day, CAST('2026-01-01 23:59:00' AS TIMESTAMP), CAST('2026-01-02 00:01:00' AS TIMESTAMP)), "
                  "DATEDIFF(month, CAST('2025-12-31' AS DATE), CAST('2026-01-01' AS DATE)), "
                  "DATEDIFF(hour, CAST('2026-01-01 10:59:00' AS TIMESTAMP), CAST('2026-01-01 12:00:00' AS TIMESTAMP)), "
                  "CAST(DATE_TRUNC('month', CAST('2026-05-17 08:00:00' AS TIMESTAMP)) AS VARCHAR), "
                  "CAST(CONVERT_TIMEZONE('UTC', 'America/New_York', CAST('2026-07-01 12:00:00' AS TIMESTAMP)) AS VARCHAR), "
                  "CAST(CONVERT_TIMEZONE('America/New_York', CAST('2026-01-01 12:00:00' AS TIMESTAMP)) AS VARCHAR), "
                  "GETDATE() <= SYSDATE + INTERVAL '1 second'")
    expect(got, [["2026-03-01 00:00:00", "2026-02-28 10:00:00", "2026-04-15 00:00:00",
                  1, 1, 2, "2026-05-01 00:00:00", "2026-07-01 08:00:00", "2026-01-01 07:00:00",
                  True]], "date functions")


def case_null_and_string_functions(c):
    got = rows(c, "SELECT NVL(CAST(NULL AS INT), 7), NVL2(CAST(NULL AS INT), 'set', 'unset'), "
                  "NVL2(1, 'set', 'unset'), DECODE(2, 1, 'one', 2, 'two', 'other'), "
                  "DECODE(9, 1, 'one', 'other'), LEN('ßtraße'), LEN(CAST('ab  ' AS CHAR(6)))")
    expect(got, [[7, "unset", "set", "two", "other", 6, 2]], "NVL/NVL2/DECODE/LEN")


def case_json_extract_path_text(c):
    got = rows(c, "SELECT JSON_EXTRACT_PATH_TEXT('{\"a\": {\"b\": \"x\"}, \"n\": 3}', 'a', 'b'), "
                  "JSON_EXTRACT_PATH_TEXT('{\"a\": {\"b\": \"x\"}, \"n\": 3}', 'n'), "
                  "JSON_EXTRACT_PATH_TEXT('{\"a\": 1}', 'missing')")
    expect(got, [["x", "3", None]], "JSON_EXTRACT_PATH_TEXT")


def case_aggregate_functions(c):
    t = name("agg")
    ok(c, f"CREATE TABLE {t} (g VARCHAR(4), v INT)")
    try:
        ok(c, f"INSERT INTO {t} VALUES ('a', 1), ('a', 2), ('a', 10), ('b', 4), ('b', 4), ('b', 6), ('b', 8)")
        got = rows(c, f"SELECT g, LISTAGG(v, ',') WITHIN GROUP (ORDER BY v DESC), "
                      f"CAST(MEDIAN(v) AS VARCHAR), "
                      f"CAST(PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY v) AS VARCHAR), "
                      f"APPROXIMATE COUNT(DISTINCT v) FROM {t} GROUP BY g ORDER BY g")
        # a: 1,2,10 → median 2; b: 4,4,6,8 → median (4+6)/2 = 5; distinct: 3 and 3.
        expect(got, [["a", "10,2,1", "2", "2", 3], ["b", "8,6,4,4", "5", "5", 3]], "aggregates")
    finally:
        ok(c, f"DROP TABLE {t}")


def case_sessions_are_refused(c):
    for kwargs in ({"SessionKeepAliveSeconds": 60}, {"SessionId": str(uuid.uuid4())}):
        try:
            args = {"Sql": "SELECT 1", **kwargs}
            if "SessionId" not in kwargs:
                args.update(WorkgroupName=WORKGROUP, Database=DB)
            c.execute_statement(**args)
        except ClientError as e:
            expect(e.response["Error"]["Code"], "ValidationException", str(kwargs))
            if "Session" not in e.response["Error"]["Message"]:
                raise Failed(e.response["Error"]["Message"])
            continue
        raise Failed(f"{kwargs} accepted")


def case_decimal_division_scale_not_emulated(c):
    # Not emulated: Redshift gives DECIMAL(38,4) here ("Computations with numeric
    # values": scale max(4, s1+p2-s2+1) = 23, precision 58 > 38 → scale 4); PostgreSQL
    # keeps more digits. An explicit CAST of the dividend pins the scale on both.
    got = rows(c, "SELECT CAST(CAST(10 AS DECIMAL(38,3)) / CAST(3 AS BIGINT) AS VARCHAR), "
                  "CAST(CAST(CAST(10 AS DECIMAL(38,3)) AS DECIMAL(38,12)) / CAST(3 AS BIGINT) AS DECIMAL(38,12))")
    if got[0][0] == "3.3333":
        raise Failed("division scale is now emulated: update the conformance table")
    expect(got[0][1], "3.333333333333", "explicit scale")


CASES = {
    "varchar_counts_bytes": case_varchar_counts_bytes,
    "char_is_single_byte": case_char_is_single_byte,
    "varchar_default_length_is_256_bytes": case_varchar_default_length_is_256_bytes,
    "reserved_words": case_reserved_words,
    "transaction_block_restrictions": case_transaction_block_restrictions,
    "snapshot_write_conflict_is_error_1023": case_snapshot_write_conflict_is_error_1023,
    "snapshot_starts_at_first_read_not_at_lock": case_snapshot_starts_at_first_read_not_at_lock,
    "date_functions": case_date_functions,
    "null_and_string_functions": case_null_and_string_functions,
    "json_extract_path_text": case_json_extract_path_text,
    "aggregate_functions": case_aggregate_functions,
    "sessions_are_refused": case_sessions_are_refused,
    "decimal_division_scale_not_emulated": case_decimal_division_scale_not_emulated,
}
CASES.update({f"unsupported_{k}": make_unsupported(k) for k in UNSUPPORTED})


def main():
    endpoint, which = sys.argv[1], sys.argv[2]
    if which == "--list":
        print(json.dumps(sorted(CASES)))
        return 0
    c = client(endpoint)
    try:
        CASES[which](c)
    except Failed as e:
        print(json.dumps({"case": which, "ok": False, "detail": str(e)}))
        return 1
    print(json.dumps({"case": which, "ok": True, "detail": ""}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
