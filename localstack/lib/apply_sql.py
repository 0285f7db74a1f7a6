"""Apply infra/sql/*.sql to Redshift (or the local emulator) through the Redshift Data API.

Files run in file-name order. Each file is split into statements; a file with at most 40
statements runs as one BatchExecuteStatement (one transaction), a longer one (or one marked
`-- fleetline:no-transaction`, or containing statements Redshift refuses inside a transaction
block) runs statement by statement, stopping at the first error. Applied files are recorded
with their sha256 in public.fleetline_schema_migrations; unchanged files are skipped, changed
ones re-applied (the SQL is written to be re-runnable: IF NOT EXISTS, CREATE OR REPLACE).

`${NAME}` placeholders are replaced before anything else (`--var NAME=VALUE`, repeatable;
local defaults in DEFAULT_VARS); an unknown placeholder is an error naming the file. The
substituted text is what gets split, run and hashed, so changing a value re-applies the file.
"""

import argparse
import datetime
import hashlib
import os
import re
import sys
import time
from pathlib import Path

MAX_BATCH = 40
MAX_STATEMENT_BYTES = 100 * 1024
MIGRATIONS_TABLE = "public.fleetline_schema_migrations"
DEFAULT_LOCAL_ENDPOINT = f"http://127.0.0.1:{os.environ.get('FLEETLINE_EMULATOR_PORT') or 4599}"
NO_TRANSACTION_MARK = "fleetline:no-transaction"
# Redshift runs these only outside a transaction block (so never inside a batch).
_NO_TXN_RE = re.compile(
    r"^\s*(create\s+external\s+table|drop\s+external\s+|vacuum\b|create\s+database|drop\s+database"
    r"|alter\s+table\s+\S+\s+append\b|alter\s+external\s+table|create\s+library|drop\s+library)",
    re.IGNORECASE,
)
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$]")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Local-stack values of the placeholders in infra/sql; on AWS pass your own with --var.
DEFAULT_VARS = {
    "LAKE_BUCKET": "fleetline-lake",
    "LAKE_PREFIX": "vehicle_telematics_raw/",
    "GLUE_DATABASE": "fleetline",
    "SPECTRUM_IAM_ROLE": "default",
}


class PlaceholderError(ValueError):
    pass


def substitute(text, variables, file_name):
    """Replace every ${NAME} in text; an unknown NAME raises PlaceholderError naming the file."""

    def one(match):
        name = match.group(1)
        if name not in variables:
            raise PlaceholderError(f"{file_name}: unknown placeholder ${{{name}}} (pass --var {name}=VALUE)")
        return variables[name]

    return _PLACEHOLDER.sub(one, text)


def parse_vars(pairs):
    """DEFAULT_VARS overridden by NAME=VALUE strings."""
    variables = dict(DEFAULT_VARS)
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise PlaceholderError(f"--var {pair!r}: expected NAME=VALUE")
        variables[name] = value
    return variables


class SplitError(ValueError):
    pass


def split_statements(sql):
    """Split SQL text into statements on top-level semicolons.

    Semicolons inside '...' strings ('' escapes; E'...' also backslash escapes), "..."
    identifiers, -- and /* */ comments (nested, as in PostgreSQL) and $$ / $tag$ dollar-quoted
    bodies do not split. Statements that contain only comments and whitespace are dropped.
    Returns the statements' text, stripped, without the trailing semicolon.
    """
    statements = []
    start = 0
    has_code = False
    i = 0
    n = len(sql)

    def flush(end):
        nonlocal has_code
        text = sql[start:end].strip()
        if has_code and text:
            statements.append(text)
        has_code = False

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif c == "/" and sql.startswith("/*", i):
            depth = 1
            j = i + 2
            while depth:
                if j >= n:
                    raise SplitError(f"unterminated /* comment starting at offset {i}")
                if sql.startswith("/*", j):
                    depth += 1
                    j += 2
                elif sql.startswith("*/", j):
                    depth -= 1
                    j += 2
                else:
                    j += 1
            i = j
        elif c == "'":
            prev = sql[i - 1] if i > 0 else ""
            backslash = prev in ("E", "e") and (i < 2 or not _IDENT_CHAR.match(sql[i - 2]))
            has_code = True
            j = i + 1
            while True:
                if j >= n:
                    raise SplitError(f"unterminated string literal starting at offset {i}")
                ch = sql[j]
                if backslash and ch == "\\":
                    j += 2
                elif ch == "'":
                    if sql.startswith("''", j):
                        j += 2
                    else:
                        j += 1
                        break
                else:
                    j += 1
            i = j
        elif c == '"':
            has_code = True
            j = i + 1
            while True:
                k = sql.find('"', j)
                if k < 0:
                    raise SplitError(f'unterminated "identifier" starting at offset {i}')
                if sql.startswith('""', k):
                    j = k + 2
                else:
                    i = k + 1
                    break
        elif c == "$" and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])):
            m = _DOLLAR_TAG.match(sql, i)
            has_code = True
            if m:
                tag = m.group(0)
                end = sql.find(tag, m.end())
                if end < 0:
                    raise SplitError(f"unterminated dollar-quoted string {tag} starting at offset {i}")
                i = end + len(tag)
            else:
                i += 1  # a positional parameter such as $1
        elif c == ";":
            flush(i)
            i += 1
            start = i
        else:
            if not c.isspace():
                has_code = True
            i += 1
    flush(n)
    return statements


def needs_no_transaction(text, statements):
    if NO_TRANSACTION_MARK in text:
        return True
    return any(_NO_TXN_RE.match(_strip_leading_comments(s)) for s in statements)


def _strip_leading_comments(stmt):
    s = stmt
    while True:
        s = s.lstrip()
        if s.startswith("--"):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1 :]
        elif s.startswith("/*"):
            end = s.find("*/")
            s = "" if end < 0 else s[end + 2 :]
        else:
            return s


def sql_literal(value):
    return "'" + value.replace("'", "''") + "'"


class DataApiError(Exception):
    pass


class Runner:
    """Runs SQL through the Data API and waits for the result."""

    def __init__(self, client, target, poll_interval=0.05, timeout=900.0):
        self.client = client
        self.target = target  # WorkgroupName/ClusterIdentifier, Database, SecretArn/DbUser
        self.poll_interval = poll_interval
        self.timeout = timeout

    def _wait(self, statement_id):
        deadline = time.monotonic() + self.timeout
        delay = self.poll_interval
        while True:
            desc = self.client.describe_statement(Id=statement_id)
            status = desc["Status"]
            if status == "FINISHED":
                return desc
            if status in ("FAILED", "ABORTED"):
                raise DataApiError(self._describe_failure(desc))
            if time.monotonic() > deadline:
                raise DataApiError(f"statement {statement_id} still {status} after {self.timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _describe_failure(desc):
        for idx, sub in enumerate(desc.get("SubStatements") or [], start=1):
            if sub.get("Status") in ("FAILED", "ABORTED") and sub.get("Error"):
                return f"statement {idx} of the batch failed: {sub['Error']}"
        return f"{desc['Status']}: {desc.get('Error') or 'no error message'}"

    def execute(self, sql):
        resp = self.client.execute_statement(Sql=sql, **self.target)
        return self._wait(resp["Id"])

    def batch(self, sqls):
        resp = self.client.batch_execute_statement(Sqls=sqls, **self.target)
        return self._wait(resp["Id"])

    def query(self, sql):
        desc = self.execute(sql)
        rows = []
        if not desc.get("HasResultSet"):
            return rows
        kwargs = {"Id": desc["Id"]}
        while True:
            page = self.client.get_statement_result(**kwargs)
            for record in page.get("Records", []):
                rows.append([_field_value(f) for f in record])
            token = page.get("NextToken")
            if not token:
                return rows
            kwargs["NextToken"] = token


def _field_value(field):
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        if key in field:
            return field[key]
    return None


def file_sha256(data):
    return hashlib.sha256(data).hexdigest()


def apply_dir(runner, sql_dir, force=False, out=print, variables=None):
    """Apply every *.sql file in sql_dir; returns (applied, skipped) file names."""
    variables = DEFAULT_VARS if variables is None else variables
    files = sorted(p for p in Path(sql_dir).iterdir() if p.is_file() and p.suffix == ".sql")
    runner.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        "file_name VARCHAR(256) NOT NULL, sha256 VARCHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    recorded = {row[0]: row[1] for row in runner.query(f"SELECT file_name, sha256 FROM {MIGRATIONS_TABLE}")}
    applied, skipped = [], []
    for path in files:
        try:
            text = substitute(path.read_bytes().decode("utf-8"), variables, path.name)
        except PlaceholderError as err:
            raise DataApiError(str(err)) from None
        digest = file_sha256(text.encode("utf-8"))
        if not force and recorded.get(path.name) == digest:
            skipped.append(path.name)
            continue
        try:
            statements = split_statements(text)
        except SplitError as err:
            raise DataApiError(f"{path.name}: cannot split into statements: {err}") from None
        for idx, stmt in enumerate(statements, start=1):
            if len(stmt.encode("utf-8")) > MAX_STATEMENT_BYTES:
                raise DataApiError(f"{path.name}: statement {idx} is larger than the Data API's 100 KB limit")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        record = [
            f"DELETE FROM {MIGRATIONS_TABLE} WHERE file_name = {sql_literal(path.name)}",
            f"INSERT INTO {MIGRATIONS_TABLE} (file_name, sha256, applied_at) VALUES "
            f"({sql_literal(path.name)}, {sql_literal(digest)}, {sql_literal(now)})",
        ]
        one_by_one = len(statements) > MAX_BATCH or needs_no_transaction(text, statements)
        how = "one by one" if one_by_one else "in one transaction"
        verb = "re-applying" if path.name in recorded else "applying"
        out(f"  {verb} {path.name}: {len(statements)} statement(s) {how}")
        t0 = time.monotonic()
        if one_by_one:
            for idx, stmt in enumerate(statements, start=1):
                try:
                    runner.execute(stmt)
                except DataApiError as err:
                    raise DataApiError(f"{path.name}: statement {idx}: {err}\n{_excerpt(stmt)}") from None
            runner.batch(record)
        else:
            batch = statements + record
            try:
                if len(batch) <= MAX_BATCH:
                    runner.batch(batch)
                else:  # statements fill the batch: bookkeeping right after, separately
                    runner.batch(statements)
                    runner.batch(record)
            except DataApiError as err:
                msg = str(err)
                m = re.match(r"statement (\d+) of the batch failed: (.*)", msg, re.DOTALL)
                if m and int(m.group(1)) <= len(statements):
                    idx = int(m.group(1))
                    raise DataApiError(
                        f"{path.name}: statement {idx}: {m.group(2)}\n{_excerpt(statements[idx - 1])}"
                    ) from None
                raise DataApiError(f"{path.name}: {msg}") from None
        out(f"  {path.name}: done in {time.monotonic() - t0:.1f}s")
        applied.append(path.name)
    return applied, skipped


def _excerpt(stmt, limit=300):
    one_line = " ".join(stmt.split())
    return "    > " + (one_line if len(one_line) <= limit else one_line[:limit] + " …")


def build_client(args):
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"max_attempts": 10, "mode": "adaptive"})
    if args.aws:
        # Real AWS: ignore AWS_ENDPOINT_URL[_REDSHIFT_DATA] so the regional endpoint is used.
        cfg = cfg.merge(Config(ignore_configured_endpoint_urls=True))
        return boto3.session.Session(region_name=args.region).client("redshift-data", config=cfg)
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_REDSHIFT_DATA") or DEFAULT_LOCAL_ENDPOINT
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "test",
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        region_name=args.region or "us-east-1",
    )
    return session.client("redshift-data", endpoint_url=endpoint, config=cfg)


# Stack output -> what it fills in (see template.yaml Outputs).
STACK_OUTPUT_VARS = {
    "LakeBucketName": "LAKE_BUCKET",
    "GlueDatabase": "GLUE_DATABASE",
    "SpectrumRoleArn": "SPECTRUM_IAM_ROLE",
}


def apply_stack_outputs(args, variables, outputs):
    """Fill what the command line left open from a deployed stack's outputs.

    Explicit flags and --var values win; `outputs` is {OutputKey: OutputValue}.
    Returns an error message when the target is still unknown (for example a stack deployed
    with ServingTarget=existing-cluster, which has no RedshiftWorkgroup output).
    """
    explicit = {pair.partition("=")[0] for pair in args.var or []}
    for key, name in STACK_OUTPUT_VARS.items():
        if key in outputs and name not in explicit:
            variables[name] = outputs[key]
    if not args.workgroup_name and not args.cluster_identifier:
        args.workgroup_name = outputs.get("RedshiftWorkgroup")
        if not args.workgroup_name:
            return (
                f"stack {args.stack} has no RedshiftWorkgroup output (existing workgroup or cluster): "
                "pass --workgroup-name or --cluster-identifier, and --secret-arn or --db-user"
            )
    if not args.secret_arn and not args.db_user:
        args.secret_arn = outputs.get("RedshiftSecretArn")
    return None


def read_stack_outputs(stack, region):
    import boto3
    from botocore.config import Config

    cfn = boto3.session.Session(region_name=region).client(
        "cloudformation", config=Config(ignore_configured_endpoint_urls=True)
    )
    stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def parse_args(argv):
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(
        prog="apply-sql",
        description="Apply infra/sql/*.sql through the Redshift Data API (local emulator or AWS).",
    )
    p.add_argument("--dir", default=str(here.parent.parent / "infra" / "sql"), help="SQL directory (default: infra/sql)")
    p.add_argument(
        "--endpoint-url",
        help=f"Data API endpoint (default: $AWS_ENDPOINT_URL_REDSHIFT_DATA, else {DEFAULT_LOCAL_ENDPOINT})",
    )
    p.add_argument("--aws", action="store_true", help="use the real AWS endpoint and credential chain")
    p.add_argument(
        "--stack",
        metavar="STACK_NAME",
        help="a deployed Fleetline CloudFormation stack: implies --aws and takes the workgroup, the "
        "secret and the lake/Glue/Spectrum placeholders from its outputs (flags still win)",
    )
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--workgroup-name",
        help="Redshift Serverless workgroup (default: $FLEETLINE_REDSHIFT_WORKGROUP, else fleetline)",
    )
    target.add_argument(
        "--cluster-identifier", help="provisioned Redshift cluster (default: $FLEETLINE_REDSHIFT_CLUSTER)"
    )
    p.add_argument(
        "--database",
        default=os.environ.get("FLEETLINE_REDSHIFT_DATABASE") or "dev",
        help="database (default: $FLEETLINE_REDSHIFT_DATABASE, else dev)",
    )
    p.add_argument("--secret-arn", help="Secrets Manager secret with the database credentials")
    p.add_argument("--db-user", help="database user (provisioned clusters, temporary credentials)")
    p.add_argument("--force", action="store_true", help="re-apply every file, even unchanged ones")
    p.add_argument("--dry-run", action="store_true", help="only split the files and print the statements")
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a ${NAME} placeholder (repeatable); local defaults: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_VARS.items()),
    )
    args = p.parse_args(argv)
    if args.stack:
        args.aws = True
    if not args.workgroup_name and not args.cluster_identifier and not args.stack:
        args.cluster_identifier = os.environ.get("FLEETLINE_REDSHIFT_CLUSTER") or None
        if not args.cluster_identifier:
            args.workgroup_name = os.environ.get("FLEETLINE_REDSHIFT_WORKGROUP") or "fleetline"
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sql_dir = Path(args.dir)
    if not sql_dir.is_dir():
        print(f"apply-sql: no such directory: {sql_dir}", file=sys.stderr)
        return 2
    try:
        variables = parse_vars(args.var)
    except PlaceholderError as err:
        print(f"apply-sql: {err}", file=sys.stderr)
        return 2
    if args.stack:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            outputs = read_stack_outputs(args.stack, args.region)
        except (ClientError, BotoCoreError) as err:
            print(f"apply-sql: cannot read the outputs of stack {args.stack}: {err}", file=sys.stderr)
            return 1
        problem = apply_stack_outputs(args, variables, outputs)
        if problem:
            print(f"apply-sql: {problem}", file=sys.stderr)
            return 2
        print(
            f"  apply-sql: stack {args.stack}: workgroup={args.workgroup_name or '-'} "
            f"cluster={args.cluster_identifier or '-'} lake=s3://{variables['LAKE_BUCKET']}/"
        )
    if args.dry_run:
        for path in sorted(p for p in sql_dir.iterdir() if p.suffix == ".sql"):
            try:
                stmts = split_statements(substitute(path.read_bytes().decode("utf-8"), variables, path.name))
            except PlaceholderError as err:
                print(f"apply-sql: {err}", file=sys.stderr)
                return 1
            print(f"-- {path.name}: {len(stmts)} statement(s)")
            for idx, stmt in enumerate(stmts, start=1):
                print(f"-- [{idx}]\n{stmt};")
        return 0

    target = {"Database": args.database}
    if args.cluster_identifier:
        target["ClusterIdentifier"] = args.cluster_identifier
    else:
        target["WorkgroupName"] = args.workgroup_name
    if args.secret_arn:
        target["SecretArn"] = args.secret_arn
    if args.db_user:
        target["DbUser"] = args.db_user

    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    runner = Runner(build_client(args), target)
    try:
        applied, skipped = apply_dir(runner, sql_dir, force=args.force, variables=variables)
    except DataApiError as err:
        print(f"apply-sql: FAILED: {err}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as err:
        print(f"apply-sql: Data API call failed: {err}", file=sys.stderr)
        if isinstance(err, EndpointConnectionError) and not args.aws:
            print(
                "apply-sql: is the local stack running (localstack/up)? For real AWS pass --aws.",
                file=sys.stderr,
            )
        return 1
    print(f"  apply-sql: {len(applied)} file(s) applied, {len(skipped)} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
