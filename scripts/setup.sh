#!/usr/bin/env bash
# Create or reuse .venv in the repository root and install synthaug with its dev tools, plus the Debian
# packages it needs: demo data, the PostgreSQL server and Chromium that the service tests start
# (tests/pipelines/test_postgres.py, test_browser.py), and the Adwaita icon theme that
# tests/assets/test_external_images.py lands as images nobody here made. Safe to run again: it only does what is missing.
# The Dagster instance in DAGSTER_HOME gets config/dagster.yaml (SQLite), or with SYNTHAUG_INSTANCE=postgres
# config/dagster.postgres.yaml (needs SYNTHAUG_PG_HOST, _PORT, _USER, _PASSWORD, _DB).
#   bash scripts/setup.sh            # everything: what the pipeline needs, plus the test tools and services
#   bash scripts/setup.sh --runtime  # only what the pipeline needs (the demo): no PostgreSQL, Chromium, dev tools
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME_ONLY=0
[ "${1:-}" = "--runtime" ] && RUNTIME_ONLY=1
if ((RUNTIME_ONLY)); then
  APT_PACKAGES=(dataset-fashion-mnist)
  EXTRAS=""
else
  APT_PACKAGES=(dataset-fashion-mnist postgresql chromium adwaita-icon-theme)
  EXTRAS="[dev]"
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  if ! "$PYTHON" -m venv .venv; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -qq python3-venv && "$PYTHON" -m venv .venv
  fi
fi

# The stamp records what was installed for which pyproject.toml: "<hash> dev" satisfies both kinds of set-up.
stamp=.venv/.synthaug-install-stamp
hash="$(sha256sum pyproject.toml | cut -c1-64)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$hash dev" ] && { ((!RUNTIME_ONLY)) || [ "$have" != "$hash runtime" ]; }; then
  echo "setup: installing synthaug${EXTRAS} and its dependencies into .venv (torch is large; first time takes minutes)"
  # pip runs in the background with its log in a file, and a line every 10 s says where it is (never silent).
  pip_log="$(mktemp)"
  .venv/bin/pip install --disable-pip-version-check --progress-bar off -e ".${EXTRAS}" >"$pip_log" 2>&1 &
  pip_pid=$! started=$SECONDS
  next=$((started + 10))
  while kill -0 "$pip_pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)) && kill -0 "$pip_pid" 2>/dev/null; then
      next=$((next + 10))
      step="$(grep -E '^(Collecting|Installing|Building|Successfully)' "$pip_log" | tail -1 | cut -c1-90 || true)"
      echo "setup: pip install, $((SECONDS - started)) s, $(grep -c '^Collecting' "$pip_log" || true) packages so far: ${step:-starting}"
    fi
  done
  if ! wait "$pip_pid"; then
    grep -v "^WARNING: Location" "$pip_log" >&2 || true
    echo "setup: pip install failed (its log is above and in $pip_log)" >&2
    exit 1
  fi
  rm -f "$pip_log"
  echo "setup: checking that everything imports (the first import compiles Python files: about half a minute)"
  .venv/bin/python -c "import synthaug, dagster, dagster_postgres, torch, albumentations" || { echo "setup: install failed" >&2; exit 1; }
  if ((RUNTIME_ONLY)); then echo "$hash runtime" > "$stamp"; else echo "$hash dev" > "$stamp"; fi
fi

.venv/bin/python -c "from pipelines.cli import setup_instance; setup_instance()"
echo "setup: .venv ready"
