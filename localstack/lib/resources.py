"""Create the LocalStack resources of the local stack when they are missing (idempotent).

Kinesis stream, lake bucket, a DirectPut Firehose delivery stream into the bucket (the
optional lake sink) with a minimal IAM role, and the lake change queue: the bucket's
s3:ObjectCreated:* notifications under the lake prefix go to an SQS queue, as template.yaml's
LakeBucket NotificationConfiguration and LakeChangesQueue wire it on AWS. Run with the
LocalStack venv's python.

`lake-changes add|remove` manages one more such queue on a bucket (a demo run with its own
lake prefix): a bucket has one notification configuration, so entries are merged by Id.
"""

import argparse
import json
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

FIREHOSE_ROLE = "fleetline-firehose-delivery"


def log(msg):
    print(f"  {msg}", flush=True)


def error_code(err):
    return err.response.get("Error", {}).get("Code", "")


def wait_until(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        state = check()
        if state is True:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what} (last: {state})")
        time.sleep(0.5)


def ensure_active(label, describe, create):
    """`label` exists (`describe()` gives its (status, summary)) or is made by `create()`
    (which says what it made); then waits until it is ACTIVE."""
    try:
        _, summary = describe()
        log(f"{label}: exists ({summary})")
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
        log(f"{label}: {create()}")

    def active():
        status = describe()[0]
        return True if status == "ACTIVE" else status

    wait_until(f"{label} to become ACTIVE", active)


def ensure_stream(kinesis, name, shards):
    def describe():
        desc = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        return desc["StreamStatus"], f"{desc['StreamStatus']}, {desc['OpenShardCount']} shards"

    def create():
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        return f"created with {shards} shards"

    ensure_active(f"kinesis stream {name}", describe, create)


def ensure_bucket(s3, name, region):
    try:
        s3.head_bucket(Bucket=name)
        log(f"s3 bucket {name}: exists")
        return
    except ClientError as err:
        if error_code(err) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    log(f"s3 bucket {name}: created")


def ensure_role(iam, bucket):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "firehose.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:GetBucketLocation",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:PutObject",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    try:
        arn = iam.get_role(RoleName=FIREHOSE_ROLE)["Role"]["Arn"]
        log(f"iam role {FIREHOSE_ROLE}: exists")
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        arn = iam.create_role(RoleName=FIREHOSE_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        log(f"iam role {FIREHOSE_ROLE}: created")
    iam.put_role_policy(RoleName=FIREHOSE_ROLE, PolicyName="lake-write", PolicyDocument=json.dumps(policy))
    return arn


def ensure_firehose(firehose, name, bucket, role_arn):
    def describe():
        status = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
            "DeliveryStreamStatus"
        ]
        return status, status

    def create():
        firehose.create_delivery_stream(
            DeliveryStreamName=name,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": role_arn,
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": "firehose/",
                "ErrorOutputPrefix": "firehose-errors/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
                "CompressionFormat": "UNCOMPRESSED",
            },
        )
        return f"created (DirectPut -> s3://{bucket}/firehose/)"

    ensure_active(f"firehose {name}", describe, create)


def ensure_queue(sqs, name):
    """The queue's (URL, ARN); created when missing (CreateQueue is idempotent for equal
    attributes). Retention and visibility as template.yaml's LakeChangesQueue."""
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"MessageRetentionPeriod": "1209600", "VisibilityTimeout": "900"},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def queue_exists(sqs, arn):
    try:
        sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1], QueueOwnerAWSAccountId=arn.split(":")[4])
        return True
    except ClientError:
        return False


def set_lake_changes(s3, sqs, bucket, entry_id, entry):
    """Replaces the bucket's queue notification `entry_id` with `entry` (None: removes it),
    keeping the other entries whose queue still exists (S3 validates every destination on
    PutBucketNotificationConfiguration)."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    queues = [
        q
        for q in current.get("QueueConfigurations", [])
        if q.get("Id") != entry_id and queue_exists(sqs, q["QueueArn"])
    ]
    if entry is not None:
        queues.append(dict(entry, Id=entry_id))
    config = {k: v for k, v in current.items() if k != "QueueConfigurations" and v}
    if queues:
        config["QueueConfigurations"] = queues
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def ensure_lake_changes(s3, sqs, bucket, prefix, queue):
    """Queue `queue` receives the bucket's s3:ObjectCreated:* notifications under `prefix`.
    Returns the queue URL (what `Ref LakeChangesQueue` is on AWS)."""
    url, arn = ensure_queue(sqs, queue)
    entry = {
        "QueueArn": arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
    }
    set_lake_changes(s3, sqs, bucket, queue, entry)
    log(f"sqs queue {queue}: s3://{bucket}/{prefix} ObjectCreated notifications ({url})")
    return url


def remove_lake_changes(s3, sqs, bucket, queue):
    set_lake_changes(s3, sqs, bucket, queue, None)
    try:
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    except ClientError as err:
        if "NonExistentQueue" not in error_code(err):
            raise
    log(f"sqs queue {queue}: removed with its notifications on s3://{bucket}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint-url", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--stream", default="vehicle-telemetry")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--bucket", default="fleetline-lake")
    p.add_argument("--firehose", default="fleetline-lake-delivery")
    p.add_argument("--lake-prefix", default="vehicle_telematics_raw/")
    p.add_argument("--lake-changes-queue", default="fleetline-lake-changes")
    p.add_argument(
        "action",
        nargs="*",
        help="empty: every resource; `lake-changes add|remove`: only the bucket's queue "
        "--lake-changes-queue for --lake-prefix (add prints the queue URL)",
    )
    args = p.parse_args(argv)
    if args.action and args.action not in (["lake-changes", "add"], ["lake-changes", "remove"]):
        p.error(f"unknown action {' '.join(args.action)!r}")

    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=args.region
    )
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"})

    def client(name):
        return session.client(name, endpoint_url=args.endpoint_url, config=cfg)

    if args.action == ["lake-changes", "add"]:
        url = ensure_lake_changes(client("s3"), client("sqs"), args.bucket, args.lake_prefix, args.lake_changes_queue)
        print(url)
        return 0
    if args.action == ["lake-changes", "remove"]:
        remove_lake_changes(client("s3"), client("sqs"), args.bucket, args.lake_changes_queue)
        return 0

    # Kinesis first: its first use installs and starts kinesis-local (npm) inside LocalStack.
    ensure_stream(client("kinesis"), args.stream, args.shards)
    ensure_bucket(client("s3"), args.bucket, args.region)
    role_arn = ensure_role(client("iam"), args.bucket)
    ensure_firehose(client("firehose"), args.firehose, args.bucket, role_arn)
    ensure_lake_changes(client("s3"), client("sqs"), args.bucket, args.lake_prefix, args.lake_changes_queue)
    return 0


if __name__ == "__main__":
    sys.exit(main())
