"""Entry point of the stream env's Flink jobs: ``python -m clinops.streaming.flink bronze-to-silver --lake …``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from clinops.data.schemas import ENTITY_BY_EVENT_TYPE, EventType
from clinops.streaming.flink.drift_sql import add_drift_parser, drift_options


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m clinops.streaming.flink", description=__doc__)
    jobs = root.add_subparsers(dest="job", required=True)
    job = jobs.add_parser("bronze-to-silver", help="Validate bronze events into silver Parquet and quarantine.")
    job.add_argument("--lake", required=True, help="Lake root: a directory or s3://bucket/prefix.")
    job.add_argument("--source", choices=["files", "kafka"], default="files", help="Bronze objects or Kafka topics.")
    job.add_argument("--bootstrap", help="Kafka bootstrap servers (host:port) for --source kafka.")
    job.add_argument("--group-id", default="clinops-bronze-to-silver", help="Kafka consumer group.")
    job.add_argument("--bounded", action="store_true", help="Kafka: stop at the offsets current at start.")
    job.add_argument("--parallelism", type=int, default=2, help="Parallelism of every operator.")
    job.add_argument("--checkpoint-interval", type=float, default=10.0, help="Seconds between checkpoints.")
    job.add_argument("--lateness", type=int, default=300, help="Kafka: seconds an event may trail the newest one.")
    job.add_argument(
        "--entity",
        action="append",
        choices=sorted(ENTITY_BY_EVENT_TYPE.values()),
        help="Only these entities (repeatable; default: all).",
    )
    job.add_argument("--explain", action="store_true", help="Print the optimized plan instead of running.")
    job.add_argument("--print-sql", action="store_true", help="Print the job's SQL script instead of running.")
    job.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Extra Flink configuration.")
    add_drift_parser(jobs)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.job == "drift":
        return drift(args)
    if args.source == "kafka" and not args.bootstrap:
        parser().error("--source kafka needs --bootstrap host:port")
    if args.parallelism < 1:
        parser().error("--parallelism must be at least 1")
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser().error(f"--set takes KEY=VALUE, not {item!r}")
        extra[key] = value
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Heavy imports (pyflink, pandas) after argument errors are out of the way.
    from clinops.streaming.flink.silver_job import FlinkJobError, RunOptions, job_statements, run
    from clinops.streaming.flink.silver_sql import SourceKind

    by_entity = {name: kind for kind, name in ENTITY_BY_EVENT_TYPE.items()}
    kinds = tuple(by_entity[name] for name in args.entity) if args.entity else tuple(EventType)
    options = RunOptions(
        lake=args.lake,
        source=SourceKind(args.source),
        bootstrap=args.bootstrap,
        group_id=args.group_id,
        bounded=args.bounded,
        parallelism=args.parallelism,
        checkpoint_interval_s=args.checkpoint_interval,
        lateness_s=args.lateness,
        kinds=kinds,
        extra_config=extra,
        explain=args.explain,
    )
    if args.print_sql:
        print(job_statements(options).script())
        return 0
    try:
        result = run(options)
    except FlinkJobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.explain:
        timing = {"seconds": round(result.seconds, 2), "runtime_s": round(result.runtime_s, 2)}
        print(json.dumps({"job_id": result.job_id, **timing, "replaced": result.replaced}))
    return 0


def drift(args: argparse.Namespace) -> int:
    try:
        options = drift_options(args)
    except ValueError as exc:
        parser().error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from clinops.streaming.flink.drift_job import run as run_drift
    from clinops.streaming.flink.silver_job import FlinkJobError

    try:
        result = run_drift(options)
    except FlinkJobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not options.explain:
        timing = {"seconds": round(result.seconds, 2), "runtime_s": round(result.runtime_s, 2)}
        print(json.dumps({"job_id": result.job_id, **timing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
