"""The Dagster UI in a real browser: Debian's Chromium, driven by Playwright, against `dagster dev` on a loopback port
with a tiny landed dataset. Checks what a user sees: every asset in the graph, the clean report's thumbnails, and a
one-partition materialization launched from the UI that completes. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

from pipelines import cli
from synthaug.ingest.demo_data import CLASS_NAMES
from tests.pipelines.services import CHROMIUM_FLAGS, REPO, DagsterDev, ingest_only_home

ARTIFACTS = REPO / "test-artifacts" / "browser"
CLEANED, LAUNCHED = "ui-001", "ui-002"
RUN_TIMEOUT_S = 180


def asset_names() -> list[str]:
    """Every asset key of the code location, read from the definitions so new assets are covered too."""
    from pipelines.definitions import defs

    return sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())


def node_shows(label: str, name: str) -> bool:
    """True when a graph node's label is the asset name, or the UI's middle-truncated form of it (`ab…yz`)."""
    if label == name:
        return True
    head, sep, tail = label.partition("…")
    return bool(sep) and name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)


@pytest.fixture
def ui_env(tmp_path: Path, landing: Path, data_root: Path, make_batch, monkeypatch) -> dict[str, str]:
    """Two landed and registered batches in a fresh local instance; the first holds an exact copy and a flat image."""
    make_batch(CLEANED, per_class=4, classes=3)
    shutil.copyfile(landing / CLEANED / CLASS_NAMES[0] / "img-000.png", landing / CLEANED / CLASS_NAMES[0] / "copy.png")
    cv2.imwrite(str(landing / CLEANED / CLASS_NAMES[1] / "flat.png"), np.full((28, 28), 128, np.uint8))
    make_batch(LAUNCHED, per_class=2, classes=2, offset=20)
    _, env = ingest_only_home(tmp_path, data_root, sensor_interval_s=5)
    env["SYNTHAUG_LANDING_DIR"] = str(landing)
    for name in ("DAGSTER_HOME", "SYNTHAUG_LANDING_DIR"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("SYNTHAUG_INSTANCE", raising=False)
    assert cli.main(["register", "--quiet-period", "0"]) == 0
    return env


def clean_first_batch(env: dict[str, str]) -> set[str]:
    """Ingest and clean the first batch with the `synthaug` CLI; return the reasons its clean report removed for."""
    cleaned = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "materialize", "--select", "raw_images,clean_images"]
        + ["--partition", CLEANED],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cleaned.returncode == 0, cleaned.stdout[-3000:] + cleaned.stderr[-3000:]
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(AssetKey("clean_images"))
        removed = event.asset_materialization.metadata["removed_by_reason"].value
    reasons = {reason for reason, count in removed.items() if count}
    assert reasons == {"exact_duplicate", "low_information"}, removed
    return reasons


@pytest.mark.slow
def test_ui_shows_every_asset_renders_clean_thumbnails_and_launches_one_partition(chromium, ui_env, tmp_path):
    home = ui_env["DAGSTER_HOME"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dev = DagsterDev(ui_env, tmp_path / "dagster_dev.log")
    try:
        expected_reasons = clean_first_batch(ui_env)
        dev.wait_until_up()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 2560, "height": 1440})
            page.set_default_timeout(60_000)
            try:
                _every_asset_is_in_the_graph(page, dev.url)
                _clean_report_thumbnails_render(page, dev.url, expected_reasons)
                run_id = _launch_one_partition_from_the_ui(page, dev.url)
                _run_completes(page, dev.url, run_id, home)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
                print(f"browser test failed; screenshot: {ARTIFACTS / 'failure.png'}")
                raise
            finally:
                browser.close()
    finally:
        dev.stop()

    with DagsterInstance.from_config(home) as instance:
        assert instance.get_materialized_partitions(AssetKey("raw_images")) == {CLEANED, LAUNCHED}
        (launched,) = instance.get_runs(RunsFilter(tags={"dagster/partition": LAUNCHED}))
        assert launched.run_id == run_id and launched.status == DagsterRunStatus.SUCCESS
    assert (Path(ui_env["SYNTHAUG_DATA_ROOT"]) / "raw" / LAUNCHED / "manifest.parquet").is_file()


def _every_asset_is_in_the_graph(page, url: str) -> None:
    """Open the global asset graph, expand every group, and find a node for each asset of the definitions."""
    page.goto(f"{url}/asset-groups")
    page.get_by_role("button", name=re.compile("Materialize all")).wait_for()
    graph = page.locator("svg").filter(has=page.locator("foreignObject")).first
    labels = page.locator("[class*='AssetNode_assetName']")
    expand = page.get_by_role("menuitem", name="Expand all groups")
    names = asset_names()
    missing = names
    deadline = time.monotonic() + 90
    while missing and time.monotonic() < deadline:
        shown = [label.strip() for label in labels.all_inner_texts()]
        missing = [n for n in names if not any(node_shows(label, n) for label in shown)]
        if missing:  # groups render collapsed: ask the graph's context menu to expand them all
            graph.wait_for()
            box = graph.bounding_box()
            page.mouse.click(box["x"] + 20, box["y"] + box["height"] - 20, button="right")
            try:
                expand.wait_for(timeout=3_000)
                expand.click()
            except PlaywrightTimeoutError:
                page.keyboard.press("Escape")
            time.sleep(1)
    page.screenshot(path=str(ARTIFACTS / "asset-graph.png"))
    print(f"asset graph screenshot: {ARTIFACTS / 'asset-graph.png'}")
    assert not missing, f"asset graph lacks {missing}; nodes shown: {labels.all_inner_texts()}"


def _clean_report_thumbnails_render(page, url: str, reasons: set[str]) -> None:
    """Open clean_images for the cleaned batch; the removed_examples gallery shows one decoded image per reason."""
    page.goto(f"{url}/assets/clean_images?view=partitions&partition={CLEANED}")
    row = page.locator("tr").filter(has=page.get_by_text("removed_examples", exact=True))
    row.get_by_text("[Show Markdown]").click()
    images = page.get_by_role("dialog").locator("img[src^='data:image/png;base64,']")
    images.first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"[role=dialog] img[src^='data:image/png;base64,']\")]"
        ".every(img => img.complete)"
    )
    rendered = images.evaluate_all(
        "els => els.map(e => ({alt: e.alt, width: e.naturalWidth, height: e.naturalHeight}))"
    )
    page.screenshot(path=str(ARTIFACTS / "clean-removed-examples.png"))
    print(f"clean report screenshot: {ARTIFACTS / 'clean-removed-examples.png'}")
    assert {img["alt"] for img in rendered} == reasons, rendered
    assert all(img["width"] > 0 and img["height"] > 0 for img in rendered), f"thumbnails did not decode: {rendered}"
    page.get_by_role("dialog").get_by_role("button", name="Close").click()


def _launch_one_partition_from_the_ui(page, url: str) -> str:
    """Materialize raw_images for the second batch through the launch dialog; return the launched run's id."""
    page.goto(f"{url}/assets/raw_images")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    item = page.get_by_role("menuitem", name=LAUNCHED)
    for attempt in range(3):  # the partition menu closes when anything else takes focus; open it again
        dialog.get_by_text("Select a partition or create one").click()
        try:
            item.click(timeout=15_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    page.keyboard.press("Escape")
    dialog.get_by_role("button", name="Launch 1 run").click()
    link = page.get_by_role("link", name="View", exact=True).first
    link.wait_for()
    href = link.get_attribute("href")
    match = re.search(r"/runs/([0-9a-f-]{36})", href or "")
    assert match, f"the launch toast links to {href!r}, not to a run"
    return match.group(1)


def _run_completes(page, url: str, run_id: str, home: str) -> None:
    """Watch the run page until the run ends; it must end in success, and the UI must say so."""
    page.goto(f"{url}/runs/{run_id}")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        with DagsterInstance.from_config(home) as instance:
            status = instance.get_run_by_id(run_id).status
        if status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            break
        time.sleep(1)
    assert status == DagsterRunStatus.SUCCESS, f"run {run_id} ended as {status} (or did not end in {RUN_TIMEOUT_S}s)"
    page.get_by_text("Success", exact=True).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "launched-run.png"))
    print(f"launched run screenshot: {ARTIFACTS / 'launched-run.png'}")
