"""The MLflow UI opens where the README says, checked in a real headless browser (Chromium).

Skipped where Chromium is not installed (`apt-get install chromium`); docs/tracking.md has
the same steps by hand, with screenshots.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import mlflow
import pytest

from pipeline.config import load_config
from pipeline.experiments.evaluate import evaluate
from pipeline.experiments.tracking import ui_url
from pipeline.experiments.train import train
from tests.conftest import tiny_overrides
from tests.test_scale import free_port, stop, wait_for

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def rendered(url: str) -> str:
    """The page's DOM after its scripts ran (the UI is a single-page app)."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=2400,1600"]
    args += ["--virtual-time-budget=30000", "--dump-dom", url]
    return subprocess.run(args, capture_output=True, text=True, timeout=180).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_the_ui_opens_on_the_runs_table_with_metric_columns_and_compares_figures(
    mlflow_store, tmp_path, tiny_model_dir
):
    config = load_config("configs/tfidf.yaml", tiny_overrides(tmp_path, tiny_model_dir))
    runs = []
    for _ in range(2):
        result = train(config, overwrite=True)
        evaluate(config)
        runs.append(result.run_id)
    port = free_port()
    db = mlflow_store.removeprefix("sqlite:///")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", mlflow_store]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(db).parent,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/health", proc)
        page = rendered(ui_url(config, base))
        for column in ("test/f_avg", "test/macro_f1"):  # (cv/f_avg/mean too, once a CV run exists)
            assert column in page  # a column of the runs table, not one added by hand
        assert "Detect Issues" not in page  # not MLflow 3's GenAI overview

        experiment = mlflow.get_experiment_by_name("ukraine-seeds").experiment_id
        query = {"runs": json.dumps(runs), "experiments": json.dumps([experiment])}
        compare = rendered(f"{base}/#/compare-runs?{urllib.parse.urlencode(query)}&workflowType=machine_learning")
        assert "No common artifacts to display" not in compare
        assert "test_confusion_all.png" in compare
    finally:
        stop(proc)
