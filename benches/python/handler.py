"""BASELINE ONLY - not part of Fleetline.

stream-processor's logic written the straightforward way in Python, as a team would write
a first Lambda handler without Fleetline: json + base64 from the standard library, a
boto3-shaped client, floats for the measures. It exists to be timed against the Rust
function on the same event (benches/python/driver.py, issue #9 item 2); nothing deploys
or imports it.

Per Kinesis batch: base64-decode and json.loads every record, validate it (required
fields, VIN, timestamp, ranges, the same rules as fleetline-core), skip in-batch
duplicates on (VIN, timestamp), dead-letter the invalid records (one S3 object each) and
insert the valid ones through the Redshift Data API: a temp stage table, multi-row
INSERT ... VALUES statements of at most 100 KB, an anti-join insert into speed.telemetry,
at most 40 statements per BatchExecuteStatement.

The clients are stand-ins with boto3's call shapes (`put_object`,
`batch_execute_statement`) that record the request instead of sending it, so the timing
covers the handler's own work, like the Rust benchmark (no network in either).
"""

import base64
import datetime as dt
import json
import re

MAX_STATEMENT_BYTES = 100_000
MAX_BATCH_STATEMENTS = 40
RAPID_THRESHOLD = 10.0  # km/h per s
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
VIN_RE = re.compile(r"^[A-Z0-9]{17}$")
REQUIRED = ("VIN", "trip_id", "timestamp", "vehicleSpeed", "acceleration", "odometer")

COLUMNS = ("vin, trip_id, ts, event_day, vehicle_speed, acceleration, odometer, "
           "rapid_acceleration, latitude, longitude, shard_id, sequence_number")
STAGE_DDL = (
    "CREATE TEMP TABLE stage_telemetry (vin CHAR(17) NOT NULL, trip_id VARCHAR(64) NOT NULL, "
    "ts TIMESTAMP NOT NULL, event_day DATE NOT NULL, vehicle_speed DECIMAL(12,3) NOT NULL, "
    "acceleration DECIMAL(10,4) NOT NULL, odometer DECIMAL(12,3) NOT NULL, "
    "rapid_acceleration SMALLINT NOT NULL, latitude DOUBLE PRECISION, "
    "longitude DOUBLE PRECISION, shard_id VARCHAR(128) NOT NULL, "
    "sequence_number VARCHAR(128) NOT NULL)")
INSERT_PREFIX = f"INSERT INTO stage_telemetry ({COLUMNS}) VALUES "
MERGE = (f"INSERT INTO speed.telemetry ({COLUMNS}) SELECT {COLUMNS} FROM stage_telemetry s "
         "WHERE NOT EXISTS (SELECT 1 FROM speed.telemetry t WHERE t.event_day = s.event_day "
         "AND t.vin = s.vin AND t.ts = s.ts)")
DROP = "DROP TABLE stage_telemetry"


class RecordingS3:
    """boto3 S3 client shape; keeps the requests."""

    def __init__(self):
        self.objects = 0
        self.bytes = 0

    def put_object(self, Bucket, Key, Body, ContentType=None):  # noqa: N803 - boto3 names
        self.objects += 1
        self.bytes += len(Body)
        return {"ETag": '"0"'}


class RecordingDataApi:
    """boto3 redshift-data client shape; keeps the requests."""

    def __init__(self):
        self.calls = 0
        self.statements = 0
        self.bytes = 0

    def batch_execute_statement(self, WorkgroupName, Database, Sqls):  # noqa: N803
        self.calls += 1
        self.statements += len(Sqls)
        self.bytes += sum(len(s) for s in Sqls)
        return {"Id": f"stmt-{self.calls}"}


class Invalid(Exception):
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def quote(s):
    if "\\" in s or "\x00" in s:
        raise Invalid("bad_trip_id", "value cannot be stored")
    return "'" + s.replace("'", "''") + "'"


def number(payload, field, lo, hi):
    v = payload[field]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Invalid("wrong_type", f"{field} must be a number")
    if not lo <= v <= hi:
        raise Invalid("out_of_range", f"{field} {v} outside [{lo}, {hi}]")
    return v


def parse_timestamp(text):
    if not isinstance(text, str):
        raise Invalid("wrong_type", "timestamp must be a string")
    try:
        ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("bad_timestamp", f"unparseable timestamp {text!r}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return ts.astimezone(dt.timezone.utc)


def validate(payload, now):
    if not isinstance(payload, dict):
        raise Invalid("not_an_object", "payload is not a JSON object")
    for field in REQUIRED:
        if payload.get(field) is None:
            raise Invalid("missing_field", f"required field {field} is missing")
    vin = payload["VIN"]
    if not isinstance(vin, str) or not VIN_RE.match(vin):
        raise Invalid("bad_vin", "VIN must be 17 characters of A-Z, 0-9")
    trip = payload["trip_id"]
    if not isinstance(trip, str) or not trip or len(trip) > 64:
        raise Invalid("bad_trip_id", "trip_id must be 1-64 characters")
    ts = parse_timestamp(payload["timestamp"])
    if ts > now + MAX_FUTURE_SKEW:
        raise Invalid("timestamp_in_future", "timestamp is in the future")
    if ts < EARLIEST:
        raise Invalid("timestamp_too_old", "timestamp before 2000")
    speed = number(payload, "vehicleSpeed", 0, 500)
    accel = number(payload, "acceleration", -100, 100)
    odo = number(payload, "odometer", 0, 10_000_000)
    loc = payload.get("location") or {}
    lat, lon = loc.get("latitude"), loc.get("longitude")
    return vin, trip, ts, speed, accel, odo, lat, lon


def row_literal(reading, shard_id, sequence_number):
    vin, trip, ts, speed, accel, odo, lat, lon = reading
    return "({},{},'{}','{}',{:.3f},{:.4f},{:.3f},{},{},{},{},{})".format(
        quote(vin), quote(trip), ts.strftime("%Y-%m-%d %H:%M:%S.%f"), ts.strftime("%Y-%m-%d"),
        speed, accel, odo, 1 if accel >= RAPID_THRESHOLD else 0,
        "NULL" if lat is None else repr(float(lat)),
        "NULL" if lon is None else repr(float(lon)),
        quote(shard_id), quote(sequence_number))


def statements(rows):
    """Multi-row INSERTs of at most MAX_STATEMENT_BYTES, wrapped per transaction."""
    chunks, current = [], INSERT_PREFIX
    for row in rows:
        sep = "," if current != INSERT_PREFIX else ""
        if len(current) + len(sep) + len(row) > MAX_STATEMENT_BYTES and current != INSERT_PREFIX:
            chunks.append(current)
            current, sep = INSERT_PREFIX, ""
        current += sep + row
    if current != INSERT_PREFIX:
        chunks.append(current)
    per = MAX_BATCH_STATEMENTS - 3
    return [[STAGE_DDL] + chunks[i:i + per] + [MERGE, DROP] for i in range(0, len(chunks), per)]


def lambda_handler(event, context, s3, data_api, now=None):
    """The handler; `s3`/`data_api` are boto3 clients in real life."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows, seen = [], set()
    counts = {"records_in": 0, "stored": 0, "rejected": 0, "duplicates": 0}
    for record in event["Records"]:
        counts["records_in"] += 1
        k = record["kinesis"]
        shard_id = record["eventID"].split(":", 1)[0]
        seq = k["sequenceNumber"]
        data = base64.b64decode(k["data"])
        try:
            try:
                payload = json.loads(data)
            except ValueError:
                raise Invalid("not_json", "payload is not JSON") from None
            reading = validate(payload, now)
            key = (reading[0], reading[2])
            if key in seen:
                counts["duplicates"] += 1
                continue
            row = row_literal(reading, shard_id, seq)
            seen.add(key)
            rows.append(row)
        except Invalid as e:
            counts["rejected"] += 1
            letter = {
                "reason": e.reason, "detail": e.detail, "shard_id": shard_id,
                "sequence_number": seq,
                "approximate_arrival": dt.datetime.fromtimestamp(
                    k["approximateArrivalTimestamp"], dt.timezone.utc).isoformat(),
                "partition_key": k["partitionKey"], "data_base64": k["data"],
                "function": "stream-processor",
            }
            s3.put_object(Bucket="fleetline-lake", Key=f"rejected/{shard_id}/{seq}.json",
                          Body=json.dumps(letter).encode(), ContentType="application/json")
    for tx in statements(rows):
        data_api.batch_execute_statement(WorkgroupName="fleetline", Database="dev", Sqls=tx)
    counts["stored"] = len(rows)
    return {"batchItemFailures": [], "counts": counts}
