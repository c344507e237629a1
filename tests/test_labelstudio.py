"""A real Label Studio round trip: suggest -> Label Studio (its own venv, 127.0.0.1) -> annotate
through the API as the editor would -> export -> import into a corpus -> retrain a tiny model."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.annotate.merge import import_annotations
from pipeline.annotate.suggest import suggest
from pipeline.config import load_config
from pipeline.data.datasets import build_dataset
from pipeline.experiments.train import train
from tests.conftest import ROOT, tiny_overrides

pytestmark = pytest.mark.slow

LS_STAMP = ROOT / ".venv-labelstudio" / ".installed"  # what `make annotate` depends on
TIMEOUT = 30  # seconds per API request
START_TIMEOUT = 300  # a first start runs Label Studio's database migrations

ARTICLES = {
    "talks": "Macron said talks with Russia must return to the table. Zelensky refused territorial concessions. "
    "Putin says Ukraine must cede land for peace.",
    "kyiv": "Zelensky urged support for Ukraine's territorial integrity. Macron will not back concessions to "
    "Russia. The Kremlin refused negotiations on Kyiv.",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# An outer `make test` passes its flags down (-B would reinstall Label Studio inside the start timeout).
MAKE_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


def make(target: str, tasks: Path, data_dir: Path, port: int, *more: str) -> list[str]:
    """The README's command: `make <target>` with the tasks folder, data folder and port."""
    return [
        "make",
        "-s",
        "--no-print-directory",
        target,
        f"TASKS={tasks}",
        f"LS_DATA={data_dir}",
        f"LS_PORT={port}",
        *more,
    ]


class Studio:
    """`make annotate`, in its own process group, as a terminal runs it."""

    def __init__(self, tasks: Path, data_dir: Path, port: int):
        self.port, self.data_dir, self.lines = port, data_dir, queue.Queue()
        self.proc = subprocess.Popen(
            make("annotate", tasks, data_dir, port),
            cwd=ROOT,
            env=MAKE_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.output: list[str] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, prefix: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, f"serve exited {self.proc.returncode}:\n{''.join(self.output)}"
                continue
            self.output.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} within {START_TIMEOUT} s:\n{''.join(self.output)}")

    def api(self, method: str, path: str, body=None):
        token = (self.data_dir / "api-token").read_text().strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"null")

    def stop(self) -> None:
        """Ctrl-C to the whole group, as a terminal does; a kill if that is not enough."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def choices(name: str, values: list[str], i: int) -> dict:
    """A result item as Label Studio's editor writes it (with its id and origin)."""
    value = {"choices": values}
    return {"id": f"r{i}", "from_name": name, "to_name": "text", "type": "choices", "value": value, "origin": "manual"}


def annotate(studio: Studio, project_id: int, names: dict[str, str], labels: list[str]) -> dict[str, set]:
    """Submit an annotation for each task but the last (skipped); return unit -> (actor, target, label)."""
    tasks = studio.api("GET", f"/api/tasks?project={project_id}&page_size=100")["tasks"]
    assert len(tasks) == 5
    expected = {}
    for k, t in enumerate(sorted(tasks, key=lambda t: t["data"]["rank"])):
        data = t["data"]
        if k == 4:  # the annotator skips it
            studio.api("POST", f"/api/tasks/{t['id']}/annotations/", {"result": [], "was_cancelled": True})
            continue
        # task 1 ticks actors by name (a choice's value), the others by id (the alias the editor writes)
        ticked = [names[a] for a in data["actors"]] if k == 1 else list(data["actors"])
        result, chosen = [choices("actors", ticked, 0)], set()
        for i, actor in enumerate(data["actors"]):
            for j, target in enumerate(["concessions", "integrity", "negotiations"]):
                if k == 2 and j == 2:  # left unanswered: the importer gives it the none label
                    chosen.add((actor, target, "none"))
                    continue
                label = labels[(k + i + j) % len(labels)]
                result.append(choices(f"{actor}__{target}", [label], len(result)))
                chosen.add((actor, target, label))
        studio.api("POST", f"/api/tasks/{t['id']}/annotations/", {"result": result, "lead_time": 4.2})
        expected[data["unit_id"]] = chosen
    return expected


def test_label_studio_round_trip(tmp_path, tiny_model_dir, mlflow_store):
    assert LS_STAMP.is_file(), "Label Studio's venv is missing: make .venv-labelstudio/.installed (make test does)"
    started = time.monotonic()
    articles = tmp_path / "articles"
    articles.mkdir()
    for name, text in ARTICLES.items():
        (articles / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    base = load_config("configs/finetune.yaml", tiny_overrides(tmp_path, tiny_model_dir, **{"training.epochs": 1}))
    first = train(base)
    folder = tmp_path / "suggestions"
    picked = suggest(articles, folder, [str(first.model_dir)], n=5, log=False).picked
    assert len(picked) == 5 and {"tasks.json", "label_config.xml"} <= {p.name for p in folder.iterdir()}

    studio = Studio(folder, tmp_path / "ls-data", free_port())
    try:
        assert "created project" in studio.wait_for("created project")
        url = studio.wait_for("Label Studio: http://127.0.0.1:")
        project_id = int(url.rstrip().split("/projects/")[1].split("/")[0])
        user = os.environ.get("LS_USERNAME") or "annotator@localhost"  # the stored account, created on this first start
        assert studio.wait_for("login: ").split()[1] == user
        names = {a.id: a.name for a in base.task.actors}
        expected = annotate(studio, project_id, names, list(base.task.labels))
        export = tmp_path / "export.json"
        command = make("export-annotations", folder, studio.data_dir, studio.port, f"EXPORT={export}")
        done = subprocess.run(command, cwd=ROOT, env=MAKE_ENV, capture_output=True, text=True, timeout=START_TIMEOUT)
    finally:
        studio.stop()
    assert studio.proc.returncode is not None
    assert done.returncode == 0, done.stderr
    exported = json.loads(export.read_text())
    assert len(exported) == 5 and all(a["prediction"]["result"] for t in exported for a in t["annotations"])

    corpus = tmp_path / "annotated.jsonl"
    summary = import_annotations(export, corpus, base.task)
    assert summary.written
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    got = {r["id"]: {(lab["actor"], lab["target"], lab["label"]) for lab in r["labels"]} for r in records}
    assert got == expected  # four annotated units, the skipped one absent

    extra = [{"name": "annotated", "annotations": str(corpus), "task": "configs/tasks/ukraine-war.yaml"}]
    again = load_config(
        "configs/finetune.yaml",
        tiny_overrides(tmp_path, tiny_model_dir, **{"training.epochs": 1, "data.extra_train": extra, "name": "again"}),
    )
    dd = build_dataset(again)
    labels = dd["train"].features["label"].names
    arrived = {(r["unit_id"], r["actor"], r["target"], labels[r["label"]]) for r in dd["train"] if r["unit_id"] in got}
    assert arrived == {(u, *lab) for u, labs in expected.items() for lab in labs}
    assert train(again).model_dir.is_dir()
    print(f"round trip in {time.monotonic() - started:.0f} s")
