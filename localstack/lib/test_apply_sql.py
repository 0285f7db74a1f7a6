"""Unit tests for apply_sql: the statement splitter and the apply/skip logic (fake Data API)."""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import apply_sql  # noqa: E402
from apply_sql import DataApiError, SplitError, split_statements  # noqa: E402


class SplitterTests(unittest.TestCase):
    def test_plain_statements(self):
        self.assertEqual(
            split_statements("CREATE SCHEMA a;\nCREATE SCHEMA b ;\n\n"),
            ["CREATE SCHEMA a", "CREATE SCHEMA b"],
        )

    def test_last_statement_without_semicolon(self):
        self.assertEqual(split_statements("SELECT 1; SELECT 2"), ["SELECT 1", "SELECT 2"])

    def test_semicolon_in_string_with_doubled_quote(self):
        sql = "INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT 2;"
        self.assertEqual(split_statements(sql), ["INSERT INTO t VALUES ('a;b', 'it''s; fine')", "SELECT 2"])

    def test_escape_string_backslash_quote(self):
        sql = r"SELECT E'x\';y'; SELECT 'C:\'; SELECT 3"
        self.assertEqual(split_statements(sql), [r"SELECT E'x\';y'", r"SELECT 'C:\'", "SELECT 3"])

    def test_identifier_ending_in_e_is_not_escape_string(self):
        # `some' is an identifier followed by a plain string: the backslash is literal.
        sql = "SELECT some'\\'; SELECT 2"
        self.assertEqual(split_statements(sql), ["SELECT some'\\'", "SELECT 2"])

    def test_quoted_identifier(self):
        sql = 'CREATE TABLE "we;ird ""name""" (x INT); SELECT 1'
        self.assertEqual(split_statements(sql), ['CREATE TABLE "we;ird ""name""" (x INT)', "SELECT 1"])

    def test_line_comment(self):
        sql = "SELECT 1; -- a comment; with a semicolon\nSELECT 2; -- trailing only"
        self.assertEqual(split_statements(sql), ["SELECT 1", "-- a comment; with a semicolon\nSELECT 2"])

    def test_block_comment_nested(self):
        sql = "/* one; /* two; */ still; */ SELECT 1; /* only a comment; */"
        self.assertEqual(split_statements(sql), ["/* one; /* two; */ still; */ SELECT 1"])

    def test_dollar_quoted_procedure(self):
        body = (
            "CREATE OR REPLACE PROCEDURE batch.p(d DATE) AS $$\n"
            "BEGIN\n  DELETE FROM t WHERE day = d;\n  INSERT INTO t SELECT 1;\nEND;\n"
            "$$ LANGUAGE plpgsql"
        )
        sql = f"{body};\nCALL batch.p('2026-01-01');"
        self.assertEqual(split_statements(sql), [body, "CALL batch.p('2026-01-01')"])

    def test_tagged_dollar_quote_containing_plain_dollars(self):
        body = "CREATE FUNCTION f() RETURNS TEXT AS $body$ SELECT $$a;b$$ || ';' $body$ LANGUAGE sql"
        self.assertEqual(split_statements(body + "; SELECT 1"), [body, "SELECT 1"])

    def test_positional_parameter_and_dollar_in_identifier(self):
        sql = "SELECT $1, a$b$ FROM t; SELECT 2"
        self.assertEqual(split_statements(sql), ["SELECT $1, a$b$ FROM t", "SELECT 2"])

    def test_comment_markers_inside_strings(self):
        sql = "SELECT '--not a comment;', '/* nor; this */'; SELECT 2"
        self.assertEqual(split_statements(sql), ["SELECT '--not a comment;', '/* nor; this */'", "SELECT 2"])

    def test_empty_and_comment_only_input(self):
        self.assertEqual(split_statements(""), [])
        self.assertEqual(split_statements(" ;; -- nothing\n/* here */ ;"), [])

    def test_unterminated_constructs_fail(self):
        for sql in ["SELECT 'x", 'SELECT "x', "/* x", "SELECT $$ x", "SELECT $t$ x $$"]:
            with self.subTest(sql=sql):
                with self.assertRaises(SplitError):
                    split_statements(sql)

    def test_no_transaction_detection(self):
        stmts = split_statements("-- lead\nCREATE EXTERNAL TABLE s.t (a INT) LOCATION 's3://b/p/'; SELECT 1")
        self.assertTrue(apply_sql.needs_no_transaction("", stmts))
        self.assertFalse(apply_sql.needs_no_transaction("", split_statements("CREATE TABLE t (a INT)")))
        self.assertTrue(apply_sql.needs_no_transaction("-- fleetline:no-transaction\n", ["SELECT 1"]))


class FakeDataApi:
    """In-memory Data API: records executed SQL, fails a statement containing 'BOOM'."""

    def __init__(self):
        self.migrations = {}  # file_name -> sha256
        self.calls = []  # ("exec", sql) / ("batch", [sqls])
        self._results = {}
        self._n = 0

    def _new(self, status, error=None, rows=None, subs=None):
        self._n += 1
        sid = f"s{self._n}"
        desc = {"Id": sid, "Status": status, "HasResultSet": rows is not None}
        if error:
            desc["Error"] = error
        if subs:
            desc["SubStatements"] = subs
        self._results[sid] = (desc, rows)
        return {"Id": sid}

    def _apply(self, sql):
        if "BOOM" in sql:
            return 'ERROR: syntax error at or near "BOOM"'
        if sql.startswith("DELETE FROM public.fleetline_schema_migrations"):
            name = sql.split("'")[1]
            self.migrations.pop(name, None)
        elif sql.startswith("INSERT INTO public.fleetline_schema_migrations"):
            parts = sql.split("'")
            self.migrations[parts[1]] = parts[3]
        return None

    def execute_statement(self, Sql, **target):
        assert target["Database"] == "dev" and target["WorkgroupName"] == "wg"
        self.calls.append(("exec", Sql))
        if Sql.startswith("SELECT file_name, sha256"):
            rows = [[{"stringValue": k}, {"stringValue": v}] for k, v in self.migrations.items()]
            return self._new("FINISHED", rows=rows)
        err = self._apply(Sql)
        return self._new("FAILED", error=err) if err else self._new("FINISHED")

    def batch_execute_statement(self, Sqls, **target):
        assert 1 <= len(Sqls) <= 40
        self.calls.append(("batch", list(Sqls)))
        snapshot = dict(self.migrations)
        subs = []
        for sql in Sqls:
            err = self._apply(sql)
            if err:
                self.migrations = snapshot  # one transaction: roll back
                subs.append({"Status": "FAILED", "Error": err})
                return self._new("FAILED", error=err, subs=subs)
            subs.append({"Status": "FINISHED"})
        return self._new("FINISHED", subs=subs)

    def describe_statement(self, Id):
        return self._results[Id][0]

    def get_statement_result(self, Id, NextToken=None):
        rows = self._results[Id][1] or []
        # Page one row at a time to exercise NextToken handling.
        idx = int(NextToken or 0)
        page = {"Records": rows[idx : idx + 1]}
        if idx + 1 < len(rows):
            page["NextToken"] = str(idx + 1)
        return page


class ApplyDirTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.api = FakeDataApi()
        self.runner = apply_sql.Runner(self.api, {"WorkgroupName": "wg", "Database": "dev"}, poll_interval=0)

    def tearDown(self):
        self.tmp.cleanup()

    def apply(self, force=False):
        return apply_sql.apply_dir(self.runner, self.dir, force=force, out=lambda _m: None)

    def batches(self):
        return [c[1] for c in self.api.calls if c[0] == "batch"]

    def test_applies_in_name_order_then_skips_unchanged(self):
        (self.dir / "10_b.sql").write_text("CREATE TABLE b (x INT);")
        (self.dir / "00_a.sql").write_text("CREATE SCHEMA a; CREATE SCHEMA a2;")
        (self.dir / "notes.txt").write_text("not sql;")
        applied, skipped = self.apply()
        self.assertEqual((applied, skipped), (["00_a.sql", "10_b.sql"], []))
        batches = self.batches()
        self.assertEqual(batches[0][:2], ["CREATE SCHEMA a", "CREATE SCHEMA a2"])
        self.assertEqual(len(batches[0]), 4)  # 2 statements + DELETE/INSERT bookkeeping
        self.assertEqual(batches[1][0], "CREATE TABLE b (x INT)")
        self.assertEqual(
            self.api.migrations["00_a.sql"],
            apply_sql.file_sha256(b"CREATE SCHEMA a; CREATE SCHEMA a2;"),
        )

        self.api.calls.clear()
        self.assertEqual(self.apply(), ([], ["00_a.sql", "10_b.sql"]))
        self.assertEqual(self.batches(), [])

        (self.dir / "10_b.sql").write_text("CREATE TABLE IF NOT EXISTS b (x INT);")
        self.assertEqual(self.apply(), (["10_b.sql"], ["00_a.sql"]))
        self.assertEqual(self.apply(force=True), (["00_a.sql", "10_b.sql"], []))

    def test_failure_names_file_and_statement_and_records_nothing(self):
        (self.dir / "01_x.sql").write_text("SELECT 1; SELECT 2;\nSELECT BOOM;")
        with self.assertRaises(DataApiError) as ctx:
            self.apply()
        msg = str(ctx.exception)
        self.assertIn("01_x.sql: statement 3:", msg)
        self.assertIn('syntax error at or near "BOOM"', msg)
        self.assertNotIn("01_x.sql", self.api.migrations)

    def test_more_than_40_statements_run_one_by_one_and_stop_at_first_error(self):
        stmts = [f"SELECT {i}" for i in range(1, 46)]
        stmts[41] = "SELECT BOOM"  # statement 42
        (self.dir / "02_big.sql").write_text(";\n".join(stmts) + ";")
        with self.assertRaises(DataApiError) as ctx:
            self.apply()
        self.assertIn("02_big.sql: statement 42:", str(ctx.exception))
        executed = [c[1] for c in self.api.calls if c[0] == "exec" and c[1].startswith("SELECT ") and "file_name" not in c[1]]
        self.assertEqual(len(executed), 42)  # 41 ok + the failing one; 43..45 never ran
        self.assertEqual(self.batches(), [])

    def test_exactly_40_statements_batch_then_bookkeeping(self):
        (self.dir / "03_full.sql").write_text(";".join(f"SELECT {i}" for i in range(40)))
        self.assertEqual(self.apply(), (["03_full.sql"], []))
        self.assertEqual([len(b) for b in self.batches()], [40, 2])
        self.assertIn("03_full.sql", self.api.migrations)

    def test_no_transaction_file_runs_statement_by_statement(self):
        (self.dir / "04_ext.sql").write_text(
            "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE 'x';\n"
            "CREATE EXTERNAL TABLE lake.t (a INT) LOCATION 's3://b/p/';"
        )
        self.assertEqual(self.apply(), (["04_ext.sql"], []))
        self.assertEqual([len(b) for b in self.batches()], [2])  # only the bookkeeping batch

    def test_placeholders_are_substituted_and_hashed_after_substitution(self):
        (self.dir / "20_lake.sql").write_text("CREATE TABLE t (loc VARCHAR(99) DEFAULT 's3://${LAKE_BUCKET}/${LAKE_PREFIX}');")
        self.assertEqual(self.apply(), (["20_lake.sql"], []))
        expected = "CREATE TABLE t (loc VARCHAR(99) DEFAULT 's3://fleetline-lake/vehicle_telematics_raw/')"
        self.assertEqual(self.batches()[0][0], expected)
        self.assertEqual(self.api.migrations["20_lake.sql"], apply_sql.file_sha256((expected + ";").encode()))
        # Same values: unchanged; another value: the file is re-applied with it.
        self.assertEqual(self.apply(), ([], ["20_lake.sql"]))
        variables = apply_sql.parse_vars(["LAKE_PREFIX=t-1/raw/"])
        applied = apply_sql.apply_dir(self.runner, self.dir, out=lambda _m: None, variables=variables)
        self.assertEqual(applied, (["20_lake.sql"], []))
        self.assertIn("s3://fleetline-lake/t-1/raw/", self.batches()[-1][0])

    def test_unknown_placeholder_names_the_file_and_bad_var_is_rejected(self):
        (self.dir / "21_x.sql").write_text("SELECT '${NOPE}';")
        with self.assertRaises(DataApiError) as ctx:
            self.apply()
        self.assertIn("21_x.sql", str(ctx.exception))
        self.assertIn("${NOPE}", str(ctx.exception))
        self.assertEqual(self.batches(), [])
        with self.assertRaises(apply_sql.PlaceholderError):
            apply_sql.parse_vars(["NO_EQUALS_SIGN"])
        self.assertEqual(apply_sql.parse_vars(["A=x=y"])["A"], "x=y")
        # Dollar-quoted bodies ($$, $1) are not placeholders.
        self.assertEqual(apply_sql.substitute("AS $$ SELECT $1 $$", {}, "f"), "AS $$ SELECT $1 $$")


class StackOutputsTests(unittest.TestCase):
    OUTPUTS = {
        "LakeBucketName": "fleetline-lakebucket-abc",
        "GlueDatabase": "fleetline_prod",
        "SpectrumRoleArn": "arn:aws:iam::123456789012:role/fleetline-spectrum",
        "RedshiftWorkgroup": "fleetline-wg",
        "RedshiftSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:adm",
    }

    def test_outputs_fill_target_secret_and_placeholders(self):
        args = apply_sql.parse_args(["--stack", "fleetline"])
        variables = apply_sql.parse_vars(args.var)
        self.assertIsNone(apply_sql.apply_stack_outputs(args, variables, self.OUTPUTS))
        self.assertTrue(args.aws)
        self.assertEqual(args.workgroup_name, "fleetline-wg")
        self.assertEqual(args.secret_arn, self.OUTPUTS["RedshiftSecretArn"])
        self.assertEqual(variables["LAKE_BUCKET"], "fleetline-lakebucket-abc")
        self.assertEqual(variables["GLUE_DATABASE"], "fleetline_prod")
        self.assertEqual(variables["SPECTRUM_IAM_ROLE"], self.OUTPUTS["SpectrumRoleArn"])
        self.assertEqual(variables["LAKE_PREFIX"], "vehicle_telematics_raw/")

    def test_flags_win_over_outputs(self):
        args = apply_sql.parse_args(
            ["--stack", "s", "--cluster-identifier", "c1", "--db-user", "admin", "--var", "LAKE_BUCKET=mine"]
        )
        variables = apply_sql.parse_vars(args.var)
        self.assertIsNone(apply_sql.apply_stack_outputs(args, variables, self.OUTPUTS))
        self.assertIsNone(args.workgroup_name)
        self.assertEqual(args.cluster_identifier, "c1")
        self.assertIsNone(args.secret_arn)
        self.assertEqual(variables["LAKE_BUCKET"], "mine")

    def test_stack_without_workgroup_needs_a_target(self):
        args = apply_sql.parse_args(["--stack", "s"])
        outputs = {k: v for k, v in self.OUTPUTS.items() if k != "RedshiftWorkgroup"}
        problem = apply_sql.apply_stack_outputs(args, apply_sql.parse_vars([]), outputs)
        self.assertIn("--workgroup-name or --cluster-identifier", problem)


if __name__ == "__main__":
    unittest.main()
