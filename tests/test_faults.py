"""Faults: real stop signals sent to real subprocesses, what SIGKILL leaves tidied by the next
command, outputs never replaced unasked, and one clear line per bad input (docs/faults.md)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.experiments.train import train
from pipeline.files import OutputPathError
from pipeline.inference.predict import run_predict
from tests.conftest import ROOT, tiny_overrides


def set_args(overrides: dict) -> list[str]:
    """``--set key=value`` options (JSON values are YAML flow values)."""
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "STANCE_TMPDIR": str(tmp_path / "scratch"),
        "HF_HUB_OFFLINE": "1",
    }


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(condition, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} too early: {proc.stderr.read()[-3000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"condition not met within {seconds}s")
        time.sleep(0.05)


def all_runs(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, run_view_type=3) if ids else []  # 3: active and deleted


def finish(proc: subprocess.Popen, seconds: float = 120) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"still running {seconds}s after the signal; stdout {out[-2000:]}; stderr {err[-6000:]}"
        ) from None


def empty(folder: Path) -> bool:
    return not folder.exists() or list(folder.iterdir()) == []


def training_started(scratch: Path):
    return lambda: scratch.is_dir() and any(scratch.glob("train-*"))


def command(name: str, tmp_path: Path, tiny_model_dir: Path) -> list[str]:
    """A command that trains until stopped: 1,000 epochs of the tiny model."""
    overrides = tiny_overrides(tmp_path, tiny_model_dir, **{"training.epochs": 1000})
    args = [name, "--config", "configs/finetune.yaml", *set_args(overrides)]
    if name == "sweep":
        args += ["--trials", "50", "--output", str(tmp_path / "best.yaml")]
    return args


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, sig",
    [("train", signal.SIGTERM), ("train", signal.SIGINT), ("cv", signal.SIGTERM), ("sweep", signal.SIGTERM)],
)
def test_a_stop_signal_ends_the_run_killed_with_its_reason_and_removes_temporary_files(
    name, sig, tmp_path, tiny_model_dir, env
):
    proc = start(command(name, tmp_path, tiny_model_dir), env)
    wait_until(training_started(tmp_path / "scratch"), proc)
    proc.send_signal(sig)
    _, err = finish(proc)
    assert proc.returncode == 128 + sig
    assert f"error: stopped by {sig.name}" in err and "Traceback" not in err
    runs = all_runs(env["MLFLOW_TRACKING_URI"])
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [(r.info.status, r.data.tags["error"]) for r in top] == [("KILLED", f"stopped by {sig.name}")]
    assert empty(tmp_path / "scratch")  # Trainer checkpoints gone
    assert empty(tmp_path / "models")  # no model folder, no staging left


@pytest.mark.slow
def test_after_sigkill_the_next_command_marks_the_run_failed_and_removes_what_it_left(tmp_path, tiny_model_dir, env):
    args = command("train", tmp_path, tiny_model_dir)
    proc = start(args, env)
    scratch = tmp_path / "scratch"
    wait_until(training_started(scratch), proc)
    proc.kill()
    proc.wait(timeout=30)
    uri = env["MLFLOW_TRACKING_URI"]
    (run,) = all_runs(uri)
    assert run.info.status == "RUNNING" and run.data.tags["pid"] == str(proc.pid)
    assert list(scratch.glob("train-*")) and list((tmp_path / "models" / ".staging").iterdir())

    compare_args = [sys.executable, "-m", "pipeline", "compare", *args[1:]]  # any command that opens the store
    compare = subprocess.run(compare_args, env=env, capture_output=True, text=True, timeout=300)
    assert compare.returncode == 0, compare.stderr
    assert f"marked FAILED 1 run(s) left RUNNING by a killed process: {run.info.run_id}" in compare.stdout
    (run,) = all_runs(uri)
    assert run.info.status == "FAILED" and f"process {proc.pid} on " in run.data.tags["error"]
    assert empty(scratch)

    again = start([*args, *set_args({"training.epochs": 1})], env)  # the next train clears the old staging
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["finetune-minilm"]


@pytest.fixture
def tfidf_model(tmp_path, tiny_model_dir, mlflow_store) -> Path:
    return train(load_config("configs/tfidf.yaml", tiny_overrides(tmp_path, tiny_model_dir))).model_dir


@pytest.mark.slow
def test_sigterm_during_predict_leaves_no_partial_output(tmp_path, tfidf_model, env):
    articles = tmp_path / "articles.jsonl"
    line = "Macron said on day {i} that Ukraine must never cede land. Putin refused any talks, his aides said.\n"
    articles.write_text("".join(json.dumps({"text": line.format(i=i)}) + "\n" for i in range(60_000)))
    out = tmp_path / "out" / "predictions.jsonl"
    proc = start(["predict", "--input", str(articles), "--output", str(out), "--model", str(tfidf_model)], env)
    wait_until(lambda: out.parent.is_dir() and any(out.parent.glob(".predictions.jsonl.*.tmp")), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc)
    assert proc.returncode == 143 and "error: stopped by SIGTERM" in err
    assert list(out.parent.iterdir()) == []


# ------------------------------------------------------------------ never replace unasked


def test_train_refuses_an_existing_model_folder_before_any_work(tmp_path, tiny_model_dir, mlflow_store):
    config = load_config("configs/tfidf.yaml", tiny_overrides(tmp_path, tiny_model_dir))
    first = train(config)
    spec = (first.model_dir / "stance.json").read_text()
    with pytest.raises(OutputPathError, match=r"exists \(model folder\); pass --overwrite"):
        train(config)
    assert (first.model_dir / "stance.json").read_text() == spec
    assert len(all_runs(mlflow_store)) == 1  # refused before a run was opened
    second = train(config, overwrite=True)
    assert second.run_id != first.run_id
    assert json.loads((second.model_dir / "stance.json").read_text())["info"]["mlflow_run_id"] == second.run_id


def test_predict_refuses_an_existing_output_and_report_and_replaces_them_only_when_asked(tmp_path, tfidf_model):
    articles = tmp_path / "articles.jsonl"
    articles.write_text(json.dumps({"text": "Macron urged talks with Russia."}) + "\n")
    out, report = tmp_path / "mine.jsonl", tmp_path / "report"
    out.write_text("not ours\n")
    with pytest.raises(OutputPathError, match=r"mine.jsonl exists \(predictions file\); pass --overwrite"):
        run_predict(articles, out, str(tfidf_model))
    assert out.read_text() == "not ours\n"
    report.mkdir()
    (report / "notes.txt").write_text("the user's\n")
    with pytest.raises(OutputPathError, match=r"report exists \(report folder\)"):
        run_predict(articles, tmp_path / "new.jsonl", str(tfidf_model), report_dir=report)
    assert not (tmp_path / "new.jsonl").exists() and (report / "notes.txt").exists()
    run_predict(articles, out, str(tfidf_model), report_dir=report, overwrite=True)
    assert json.loads(out.read_text().splitlines()[0])["actor"] == "macron"
    assert sorted(p.name for p in report.iterdir()) == [
        "dna.csv",
        "evidence.csv",
        "heatmap.png",
        "report.md",
        "stance_counts.csv",
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_outputs_are_checked_before_the_model_loads(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    articles = tmp_path / "articles.jsonl"
    articles.write_text(json.dumps({"text": "Macron urged talks."}) + "\n")
    with pytest.raises(
        OutputPathError, match=r"cannot write the predictions file .*: .*a-file is a file, not a folder"
    ):
        run_predict(articles, a_file / "out.jsonl", "no/such/model")  # the model would fail to load after


def test_spark_refuses_an_existing_output_before_starting_spark(tmp_path):
    from pipeline.inference.spark import predict_spark

    source = tmp_path / "pairs.jsonl"
    source.write_text(json.dumps({"text": "x", "actor": "macron", "target": "integrity"}) + "\n")
    existing = tmp_path / "scored.parquet"
    existing.mkdir()
    (existing / "keep.txt").write_text("ours? no: the user's")
    with pytest.raises(OutputPathError, match=r"scored.parquet exists \(Parquet output folder\); pass --overwrite"):
        predict_spark(str(source), str(existing), "no/such/model")
    assert (existing / "keep.txt").exists()


def test_stats_writes_a_file_only_when_asked_and_never_over_one(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["stats"]) == 0
    out = tmp_path / "stats.json"
    out.write_text("{}")
    assert main(["stats", "--output", str(out)]) == 1
    assert "stats.json exists (statistics file); pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "{}"
    assert main(["stats", "--output", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())


# ------------------------------------------------------------------ make: SET, CONFIG, clean


def make(*args: str) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent
    if shutil.which("make") is None or not (venv / ".installed").exists():
        pytest.skip("make, or a venv installed by make, is not available")
    return subprocess.run(["make", "-s", f"VENV={venv}", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_make_validate_honours_set(tmp_path):
    missing = tmp_path / "missing.jsonl"
    res = make("validate", f"SET=data.annotations={missing}")
    assert res.returncode != 0
    problems = [line for line in res.stderr.splitlines() if line.startswith(str(missing))]
    assert problems == [f"{missing}: corpus file not found"]  # one line for one cause


@pytest.mark.parametrize("target", ["predict", "serve", "bench", "tracking-server", "export"])
def test_make_targets_that_read_no_config_refuse_it(target):
    res = make(target, "CONFIG=configs/tfidf.yaml", "INPUT=seeds", "OUTPUT=x.jsonl")
    assert res.returncode == 2
    assert f"error: make {target} reads no config, so CONFIG= and SET= would be ignored" in res.stdout + res.stderr


def test_make_clean_deletes_only_the_venv_and_caches():
    res = make("-n", "clean")
    commands = res.stdout
    assert "rm -rf" in commands
    for kept in ("reports", "models", "mlflow.db", "mlartifacts"):
        assert kept not in commands


# ------------------------------------------------------------------ one line per cause


def test_a_broken_json_line_names_file_line_column_and_reason_once(tmp_path):
    from pipeline.data.corpus import parse_corpus

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "cut')  # a truncated last line
    _, issues = parse_corpus(corpus, load_config("configs/base.yaml").task)
    assert str(issues[0]) == f"{corpus}:1: not valid JSON: Unterminated string starting at column 21"
    corpus.write_text('{"id": "a", "text": "tab\there"}\n')
    _, issues = parse_corpus(corpus, load_config("configs/base.yaml").task)
    assert str(issues[0]) == f"{corpus}:1: not valid JSON: Invalid control character at column 25"
