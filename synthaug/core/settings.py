"""Every environment variable synthaug reads, in one place: where data and the Dagster instance live, automation
intervals, the training schedule, the compute device and torchrun's rank variables. Each is read when its function
is called (the code location calls them when it builds its definitions)."""

from __future__ import annotations

import os
from pathlib import Path

from synthaug.core.errors import InvalidInput


def data_root() -> Path:
    """Root of everything synthaug writes: `SYNTHAUG_DATA_ROOT`, default `./data`."""
    return Path(os.environ.get("SYNTHAUG_DATA_ROOT", "data")).expanduser().absolute()


def landing_dir() -> Path:
    """Folder users drop batches into: `SYNTHAUG_LANDING_DIR`, default `<data root>/landing`."""
    value = os.environ.get("SYNTHAUG_LANDING_DIR")
    return Path(value).expanduser().absolute() if value else data_root() / "landing"


def dagster_home() -> Path:
    """Dagster instance folder: `DAGSTER_HOME`, default `./.dagster_home` (SQLite storage)."""
    return Path(os.environ.get("DAGSTER_HOME", ".dagster_home")).expanduser().absolute()


DEFAULT_QUIET_PERIOD_S = 120.0


def _number(name: str, default: float) -> float:
    """A number from the environment; a value that is not one stops with the variable named."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{name}={text!r} is not a number; unset it or give seconds, e.g. {default:g}") from None


def quiet_period_seconds() -> float:
    """`SYNTHAUG_QUIET_PERIOD_SECONDS` (default 120): a batch without `_READY` is complete once unchanged this long."""
    return _number("SYNTHAUG_QUIET_PERIOD_SECONDS", DEFAULT_QUIET_PERIOD_S)


def sensor_interval_seconds() -> int:
    """`SYNTHAUG_SENSOR_INTERVAL_SECONDS` (default 15): how often the landing sensor looks for new batches."""
    return int(_number("SYNTHAUG_SENSOR_INTERVAL_SECONDS", 15))


def growth_sensor_interval_seconds() -> int:
    """`SYNTHAUG_GROWTH_SENSOR_INTERVAL_SECONDS` (default 60): how often the retraining sensor checks growth."""
    return int(_number("SYNTHAUG_GROWTH_SENSOR_INTERVAL_SECONDS", 60))


def automation_interval_seconds() -> int:
    """`SYNTHAUG_AUTOMATION_INTERVAL_SECONDS` (default 30): how often automation conditions are evaluated."""
    return int(_number("SYNTHAUG_AUTOMATION_INTERVAL_SECONDS", 30))


def training_growth_share_text() -> str | None:
    """`SYNTHAUG_TRAINING_GROWTH_SHARE` as written (parsed by `synthaug.models.growth.parse_growth_share`)."""
    return os.environ.get("SYNTHAUG_TRAINING_GROWTH_SHARE")


def training_cron() -> str:
    """`SYNTHAUG_TRAINING_CRON` (default `0 2 * * *`): when the training schedule runs."""
    return os.environ.get("SYNTHAUG_TRAINING_CRON", "").strip() or "0 2 * * *"


def training_timezone() -> str:
    """`SYNTHAUG_TRAINING_TIMEZONE` (default UTC) of the training schedule."""
    return os.environ.get("SYNTHAUG_TRAINING_TIMEZONE", "").strip() or "UTC"


def device() -> str:
    """`SYNTHAUG_DEVICE` (default `auto`: CUDA when present, else CPU)."""
    return os.environ.get("SYNTHAUG_DEVICE", "auto")


def instance_kind_text() -> str:
    """`SYNTHAUG_INSTANCE` as written, lower-cased (blank: the default SQLite instance)."""
    return os.environ.get("SYNTHAUG_INSTANCE", "").strip().lower()


def missing_variables(names: tuple[str, ...]) -> list[str]:
    """Which of the environment variables `names` are unset or empty."""
    return [name for name in names if not os.environ.get(name)]


def world_size() -> int:
    """`WORLD_SIZE`, set by torchrun (1 when run as a single process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """`LOCAL_RANK`, set by torchrun (0 when run as a single process)."""
    return int(os.environ.get("LOCAL_RANK", "0"))
