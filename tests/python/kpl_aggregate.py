"""Packs user records into KPL aggregated records with the aws-kinesis-agg package (an
aggregator independent of Fleetline's code), for tests/tests/kpl.rs.

stdin:  {"groups": [[{"pk": "...", "data_b64": "..."}, ...], ...]}
stdout: [{"pk": "...", "data_b64": "..."}, ...]  one aggregated Kinesis record per group
"""

import base64
import json
import sys

from aws_kinesis_agg.aggregator import RecordAggregator


def aggregate(group):
    agg = RecordAggregator()
    for rec in group:
        # add_user_record returns a finished record only when the new one did not fit.
        full = agg.add_user_record(rec["pk"], base64.b64decode(rec["data_b64"]))
        if full is not None:
            raise SystemExit("group does not fit in one aggregated record")
    if agg.get_num_user_records() != len(group):
        raise SystemExit("aggregator lost records")
    pk, _explicit_hash_key, data = agg.clear_and_get().get_contents()
    return {"pk": pk, "data_b64": base64.b64encode(data).decode("ascii")}


def main():
    request = json.load(sys.stdin)
    json.dump([aggregate(g) for g in request["groups"]], sys.stdout)


if __name__ == "__main__":
    main()
