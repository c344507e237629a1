"""Scale-out paths on one machine: Spark UDF, REST serving, a tracking server, torchrun."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.data.datasets import build_dataset
from pipeline.experiments.evaluate import evaluate
from pipeline.experiments.train import train
from pipeline.models.registry import build_model, load_model
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds}s")


def post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    test = build_dataset(load_config("configs/base.yaml"))["test"].select(range(40))
    return pd.DataFrame({"text": test["text"], "actor": test["actor"], "target": test["target"]})


@pytest.fixture(scope="module")
def tiny_saved(tmp_path_factory, tiny_model_dir) -> Path:
    tmp = tmp_path_factory.mktemp("saved")
    config = load_config("configs/finetune.yaml", tiny_overrides(tmp, tiny_model_dir))
    model = build_model(config)
    model.fit(build_dataset(config)["train"].select(range(64)), None)
    return model.save(tmp / "tiny-model")


def test_spark_udf_matches_direct_predict(tiny_saved, pairs, tmp_path):
    pytest.importorskip("pyspark")
    from pipeline.inference.spark import SparkInputError, mlflow_model_uri, score_frame, spark_session, stance_udf

    spark = spark_session("local[2]")
    uri, labels = mlflow_model_uri(str(tiny_saved), tmp_path)
    udf = stance_udf(spark, uri, labels)
    scored = score_frame(spark.createDataFrame(pairs), udf).toPandas()
    direct = load_model(tiny_saved).predict(pairs)
    assert list(scored["label"]) == [p["label"] for p in direct]
    assert scored["prob_favor"].tolist() == pytest.approx([p["probs"]["favor"] for p in direct], abs=1e-5)
    with pytest.raises(SparkInputError, match=r"missing column\(s\) \['target'\]"):
        score_frame(spark.createDataFrame(pairs.drop(columns="target")), udf)
    # Called directly on a struct without the column, the UDF's own error names it too.
    from pyspark.sql import functions as F

    with pytest.raises(Exception, match="target"):
        spark.createDataFrame(pairs.drop(columns="target")).select(udf(F.struct("text", "actor")).alias("p")).collect()


def test_predict_spark_reads_jsonl_and_writes_parquet(tiny_saved, pairs, tmp_path):
    pytest.importorskip("pyspark")
    from pipeline.inference.spark import predict_spark

    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in pairs.to_dict("records")))
    out = tmp_path / "scored.parquet"
    stats = predict_spark(str(source), str(out), str(tiny_saved), "local[2]")
    assert stats["rows"] == len(pairs)
    result = pd.read_parquet(out)
    assert {"text", "actor", "target", "label", "prob_favor", "prob_against", "prob_none"} <= set(result.columns)
    assert not list(tmp_path.glob(".scored.parquet.tmp-*"))


def test_predict_spark_runs_the_runtime_asked_for(tiny_saved, pairs, tmp_path):
    pytest.importorskip("pyspark")
    import shutil

    from pipeline.inference.spark import predict_spark

    folder = shutil.copytree(tiny_saved, tmp_path / "model")
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in pairs.to_dict("records")))
    predict_spark(str(source), str(tmp_path / "scored.parquet"), str(folder), "local[2]", runtime="onnx")
    assert (folder / "onnx" / "model.onnx").is_file()  # exported once, by the driver
    result = pd.read_parquet(tmp_path / "scored.parquet")
    direct = load_model(folder).predict_proba(pairs)  # PyTorch: the folder's own runtime
    assert result["prob_favor"].tolist() == pytest.approx(direct[:, 0].tolist(), abs=1e-4)


def test_a_model_trained_for_int8_is_logged_with_its_onnx_file_and_served_on_it(
    mlflow_store, tmp_path, tiny_model_dir, pairs
):
    from pipeline.models.registry import locate

    overrides = {"model.runtime": "onnx-int8", "training.epochs": 1}
    config = load_config("configs/finetune.yaml", tiny_overrides(tmp_path, tiny_model_dir, **overrides))
    result = train(config)
    assert (result.model_dir / "onnx" / "model-int8.onnx").is_file()
    assert (locate(f"runs:/{result.run_id}/model") / "onnx" / "model-int8.onnx").is_file()  # in the logged model
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--model", "models:/stance-ukraine-seeds/1"]
        + ["--host", "127.0.0.1", "--port", str(port), "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", proc)
        records = pairs.head(8).to_dict("records")
        status, body = post(f"http://127.0.0.1:{port}/invocations", json.dumps({"dataframe_records": records}).encode())
        assert status == 200, body
        int8 = load_model(result.model_dir)
        assert int8.onnx is not None
        expected = int8.predict_proba(records)[:, 2]
        assert [p["prob_none"] for p in body["predictions"]] == pytest.approx(expected.tolist(), abs=1e-6)
    finally:
        stop(proc)


def test_rest_serving_answers_like_direct_predict(mlflow_store, tmp_path, tiny_model_dir, pairs):
    """`make serve`'s command: MLflow's scoring server with the row limit; bounded requests, loopback only."""
    config = load_config("configs/tfidf.yaml", tiny_overrides(tmp_path, tiny_model_dir))
    result = train(config)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--model", "models:/stance-ukraine-seeds/1"]
        + ["--host", "127.0.0.1", "--port", str(port), "--max-rows", "10", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", proc)
        url = f"http://127.0.0.1:{port}/invocations"
        records = pairs.head(8).to_dict("records")
        status, body = post(url, json.dumps({"dataframe_records": records}).encode())
        assert status == 200, body
        direct = load_model(result.model_dir).predict(records)
        assert [p["label"] for p in body["predictions"]] == [d["label"] for d in direct]
        assert body["predictions"][0]["prob_none"] == pytest.approx(direct[0]["probs"]["none"], abs=1e-6)
        split = {
            "columns": ["text", "actor", "target"],
            "data": [[r["text"], r["actor"], r["target"]] for r in records],
        }
        status, body = post(url, json.dumps({"dataframe_split": split}).encode())
        assert status == 200 and len(body["predictions"]) == 8

        status, body = post(url, json.dumps({"dataframe_records": records + records[:3]}).encode())  # 11 rows
        assert status == 413
        assert body["message"].startswith("11 rows in one request; the limit is 10 rows per request")
        status, body = post(url, b"{not json")
        assert 400 <= status < 500 and body.get("message")
        bad_actor = [{**records[0], "actor": "merkel"}]
        status, body = post(url, json.dumps({"dataframe_records": bad_actor}).encode())
        assert 400 <= status < 500 and "unknown actor 'merkel'" in body["message"]
        bad_target = [{**records[0], "target": "nato"}]
        status, body = post(url, json.dumps({"dataframe_records": bad_target}).encode())
        assert 400 <= status < 500 and "unknown target 'nato'" in body["message"]
        null_text = [records[0], {**records[1], "text": None}]
        status, body = post(url, json.dumps({"dataframe_records": null_text}).encode())
        assert status == 400 and "row 1: field 'text' must be a string, found null" in body["message"]
        status, body = post(url, json.dumps({"dataframe_records": [{**records[0], "actor": 7}]}).encode())
        assert status == 400 and "row 0: field 'actor' must be a string" in body["message"]
        status, body = post(url, json.dumps({"dataframe_records": [{"text": "x", "actor": "macron"}]}).encode())
        assert 400 <= status < 500 and "target" in body["message"]
        assert proc.poll() is None  # still serving after the bad requests
    finally:
        stop(proc)


def test_train_evaluate_compare_against_a_tracking_server(tmp_path, tiny_model_dir, monkeypatch):
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_for(f"{uri}/health", proc)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        config = load_config("configs/finetune.yaml", tiny_overrides(tmp_path, tiny_model_dir))
        result = train(config)
        metrics = evaluate(config)
        run = mlflow.MlflowClient(uri).get_run(result.run_id)
        assert run.data.metrics["test/f_avg"] == pytest.approx(metrics["test/f_avg"])
        assert (tmp_path / "server-artifacts").exists()  # artefacts went through the server
        from pipeline.experiments.compare import compare_runs

        assert result.run_id[:8] in set(compare_runs(config)["run_id"])
        mlflow.set_tracking_uri(None)
    finally:
        stop(proc)


def test_train_fails_fast_when_the_tracking_server_is_down(tmp_path, tiny_model_dir, monkeypatch):
    from pipeline.experiments.tracking import TrackingError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    calls = []
    monkeypatch.setattr("pipeline.experiments.train.build_model", lambda *a: calls.append(a))
    config = load_config("configs/finetune.yaml", tiny_overrides(tmp_path, tiny_model_dir))
    start = time.time()
    with pytest.raises(TrackingError, match=r"MLflow tracking server http://127.0.0.1:\d+ is not reachable"):
        train(config)
    assert time.time() - start < 15 and calls == []


def test_torchrun_two_cpu_processes_log_once_and_save_one_model(tmp_path, tiny_model_dir):
    db = tmp_path / "ddp.db"
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{db}", "OMP_NUM_THREADS": "1"}
    sets = [f"--set={k}={v}" for k, v in tiny_overrides(tmp_path, tiny_model_dir).items()]
    res = subprocess.run(
        [
            str(VENV_BIN / "torchrun"),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "pipeline",
            "train",
            "--config",
            "configs/finetune.yaml",
            *sets,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(experiment_names=["ukraine-seeds"])
    mlflow.set_tracking_uri(None)
    assert len(runs) == 1 and runs["status"].iloc[0] == "FINISHED"
    models = list((tmp_path / "models").iterdir())
    assert [p.name for p in models] == ["finetune-minilm"]
    spec = json.loads((models[0] / "stance.json").read_text())
    assert spec["info"]["world_size"] == 2
