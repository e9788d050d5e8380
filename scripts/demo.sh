#!/usr/bin/env bash
# Set up, land the Fashion-MNIST demo batches and materialize every asset into the local
# SQLite Dagster instance (.dagster_home). Sizes: DEMO_PER_CLASS (default 300), DEMO_BATCHES (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --runtime
export SYNTHAUG_DATA_ROOT="${SYNTHAUG_DATA_ROOT:-$PWD/data}"
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
.venv/bin/synthaug demo-data --per-class "${DEMO_PER_CLASS:-300}" --batches "${DEMO_BATCHES:-3}"
.venv/bin/synthaug run "$@"
