"""Redshift conformance of the Data API emulator, driven through boto3.

Each case is one row of the conformance table in
localstack/redshift-data-emulator/README.md; tests/tests/redshift_conformance.rs runs one
case per test. Expected values are computed by hand from the Redshift documentation,
never read back from the emulator.

Usage: redshift_conformance.py ENDPOINT CASE    (prints {"case", "ok", "detail"}; exit 1 on failure)
       redshift_conformance.py ENDPOINT --list
"""

import contextlib
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


def typed_rows(c, sql):
    """(rows, [(typeName, precision, scale) per column])."""
    d = wait(c, submit(c, sql))
    if d["Status"] != "FINISHED":
        raise Failed(f"{sql!r}: {d['Status']} {d.get('Error')}")
    out, types = [], []
    token = None
    while True:
        page = c.get_statement_result(Id=d["Id"], **({"NextToken": token} if token else {}))
        types = [(m["typeName"], m["precision"], m["scale"]) for m in page["ColumnMetadata"]]
        for r in page["Records"]:
            out.append([None if f.get("isNull") else next(iter(f.values())) for f in r])
        token = page.get("NextToken")
        if not token:
            return out, types


def rows(c, sql):
    return typed_rows(c, sql)[0]


def expect(actual, wanted, what):
    if actual != wanted:
        raise Failed(f"{what}: got {actual!r}, expected {wanted!r}")


@contextlib.contextmanager
def table(c, prefix, columns):
    """A table that exists for the `with` block; yields its name."""
    t = name(prefix)
    ok(c, f"CREATE TABLE {t} ({columns})")
    try:
        yield t
    finally:
        ok(c, f"DROP TABLE {t}")


# --- Cases -----------------------------------------------------------------------------

def case_varchar_counts_bytes(c):
    with table(c, "vc", "s VARCHAR(4)") as t:
        ok(c, f"INSERT INTO {t} VALUES ('abcd')")           # 4 bytes
        ok(c, f"INSERT INTO {t} VALUES ('ßß')")             # 2 characters, 4 bytes
        refused(c, f"INSERT INTO {t} VALUES ('ßßß')",        # 3 characters, 6 bytes
                "value too long for type character varying(4)")
        expect(rows(c, f"SELECT count(*) FROM {t}"), [[2]], "rows kept")


def case_char_is_single_byte(c):
    with table(c, "ch", "s CHAR(4)") as t:
        ok(c, f"INSERT INTO {t} VALUES ('abcd')")
        refused(c, f"INSERT INTO {t} VALUES ('ß')", "Multibyte character not supported for CHAR")


def case_varchar_default_length_is_256_bytes(c):
    with table(c, "vd", "s VARCHAR, u TEXT") as t:
        ok(c, f"INSERT INTO {t} VALUES (repeat('a', 256), repeat('b', 256))")
        refused(c, f"INSERT INTO {t} (s) VALUES (repeat('é', 129))",
                "value too long for type character varying(256)")
        refused(c, f"INSERT INTO {t} (u) VALUES (repeat('a', 257))",
                "value too long for type character varying(256)")


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
        with table(c, "u", "a INT") as t:
            error = refused(c, sql.format(t=t), text)
            if not error.startswith("ERROR: "):
                raise Failed(f"not a Redshift-style error: {error!r}")
    return case


def case_reserved_words(c):
    t = name("rw")
    refused(c, f"CREATE TABLE {t} (raw VARCHAR(10))", 'syntax error at or near "raw"')
    refused(c, f"CREATE TABLE {t} (id INT, tag VARCHAR(10))", 'syntax error at or near "tag"')
    with table(c, "rw", '"raw" VARCHAR(10) ENCODE raw, "tag" INT') as t:
        refused(c, f"SELECT raw FROM {t}", '"raw"')
        expect(rows(c, f'SELECT count("raw") FROM {t}'), [[0]], "quoted reserved word")


def case_transaction_block_restrictions(c):
    with table(c, "tb", "a VARCHAR(10)") as t:
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


def _race(c, gate, t1_sqls, t2_sql):
    """T1 (a batch) runs its first member, then waits on `gate` while T2 (one statement)
    runs and commits; returns T1's final description."""
    holder = _hold_gate(c, gate)
    t1 = submit_batch(c, [t1_sqls[0], f"LOCK {gate}", *t1_sqls[1:]])
    _started(c, t1, 1)
    ok(c, t2_sql)
    _release(c, holder)
    return wait(c, t1)


def case_snapshot_write_conflict_is_error_1023(c):
    with table(c, "acct", "id INT, v INT") as acct, table(c, "gate", "x INT") as gate:
        ok(c, f"INSERT INTO {acct} VALUES (1, 0)")
        # T1 reads (its snapshot starts here), then waits for the gate, then writes; T2
        # changes the same row and commits while T1 waits.
        d = _race(c, gate,
                  [f"SELECT v FROM {acct} WHERE id = 1", f"UPDATE {acct} SET v = v + 1 WHERE id = 1"],
                  f"UPDATE {acct} SET v = v + 10 WHERE id = 1")
        expect(d["Status"], "FAILED", "T1 after a concurrent update of its row")
        error = d.get("Error", "")
        if not error.startswith("ERROR: 1023") or "Serializable isolation violation on table" not in error:
            raise Failed(f"not Redshift's serialization error: {error!r}")
        expect(rows(c, f"SELECT v FROM {acct}"), [[10]], "only T2 committed")


def case_snapshot_starts_at_first_read_not_at_lock(c):
    with table(c, "data", "id INT") as data, table(c, "gate", "x INT") as gate:
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
    with table(c, "agg", "g VARCHAR(4), v INT") as t:
        ok(c, f"INSERT INTO {t} VALUES ('a', 1), ('a', 2), ('a', 10), ('b', 4), ('b', 4), ('b', 6), ('b', 8)")
        got = rows(c, f"SELECT g, LISTAGG(v, ',') WITHIN GROUP (ORDER BY v DESC), "
                      f"CAST(MEDIAN(v) AS VARCHAR), "
                      f"CAST(PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY v) AS VARCHAR), "
                      f"APPROXIMATE COUNT(DISTINCT v) FROM {t} GROUP BY g ORDER BY g")
        # a: 1,2,10 → median 2; b: 4,4,6,8 → median (4+6)/2 = 5; distinct: 3 and 3.
        expect(got, [["a", "10,2,1", "2", "2", 3], ["b", "8,6,4,4", "5", "5", 3]], "aggregates")


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


# "Computations with numeric values", "SUM", "AVG": expected types and digits worked out
# by hand from the documented rules; quotients and averages truncated (the documented
# choice of the emulator, see the README).
DECIMAL_COLUMNS = "g INT, s DECIMAL(38,3), n BIGINT, a DECIMAL(8,2), b DECIMAL(8,2), k SMALLINT"
DECIMAL_ROWS = "(1, 10.000, 3, 2.00, 3.00, 1), (1, 2.000, 3, 1.00, 3.00, 2), (1, 2.000, 3, 5.00, 3.00, 2)"


def case_decimal_arithmetic_scale(c):
    with table(c, "dec", DECIMAL_COLUMNS) as t:
        ok(c, f"INSERT INTO {t} VALUES {DECIMAL_ROWS}")
        got, types = typed_rows(c, f"SELECT s / n, a / b, a * b, a + b, s - k, -a * 2, "
                                   f"CAST(s AS DECIMAL) / 7 AS d FROM {t} WHERE a = 2.00")
        # s/n: scale max(4, 3+19-0+1) = 23, precision 58 > 38 → (38, max(38+23-58, 4)) = (38,4);
        # a/b: (17,9) (the PRICEPAID / COMMISSION example); a*b: (17,4); a+b: (9,2);
        # s-k: (38,3) (precision capped); -a*2: (8,2)*(10,0) = (19,2);
        # DECIMAL is (18,0), / INT4 → scale max(4, 0+10+1) = 11, precision 18+11 = 29.
        expect(types, [("numeric", 38, 4), ("numeric", 17, 9), ("numeric", 17, 4),
                       ("numeric", 9, 2), ("numeric", 38, 3), ("numeric", 19, 2),
                       ("numeric", 29, 11)], "result types")
        expect(got, [["3.3333", "0.666666666", "6.0000", "5.00", "9.000", "-4.00",
                      "1.42857142857"]], "digits (quotients truncated)")
        # With an explicit scale the result is the same on Redshift and PostgreSQL.
        expect(rows(c, f"SELECT CAST(CAST(s AS DECIMAL(38,12)) / n AS DECIMAL(38,12)) FROM {t} WHERE a = 2.00"),
               [["3.333333333333"]], "explicit scale")


def case_decimal_aggregate_types(c):
    with table(c, "deca", DECIMAL_COLUMNS) as t:
        ok(c, f"INSERT INTO {t} VALUES {DECIMAL_ROWS}")
        mv = name("decmv")
        # A materialized view's columns get the same types.
        ok(c, f"CREATE MATERIALIZED VIEW {mv} AUTO REFRESH NO AS SELECT g, SUM(s) AS total, "
              f"AVG(s) AS mean, AVG(k) AS mean_k, SUM(n) AS sum_n, MAX(a) AS highest FROM {t} GROUP BY g")
        try:
            for source in (f"SELECT SUM(s) AS total, AVG(s) AS mean, AVG(k) AS mean_k, SUM(n) AS sum_n, "
                           f"MAX(a) AS highest FROM {t}",
                           f"SELECT total, mean, mean_k, sum_n, highest FROM {mv}"):
                got, types = typed_rows(c, source)
                # SUM/AVG of DECIMAL(38,3) → DECIMAL(38,3); AVG of SMALLINT → BIGINT
                # (5/3 truncated to 1); SUM of BIGINT → BIGINT; MAX keeps DECIMAL(8,2).
                expect(types, [("numeric", 38, 3), ("numeric", 38, 3), ("int8", 19, 0),
                               ("int8", 19, 0), ("numeric", 8, 2)], f"types of {source}")
                expect(got, [["14.000", "4.666", 1, 9, "5.00"]], f"values of {source}")
        finally:
            ok(c, f"DROP MATERIALIZED VIEW {mv}")


def case_decimal_overflow_is_an_error(c):
    big = "CAST('90000000000000000000000000000000000000' AS DECIMAL(38,0))"
    # 38 digits × 100 = 40 digits: more than DECIMAL(38,0) holds.
    refused(c, f"SELECT {big} * 100", "Numeric data overflow")
    refused(c, f"SELECT CAST(123.45 AS DECIMAL(4,2))", "Numeric data overflow")
    # (38,0) / INT4: scale max(4, 0+10+1) = 11, precision 49 → (38,4): a 37-digit quotient
    # with 4 decimals does not fit, a 33-digit one does.
    refused(c, f"SELECT {big} / 10", "Numeric data overflow")
    expect(rows(c, "SELECT CAST('9000000000000000000000000000000000' AS DECIMAL(38,0)) / 10"),
           [["900000000000000000000000000000000.0000"]], "a quotient that fits")
    # Assigning to a column keeps the column's rounding and PostgreSQL's (and Redshift's)
    # wording for a value that does not fit.
    with table(c, "ovf", "a DECIMAL(4,2)") as t:
        ok(c, f"INSERT INTO {t} VALUES (35.512)")
        expect(rows(c, f"SELECT a FROM {t}"), [["35.51"]], "rounded to the column's scale")
        refused(c, f"INSERT INTO {t} VALUES (350.10)", "numeric field overflow")


def case_decimal_untyped_expressions_not_emulated(c):
    # An item the emulator cannot type (here: a function around the quotient, a CASE)
    # keeps PostgreSQL's digits; Redshift would give DECIMAL(38,4) inside ROUND.
    got = rows(c, "SELECT CAST(ROUND(CAST(10 AS DECIMAL(38,3)) / CAST(3 AS BIGINT), 6) AS VARCHAR), "
                  "CAST(CASE WHEN 1 = 1 THEN CAST(10 AS DECIMAL(38,3)) / CAST(3 AS BIGINT) END AS VARCHAR)")
    if got[0][0] == "3.333300" or got[0][1] == "3.3333":
        raise Failed("now typed: update the conformance table")
    expect(got, [["3.333333", "3.3333333333333333"]], "PostgreSQL's digits")


def case_procedure_body_checked(c):
    with table(c, "pb", "a INT") as t:
        proc = name("proc")
        refused(c, f"CREATE OR REPLACE PROCEDURE {proc}() AS $$ BEGIN "
                   f"INSERT INTO {t} VALUES (1) ON CONFLICT DO NOTHING; END; $$ LANGUAGE plpgsql",
                "in the procedure body", "ON CONFLICT")
        refused(c, f"CREATE OR REPLACE PROCEDURE {proc}(x INT) AS $$ BEGIN IF x > 0 THEN "
                   f"INSERT INTO {t} SELECT a FROM {t} RETURNING a; END IF; END; $$ LANGUAGE plpgsql",
                "in the procedure body", "RETURNING")
        ok(c, f"CREATE OR REPLACE PROCEDURE {proc}(x INT) AS $$ DECLARE n INTEGER; BEGIN "
              f"n := x * 2; INSERT INTO {t} VALUES (n); END; $$ LANGUAGE plpgsql")
        try:
            ok(c, f"CALL {proc}(21)")
            expect(rows(c, f"SELECT a FROM {t}"), [[42]], "the accepted procedure runs")
        finally:
            ok(c, f"DROP PROCEDURE {proc}(INT)")


def case_serializable_is_not_emulated(c):
    refused(c, f"ALTER DATABASE {DB} ISOLATION LEVEL SERIALIZABLE",
            "not emulated", "SNAPSHOT isolation only")
    # Write skew: T1 and T2 each read both rows and change a different one. Under
    # SERIALIZABLE one of them would fail with error 1023; under SNAPSHOT both commit.
    with table(c, "skew", "id INT, v INT") as acct, table(c, "skewgate", "x INT") as gate:
        ok(c, f"INSERT INTO {acct} VALUES (1, 1), (2, 1)")
        guarded = f"UPDATE {acct} SET v = 0 WHERE id = {{}} AND (SELECT sum(v) FROM {acct}) = 2"
        d = _race(c, gate, [f"SELECT sum(v) FROM {acct}", guarded.format(1)], guarded.format(2))
        expect(d["Status"], "FINISHED", "T1 commits under SNAPSHOT")
        expect(rows(c, f"SELECT id, v FROM {acct} ORDER BY id"), [[1, 0], [2, 0]], "both wrote")


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
    "decimal_arithmetic_scale": case_decimal_arithmetic_scale,
    "decimal_aggregate_types": case_decimal_aggregate_types,
    "decimal_overflow_is_an_error": case_decimal_overflow_is_an_error,
    "decimal_untyped_expressions_not_emulated": case_decimal_untyped_expressions_not_emulated,
    "procedure_body_checked": case_procedure_body_checked,
    "serializable_is_not_emulated": case_serializable_is_not_emulated,
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
