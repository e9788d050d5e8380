"""What `synthaug` prints: what the assets log and how long each step took, one line of what happened and what to do
for every failed step, and the summary; Dagster's own DEBUG event lines (tracebacks included) go to a log file."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dagster is imported only by the commands that run it (demo-data starts without it)
    from dagster import AssetCheckEvaluation, DagsterInstance, ExecuteInProcessResult, JobDefinition
    from dagster._utils.error import SerializableErrorInfo

DAGSTER_META = "dagster_meta"  # the attribute Dagster 1.13 puts its event and step on each log record
CHECK_HINTS = {
    "removed_share_within_limit": "see the gallery of removed images (Assets > clean_images > removed_examples), or "
    "raise max_removed_share (ops: clean_images: config: max_removed_share)",
}


class ConsoleHandler(logging.Handler):
    """Prints the assets' own log lines (INFO and up) and each step's duration; Dagster's events stay in the file."""

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, DAGSTER_META, None) or {}
        event, step = meta.get("dagster_event"), meta.get("step_key") or "run"
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        if event is None and record.levelno >= logging.INFO:
            level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
            print(f"  {when} {step}: {level}{meta.get('orig_message', record.getMessage())}", flush=True)
        elif event is not None and event.event_type_value == "STEP_SUCCESS":
            seconds = event.event_specific_data.duration_ms / 1000
            print(f"  {when} {step}: done in {_duration(seconds)}", flush=True)


def _duration(seconds: float) -> str:
    """`42 s` or `3.5 min`."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class RunLog:
    """Dagster's loggers for the runs of one command: `console` prints through `ConsoleHandler`, `file` writes every
    event at DEBUG in Dagster's own format to `path` (one file per command, under DAGSTER_HOME/logs)."""

    def __init__(self, home: Path, command: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = Path(home) / "logs" / f"synthaug-{command}-{stamp}-{os.getpid()}.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.FileHandler(self.path, encoding="utf-8")
        self._file.setFormatter(
            logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s", "%Y-%m-%d %H:%M:%S %z")
        )
        self._console = ConsoleHandler()

    def job(self, job: JobDefinition) -> JobDefinition:
        """`job` with the console and file loggers in place of Dagster's colored console logger."""
        from dagster import LoggerDefinition

        return job.with_logger_defs(
            {
                "console": LoggerDefinition(lambda _: self._logger("synthaug.console", self._console)),
                "file": LoggerDefinition(lambda _: self._logger("synthaug.dagster", self._file)),
            }
        )

    def run_config(self, run_config: Mapping) -> dict:
        """`run_config` with both loggers switched on."""
        return {**run_config, "loggers": {**run_config.get("loggers", {}), "console": {}, "file": {}}}

    def close(self) -> None:
        """Flush and close the log file."""
        self._file.close()

    @staticmethod
    def _logger(name: str, handler: logging.Handler) -> logging.Logger:
        logger = logging.Logger(name, logging.DEBUG)
        logger.addHandler(handler)
        return logger


@contextmanager
def run_log(home: Path, command: str) -> Iterator[RunLog]:
    """A `RunLog` for one command, its path printed first so a person knows where Dagster's events are."""
    log = RunLog(home, command)
    print(f"Dagster's event log (DEBUG, with tracebacks): {log.path}", flush=True)
    try:
        yield log
    finally:
        log.close()


def failure_lines(result: ExecuteInProcessResult, partition: str | None, log_path: Path) -> list[str]:
    """One line per failed blocking check and per failed step: what happened and what to do. A `dagster.Failure`
    says it in its description; any other exception is a bug, named with where its traceback is."""
    from dagster import AssetCheckSeverity

    checks = [
        e
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.blocking and e.severity == AssetCheckSeverity.ERROR
    ]
    lines = [_check_line(e, partition) for e in checks]
    where = f"[{partition}]" if partition else ""
    for event in result.get_step_failure_events():
        data = event.event_specific_data
        error = data.error
        if data.user_failure_data is not None and data.user_failure_data.description:
            lines.append(f"{event.step_key}{where}: {data.user_failure_data.description}")
        elif checks and error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            continue
        else:
            lines.append(_bug_line(f"{event.step_key}{where}", error, log_path))
    if not lines and not result.success:  # the run failed outside any step (e.g. while starting)
        failed = [e for e in result.all_events if e.event_type_value == "RUN_FAILURE"]
        error = failed[0].event_specific_data.error if failed and failed[0].event_specific_data else None
        lines.append(_bug_line(f"the run{where}", error, log_path))
    return lines


def _bug_line(what: str, error: SerializableErrorInfo | None, log_path: Path) -> str:
    """`what failed unexpectedly (a bug: ValueError: ...); traceback in <log>`, naming the innermost exception."""
    while error is not None and error.cause is not None:
        error = error.cause  # Dagster wraps the asset's exception: name that one
    message = (error.message.strip().splitlines() or [""])[0] if error is not None else "no error recorded"
    return f"{what} failed unexpectedly (a bug: {message}); traceback in {log_path}"


def _check_line(evaluation: AssetCheckEvaluation, partition: str | None) -> str:
    """`batch b2: 913 of 1000 images removed (91% > 50%): see the gallery, or raise max_removed_share`."""
    subject = f"batch {partition}" if partition else evaluation.asset_key.to_user_string()
    values = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    share, limit = values.get("removed_share"), values.get("limit")
    measured = f" ({share:.0%} > {limit:.0%})" if share is not None and limit is not None else ""
    hint = CHECK_HINTS.get(evaluation.check_name, f"see the check {evaluation.check_name} in the UI")
    what = evaluation.description or f"check {evaluation.check_name} failed"
    return f"{subject}: {what}{measured}: {hint}"


def latest_metadata(instance: DagsterInstance, asset: str, batch_id: str | None = None) -> dict | None:
    """The metadata of `asset`'s latest materialization (of one batch), as plain values; None when there is none."""
    from dagster import AssetKey, AssetRecordsFilter

    partitions = [batch_id] if batch_id is not None else None
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=partitions), limit=1
    ).records
    if not records:
        return None
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def print_summary(instance: DagsterInstance, model_lines: list[str]) -> None:
    """One line per batch and stage: the counts a person asks for first, and where to look; then `model_lines`."""
    from assets.partitions import BATCHES

    for batch_id in instance.get_dynamic_partitions(BATCHES):
        raw = latest_metadata(instance, "raw_images", batch_id)
        if raw is None:
            print(f"raw_images[{batch_id}]: not materialized")
            continue
        counts = f"{raw['num_ok']} ok, {raw['num_errors']} bad of {raw['num_files']} files"
        print(f"raw_images[{batch_id}]: {counts} -> {raw['path']}")
        clean = latest_metadata(instance, "clean_images", batch_id)
        if clean is not None:
            removed = ", ".join(f"{r} {n}" for r, n in clean["removed_by_reason"].items() if n) or "none"
            counts = f"{clean['num_kept']} kept of {clean['num_images']} (removed: {removed})"
            print(f"clean_images[{batch_id}]: {counts} -> {clean['path']}")
    for line in model_lines:
        print(line)


def print_verdict(instance: DagsterInstance) -> None:
    """The augmentation report's verdict and where to read it: the report folder and the check in the UI."""
    from dagster import AssetKey

    from synthaug.report.write import read_report

    event = instance.get_latest_materialization_event(AssetKey("augmentation_report"))
    if event is None:
        print("augmentation_report: not materialized (see the failures above); no verdict yet")
        return
    path = Path(event.asset_materialization.metadata["path"].value)
    try:
        report = read_report(path)
    except (FileNotFoundError, ValueError) as exc:
        print(f"augmentation_report: {exc}")
        return
    print(f"\naugmentation_report: {report['verdict']}")
    plots = ", ".join(report.get("files", {}).values())
    print(f"  report: {path / 'report.json'} (plots: {plots})")
    print("  in the UI: Assets > augmentation_report (metadata, and the check synthetic_set_recommended)")


def print_ui_hint(home: Path) -> None:
    """How to open the UI on the instance the command used."""
    print(
        f"\nRuns are recorded in the Dagster instance at {home}. Open the UI with:\n"
        f"  DAGSTER_HOME={home} .venv/bin/dagster dev -w workspace.yaml\n"
        "then browse http://127.0.0.1:3000 (Assets, Runs)."
    )
