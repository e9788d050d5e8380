"""`synthaug`: the headless way in. Lands demo data, registers landed batches and materializes assets
through the same Dagster definitions and instance the UI uses, so every run shows up there."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from pipelines.console import RunLog, failure_lines, print_summary, print_ui_hint, print_verdict, run_log
from pipelines.console import latest_metadata as _latest_metadata
from synthaug.core import settings

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
INSTANCE_TEMPLATES = {"sqlite": CONFIG_DIR / "dagster.yaml", "postgres": CONFIG_DIR / "dagster.postgres.yaml"}
POSTGRES_ENV = ("SYNTHAUG_PG_HOST", "SYNTHAUG_PG_PORT", "SYNTHAUG_PG_USER", "SYNTHAUG_PG_PASSWORD", "SYNTHAUG_PG_DB")


def instance_kind() -> str:
    """`SYNTHAUG_INSTANCE`: `sqlite` (default, files under DAGSTER_HOME) or `postgres` (the SYNTHAUG_PG_* server)."""
    kind = settings.instance_kind_text() or "sqlite"
    if kind not in INSTANCE_TEMPLATES:
        raise SystemExit(
            f"synthaug: SYNTHAUG_INSTANCE={kind!r} is not an instance kind; use one of {', '.join(INSTANCE_TEMPLATES)}"
        )
    missing = settings.missing_variables(POSTGRES_ENV) if kind == "postgres" else []
    if missing:
        raise SystemExit(
            f"synthaug: SYNTHAUG_INSTANCE=postgres reads the server from {', '.join(POSTGRES_ENV)}, "
            f"but {', '.join(missing)} is not set; set it (see README, 'Production and deployment')"
        )
    return kind


def _uses_postgres(config_file: Path) -> bool:
    """True when an instance config file stores runs in PostgreSQL."""
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"synthaug: cannot read the Dagster instance config {config_file}: {exc}") from None
    sections = [config.get(k) or {} for k in ("run_storage", "event_log_storage", "schedule_storage")]
    return "postgres" in (config.get("storage") or {}) or any("postgres" in str(s.get("module", "")) for s in sections)


def prepare_dagster_home() -> Path:
    """Use `DAGSTER_HOME` (default ./.dagster_home), creating its dagster.yaml from the config/ file that
    `SYNTHAUG_INSTANCE` picks; refuse an existing one of the other kind when `SYNTHAUG_INSTANCE` is set."""
    kind = instance_kind()
    home = settings.dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(INSTANCE_TEMPLATES[kind], target)
    elif settings.instance_kind_text() and _uses_postgres(target) != (kind == "postgres"):
        found = "a PostgreSQL" if _uses_postgres(target) else "an SQLite"
        raise SystemExit(
            f"synthaug: {target} configures {found} instance, but SYNTHAUG_INSTANCE={kind}; point DAGSTER_HOME at "
            f"another folder, or delete {target} to have it replaced by {INSTANCE_TEMPLATES[kind]}"
        )
    return home


def ensure_pool_limits(instance) -> None:
    """Write the `gpu` pool's limit into the instance before any training is queued.

    Dagster 1.13's run queue writes a pool's default limit only on the first pass that sees a run needing it, and
    on that same pass treats the pool as unlimited: three trainings queued on a fresh instance would all start."""
    from assets.gan_checkpoint import GPU_POOL

    storage = instance.event_log_storage
    if GPU_POOL not in storage.get_concurrency_keys():
        storage.initialize_concurrency_limit_to_default(GPU_POOL)


def setup_instance() -> Path:
    """Prepare `DAGSTER_HOME` and write the pool limits, for set-up scripts; returns the home folder."""
    home = prepare_dagster_home()
    with open_instance():
        return home


@contextmanager
def open_instance() -> Iterator:
    """The instance of `DAGSTER_HOME`, with the `gpu` pool's limit written (every command that uses it opens it so)."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        ensure_pool_limits(instance)
        fail_orphaned_cli_runs(instance)
        yield instance


def fail_orphaned_cli_runs(instance) -> list[str]:
    """Mark failed the runs of `synthaug` commands on this host whose process is gone (killed, crashed) and free
    their pool slots: such a run stays STARTED forever and would hold the `gpu` pool against every later training.
    Returns the run ids it marked."""
    from dagster import DagsterRunStatus, RunsFilter

    from synthaug.core.processes import process_alive

    active = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    filters = RunsFilter(statuses=active, tags={"synthaug/launched_by": "cli", "synthaug/host": socket.gethostname()})
    marked = []
    for run in instance.get_runs(filters):
        pid = int(run.tags.get("synthaug/pid", "0"))
        if pid <= 0 or process_alive(pid):
            continue
        instance.report_run_failed(run, f"the synthaug process {pid} that ran this is gone (killed or crashed)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        print(f"synthaug: run {run.run_id} lost its process {pid}; marked it failed and freed its pool slots")
        marked.append(run.run_id)
    return marked


def _cli_run_tags() -> dict[str, str]:
    """Tags of a run this command executes: who launched it and which process runs it (see fail_orphaned_cli_runs)."""
    return {"synthaug/launched_by": "cli", "synthaug/host": socket.gethostname(), "synthaug/pid": str(os.getpid())}


def _load_run_config(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise SystemExit(f"synthaug: cannot read run config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SystemExit(f"synthaug: run config {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"synthaug: run config {path} must be a mapping like `ops: {{raw_images: {{config: ...}}}}`")
    return data


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Land Fashion-MNIST train images as PNG batches."""
    from synthaug.ingest.demo_data import DemoDataUnavailable, export_to_landing

    landing = Path(args.landing) if args.landing else settings.landing_dir()
    try:
        result = export_to_landing(
            landing,
            per_class=args.per_class,
            batches=args.batches,
            batch_prefix=args.prefix,
            source_dir=Path(args.source_dir) if args.source_dir else None,
            download_dir=Path(args.download_dir) if args.download_dir else None,
            progress=print,
        )
    except (DemoDataUnavailable, ValueError) as exc:
        print(f"synthaug demo-data: {exc}", file=sys.stderr)
        return 2
    total = sum(sum(c.values()) for c in result.per_batch_counts)
    print(f"{len(result.batch_dirs)} batches, {total} images in {landing}")
    return 0


def register_batches(instance, quiet_period_s: float) -> list[str]:
    """Register every complete, valid batch in the landing folder as a partition; return the new ones."""
    from assets.partitions import BATCHES
    from synthaug.ingest.landing import batch_readiness_from_mtimes, invalid_batch_id_reason, list_batch_folders

    landing = settings.landing_dir()
    new = []
    for batch_id in list_batch_folders(landing):
        if instance.has_dynamic_partition(BATCHES, batch_id):
            continue
        if reason := invalid_batch_id_reason(batch_id):
            print(f"skipped: {reason}")
            continue
        ready, why = batch_readiness_from_mtimes(landing / batch_id, time.time(), quiet_period_s)
        print(("registered: " if ready else "waiting: ") + why)
        if ready:
            new.append(batch_id)
    if new:
        instance.add_dynamic_partitions(BATCHES, new)
    return new


def cmd_register(args: argparse.Namespace) -> int:
    """Register complete landed batches as partitions, without materializing anything."""
    prepare_dagster_home()
    with open_instance() as instance:
        new = register_batches(instance, args.quiet_period)
    print(f"{len(new)} new batch(es) registered")
    return 0


def _materialize(
    instance,
    selection: Sequence[str],
    partitions: Sequence[str] | None,
    run_config: dict,
    only_missing: bool,
    log: RunLog,
) -> int:
    """Materialize the selected assets (every requested partition of the partitioned ones), Dagster's events in
    `log`; print one line per failure and return how many runs failed."""
    from dagster import AssetKey

    from assets.partitions import BATCHES
    from pipelines.definitions import defs

    job = log.job(defs.resolve_implicit_global_asset_job_def())
    graph = defs.resolve_asset_graph()
    keys = [AssetKey(name) for name in selection]
    unknown = [k.to_user_string() for k in keys if not graph.has(k)]
    if unknown:
        known = ", ".join(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))
        raise SystemExit(f"synthaug: unknown asset(s) {', '.join(unknown)}; known assets: {known}")
    partitioned = [k for k in keys if graph.get(k).partitions_def is not None]
    unpartitioned = [k for k in keys if k not in partitioned]
    registered = instance.get_dynamic_partitions(BATCHES)
    wanted = list(partitions) if partitions else registered
    missing_parts = sorted(set(wanted) - set(registered))
    if missing_parts:
        raise SystemExit(
            f"synthaug: batch(es) {', '.join(missing_parts)} are not registered; run `synthaug register` first"
        )
    failures = 0
    plan = []
    done = {k: instance.get_materialized_partitions(k) for k in partitioned} if only_missing else {}
    for partition in wanted:
        todo = [k for k in partitioned if not only_missing or partition not in done[k]]
        if todo:
            plan.append((partition, todo))
    if only_missing:  # unpartitioned assets read every batch: redo them when a batch was (re)done or they are missing
        unpartitioned = [k for k in unpartitioned if plan or instance.get_latest_materialization_event(k) is None]
    if unpartitioned:
        plan.append((None, unpartitioned))
    for i, (partition, todo) in enumerate(plan, start=1):
        names = ", ".join(k.to_user_string() for k in todo)
        where = f" [{partition}]" if partition else ""
        print(f"({i}/{len(plan)}) materializing {names}{where}", flush=True)
        result = job.execute_in_process(
            run_config=log.run_config(run_config),
            instance=instance,
            partition_key=partition,
            asset_selection=todo,
            raise_on_error=False,
            tags=_cli_run_tags(),
        )
        status = "succeeded" if result.success else "FAILED"
        print(f"({i}/{len(plan)}) {names}{where}: {status} (run {result.run_id})", flush=True)
        for line in failure_lines(result, partition, log.path):
            print(f"  {line}", flush=True)
        failures += 0 if result.success else 1
    if not plan:
        print("nothing to materialize: every selected partition is already materialized (use --all to redo)")
    return failures


def cmd_materialize(args: argparse.Namespace) -> int:
    """Materialize a selection of assets for some or all registered batches."""

    home = prepare_dagster_home()
    run_config = _load_run_config(args.config)
    with open_instance() as instance, run_log(home, "materialize") as log:
        failures = _materialize(
            instance, args.select.split(","), args.partition, run_config, only_missing=args.missing, log=log
        )
    print_ui_hint(home)
    return 1 if failures else 0


def cmd_run(args: argparse.Namespace) -> int:
    """Register landed batches, then materialize every asset for every batch not yet done."""

    print("loading Dagster and the asset definitions (the first time in a new .venv takes up to a minute)", flush=True)
    from pipelines.definitions import defs

    home = prepare_dagster_home()
    run_config = _load_run_config(args.config)
    selection = [k.to_user_string() for k in defs.resolve_asset_graph().toposorted_asset_keys]
    with open_instance() as instance, run_log(home, "run") as log:
        register_batches(instance, args.quiet_period)
        failures = _materialize(instance, selection, None, run_config, only_missing=not args.all, log=log)
        print_summary(instance, _model_lines(instance))
        print_verdict(instance)
    print_ui_hint(home)
    return 1 if failures else 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show landed batches, which are registered, and which are materialized per asset."""
    from dagster import AssetKey

    from assets.partitions import BATCHES
    from synthaug.ingest.landing import list_batch_folders

    prepare_dagster_home()
    with open_instance() as instance:
        registered = set(instance.get_dynamic_partitions(BATCHES))
        done = instance.get_materialized_partitions(AssetKey("raw_images"))
        for batch_id in sorted(set(list_batch_folders(settings.landing_dir())) | registered):
            state = "ingested" if batch_id in done else ("registered" if batch_id in registered else "landed")
            print(f"{batch_id}\t{state}")
    return 0


def _model_lines(instance) -> list[str]:
    """The model stages' headline numbers: extractor accuracy, GAN steps and quality, synthetic set size."""
    lines = []
    extractor = _latest_metadata(instance, "feature_extractor")
    if extractor is not None and extractor.get("val_accuracy") is not None:
        lines.append(f"feature_extractor: val accuracy {extractor['val_accuracy']:.3f} -> {extractor['path']}")
    gan = _latest_metadata(instance, "gan_checkpoint")
    if gan is not None:
        quality = [
            f"{name} {gan[name]:.3f} (real-vs-real {gan[name + '_floor']:.3f})"
            for name in ("fid", "cas")
            if gan.get(name) is not None and gan.get(name + "_floor") is not None
        ]
        if gan.get("cas_ratio") is not None:
            quality.append(f"CAS ratio {gan['cas_ratio']:.2f}")
        if gan.get("worst_class") is not None:
            quality.append(f"worst class {gan['worst_class']} (recall {gan['worst_class_recall']:.2f})")
        if gan.get("excluded_classes"):
            quality.append(f"not generated: {', '.join(sorted(gan['excluded_classes']))}")
        trained = f"step {gan['step']:,} after {gan['train_minutes']} training minutes"
        print_quality = f"; {', '.join(quality)}" if quality else ""
        lines.append(f"gan_checkpoint: {trained}{print_quality} -> {gan['path']}")
    synthetic = _latest_metadata(instance, "synthetic_images")
    if synthetic is not None:
        lines.append(
            f"synthetic_images: {synthetic['images']} accepted of {synthetic['planned']} planned (confidence "
            f"rejections {synthetic['confidence_rejection_rate']:.1%}, memorized {synthetic['memorized']}) "
            f"-> {synthetic['path']}"
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The `synthaug` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="synthaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="land Fashion-MNIST train images as PNG batches")
    demo.add_argument("--per-class", type=int, default=300, help="images per class in total (default 300)")
    demo.add_argument("--batches", type=int, default=3, help="number of arrival batches (default 3)")
    demo.add_argument("--prefix", default="fmnist", help="batch name prefix (default fmnist)")
    demo.add_argument("--landing", help="landing folder (default $SYNTHAUG_LANDING_DIR)")
    demo.add_argument("--source-dir", help="folder with the IDX files (default Debian's package folder)")
    demo.add_argument("--download-dir", help="if the files are not installed, download with torchvision here")
    demo.set_defaults(func=cmd_demo_data)

    quiet = settings.quiet_period_seconds()
    reg = sub.add_parser("register", help="register complete landed batches as partitions")
    reg.add_argument(
        "--quiet-period",
        type=float,
        default=quiet,
        help="seconds unchanged before a batch without _READY counts as complete",
    )
    reg.set_defaults(func=cmd_register)

    mat = sub.add_parser("materialize", help="materialize a selection of assets")
    mat.add_argument("--select", required=True, help="comma-separated asset names, e.g. raw_images")
    mat.add_argument("--partition", action="append", help="batch id (repeatable; default: every registered batch)")
    mat.add_argument("--missing", action="store_true", help="skip partitions already materialized")
    mat.add_argument("--config", help="Dagster run-config YAML with overrides")
    mat.set_defaults(func=cmd_materialize)

    run = sub.add_parser("run", help="register landed batches and materialize everything not yet done")
    run.add_argument("--config", help="Dagster run-config YAML with overrides")
    run.add_argument("--all", action="store_true", help="re-materialize partitions that are already done")
    run.add_argument("--quiet-period", type=float, default=quiet, help="as for `register`")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="list landed, registered and ingested batches")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `synthaug` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
