"""Runs one SQL statement through boto3's redshift-data client and prints the typed
result as JSON, so a Rust test can compare it with what the Rust SDK returns.

Usage: data_api_boto3.py '{"endpoint": "...", "database": "dev",
                           "workgroup": "fleetline", "sql": "...",
                           "parameters": [{"name": "...", "value": "..."}]}'
Prints: {"status": ..., "error": ..., "columns": [{"name", "typeName"}], "records": [[{...}]],
         "pages": n}
"""

import json
import os
import sys
import time

import boto3


def main() -> int:
    req = json.loads(sys.argv[1])
    client = boto3.client(
        "redshift-data",
        endpoint_url=req["endpoint"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    kwargs = {
        "WorkgroupName": req.get("workgroup", "fleetline"),
        "Database": req.get("database", "dev"),
        "Sql": req["sql"],
    }
    if req.get("parameters"):
        kwargs["Parameters"] = req["parameters"]
    statement_id = client.execute_statement(**kwargs)["Id"]
    deadline = time.time() + 60
    while True:
        desc = client.describe_statement(Id=statement_id)
        if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        if time.time() > deadline:
            print(json.dumps({"status": "TIMEOUT"}))
            return 1
        time.sleep(0.05)
    out = {"status": desc["Status"], "error": desc.get("Error"), "columns": [], "records": [], "pages": 0}
    if desc["Status"] == "FINISHED" and desc.get("HasResultSet"):
        token = None
        while True:
            page = client.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
            out["pages"] += 1
            out["columns"] = [{"name": c["name"], "typeName": c["typeName"]} for c in page["ColumnMetadata"]]
            out["records"].extend(page["Records"])
            token = page.get("NextToken")
            if not token:
                break
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
