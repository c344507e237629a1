"""Benchmark: the zero-shot backend against transformers' ``pipeline("zero-shot-classification")``.

Both zero-shot methods that run a classifier are timed: ``stance`` (the default: one forward
pass per (sentence, actor, target) row, the target read from its wording) and ``nli`` (one
pass per (premise, hypothesis) pair, as the pipeline), on the same weights.

Workload: every seed sentence (page furniture left out) x every actor x every target of the
task, the premise being the sentence with the actor's mentions marked, the hypotheses those
of ``configs/zeroshot-nli.yaml`` (one per label). Weights: the packaged all-MiniLM-L6-v2 with
a 3-way NLI head initialised in code (seeded; it is untrained, so decisions mean nothing,
but both sides compute the same thing with the same weights), saved to a temporary folder
that both load.

* backend: ``ZeroShotModel.predict_proba`` over the whole workload, mention gating on (as
  configured);
* pipeline: one call per (sentence, actor, target) with the hypotheses as candidate labels
  (``hypothesis_template="{}"``, ``multi_label=False``), the usual way, on a seeded sample of
  ``sample`` rows (the whole workload would take minutes), its time taken per row;
* backend with gating off on the same sample: the same work as the pipeline, so its ratio is
  what batching alone buys and its decisions should equal the pipeline's;
* stance (``method: stance``) over the whole workload, gating on, and ungated on the sample: the
  same weights saved as a stance model (the 3-way head's classes named favor, against, none
  instead of entailment, neutral, contradiction). Its decisions are not the pipeline's (one
  classification per row instead of ranked hypotheses), so only its speed is compared.

Each side runs in its own subprocess with one torch thread (see THREADS), so neither the
timings nor the memory figures mix:
peak RSS of the process (``resource.getrusage``), and the peak above the RSS after loading
the model, sampled every 5 ms by a psutil thread during the timed section.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CONFIG = "configs/zeroshot-nli.yaml"
SAMPLE = 600  # rows timed for the pipeline and the ungated backend (the workload is ~4,400 rows)
# One torch thread per side: on a shared 2-core machine, two threads per process oversubscribe the
# cores, and the pipeline's batch-1 forward passes suffer most (measured here under load: 0.13 s per
# pair with 2 threads, 0.02 s with 1), which would inflate the ratio.
THREADS = 1
BATCH_SIZE = 32  # pairs per forward pass of the backend (16 and 64 measured no faster here; 64 took more memory)
SEED = 13
WARMUP = 8
SIDES = ("stance", "stance_ungated", "backend", "backend_ungated", "pipeline")
STANCE_LABELS = ("favor", "against", "none")


def build_nli_minilm(folder: Path, seed: int = SEED) -> Path:
    """The packaged MiniLM encoder with a fresh 3-way classification head labelled as NLI classes."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from pipeline.models.encoders import PACKAGED_MODEL, resolve_base_model

    hf_logging.set_verbosity_error()  # "some weights newly initialised": the head, on purpose
    torch.manual_seed(seed)
    path = resolve_base_model(PACKAGED_MODEL)
    id2label = {0: "entailment", 1: "neutral", 2: "contradiction"}
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()}
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
    return folder


def build_stance_minilm(nli_dir: Path, folder: Path) -> Path:
    """The same weights as ``nli_dir``, saved as a stance model (a transformer-backend model folder)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pipeline.models.transformer import TransformerModel

    config = bench_config(nli_dir)
    id2label = dict(enumerate(STANCE_LABELS))
    model = TransformerModel(config.task, config.model.model_copy(update={"pooling": "cls"}))
    model.model = AutoModelForSequenceClassification.from_pretrained(
        nli_dir, id2label=id2label, label2id={v: k for k, v in id2label.items()}
    )
    model.tokenizer = AutoTokenizer.from_pretrained(nli_dir)
    model.save(folder)
    return folder


def bench_config(model_dir: Path, gating: bool = True, batch_size: int = BATCH_SIZE, stance_dir: Path | None = None):
    """configs/zeroshot-nli.yaml on the bench weights; the pipeline's truncation length (512).
    With ``stance_dir``: method stance on that stance model instead."""
    from pipeline.config import load_config

    over = {
        "zeroshot.model": str(model_dir),
        "model.max_length": 512,
        "zeroshot.mention_gating": gating,
        "zeroshot.batch_size": batch_size,
    }
    if stance_dir is not None:
        over |= {"zeroshot.method": "stance", "zeroshot.model": str(stance_dir), "zeroshot.calibrate": False}
    return load_config(CONFIG, over)


def workload(config) -> list[dict]:
    from pipeline.data.validate import load_records

    sentences = [r.text for r in load_records(config) if not r.furniture]
    return [
        {"text": s, "actor": a, "target": t}
        for s in sentences
        for a in config.task.actor_ids
        for t in config.task.target_ids
    ]


class PeakRss:
    """Samples this process's RSS in a thread; ``peak`` is the largest value seen."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self._proc, self._interval = psutil.Process(), interval
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _worker(side: str, workdir: Path) -> None:
    """Run one side in this (fresh) process; write its figures and decisions to workdir/<side>.json."""
    import psutil
    import torch

    from pipeline.models.inputs import InputFormatter, as_rows

    spec = json.loads((workdir / "spec.json").read_text())
    torch.set_num_threads(spec["threads"])
    model_dir = Path(spec["model_dir"])
    stance_dir = Path(spec["stance_dir"]) if side.startswith("stance") else None
    config = bench_config(model_dir, not side.endswith("_ungated"), spec["batch_size"], stance_dir)
    rows = spec["rows"] if side in ("backend", "stance") else [spec["rows"][i] for i in spec["sample"]]
    labels = list(config.task.labels)
    if side == "pipeline":
        from transformers import pipeline
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        clf = pipeline("zero-shot-classification", model=str(model_dir), device=-1)
        formatter = InputFormatter(config.task, config.model.input)
        hyps = config.zeroshot.hypotheses["default"]

        def run(batch: list[dict]) -> list[str]:
            out = []
            for r in as_rows(batch, config.task):
                actor, wording = config.task.actor(r.actor).name, config.task.target(r.target).wording
                candidates = {hyps[lab][0].format(actor=actor, target=wording): lab for lab in labels}
                res = clf(
                    formatter.pair(r)[1], candidate_labels=list(candidates), hypothesis_template="{}", multi_label=False
                )
                out.append(candidates[res["labels"][0]])
            return out
    else:
        from pipeline.models.registry import build_model

        model = build_model(config)
        model.fit(None)  # loads the model; no weight update, nothing calibrated

        def run(batch: list[dict]) -> list[str]:
            return [labels[i] for i in model.predict_proba(batch).argmax(axis=1)]

    run(rows[:WARMUP])
    loaded_rss = psutil.Process().memory_info().rss
    with PeakRss() as mem:
        start = time.perf_counter()
        decisions = run(rows)
        seconds = time.perf_counter() - start
    result = {
        "rows": len(rows),
        "seconds": seconds,
        "decisions": decisions,
        "rss_loaded": loaded_rss,
        "rss_peak_run": mem.peak,
        "rss_peak_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    (workdir / f"{side}.json").write_text(json.dumps(result))


def _run_side(side: str, workdir: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.zeroshot", "--worker", side, str(workdir)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {side!r} failed:\n{proc.stderr[-3000:]}")
    return json.loads((workdir / f"{side}.json").read_text())


def main(sample: int = SAMPLE, batch_size: int = BATCH_SIZE, sides: tuple[str, ...] = SIDES) -> None:
    from pipeline.data.actors import ActorMatcher

    mib = 1 / 2**20
    with tempfile.TemporaryDirectory(prefix="bench-zeroshot-") as tmp:
        workdir = Path(tmp)
        model_dir = build_nli_minilm(workdir / "nli-minilm")
        stance_dir = build_stance_minilm(model_dir, workdir / "stance-minilm")
        config = bench_config(model_dir)
        rows = workload(config)
        picked = sorted(random.Random(SEED).sample(range(len(rows)), min(sample, len(rows))))
        threads = config.zeroshot.threads or THREADS
        (workdir / "spec.json").write_text(
            json.dumps(
                {
                    "model_dir": str(model_dir),
                    "stance_dir": str(stance_dir),
                    "rows": rows,
                    "sample": picked,
                    "threads": threads,
                    "batch_size": batch_size,
                }
            )
        )
        matcher = ActorMatcher(config.task)
        mentioned = [r["actor"] in matcher.actors_in(r["text"]) for r in rows]
        print(
            f"workload: {len(rows)} rows (sentences x {len(config.task.actor_ids)} actors x "
            f"{len(config.task.target_ids)} targets), {sum(mentioned)} with the actor mentioned; "
            f"{len(config.task.labels)} hypotheses per row; packaged MiniLM + untrained 3-way NLI head; "
            f"torch threads {threads}; backend batch size {batch_size}",
            flush=True,
        )
        results = {}
        for side in sides:
            results[side] = _run_side(side, workdir)
            r = results[side]
            print(
                f"  {side:16s} {r['rows']:5d} rows in {r['seconds']:7.1f}s = {r['rows'] / r['seconds']:8.1f} rows/s; "
                f"peak RSS {r['rss_peak_process'] * mib:6.0f} MiB (process), "
                f"+{(r['rss_peak_run'] - r['rss_loaded']) * mib:5.0f} MiB above the loaded model while running",
                flush=True,
            )
    if set(SIDES) - set(results):
        return
    rate = {side: r["rows"] / r["seconds"] for side, r in results.items()}
    pipe = results["pipeline"]
    print(
        f"  pipeline and backend_ungated timed on a seeded sample of {pipe['rows']} of {len(rows)} rows; "
        f"the pipeline's whole workload would take ~{len(rows) / rate['pipeline']:.0f}s at its rate per row "
        f"(its cost per row hardly depends on the row: always {len(config.task.labels)} forward passes)"
    )
    for side in ("stance", "backend"):
        print(
            f"throughput ratio {side} / pipeline: {rate[side] / rate['pipeline']:.1f}x rows/s "
            f"(mention gating on, whole workload); {rate[side + '_ungated'] / rate['pipeline']:.1f}x "
            f"with gating off (same sample)"
        )
    for side in ("backend", "backend_ungated"):
        r = results[side]
        ours = [r["decisions"][i] for i in picked] if r["rows"] == len(rows) else r["decisions"]
        same = [a == b for a, b in zip(ours, pipe["decisions"])]
        on_mentioned = [s for s, i in zip(same, picked) if mentioned[i]]
        print(
            f"decision agreement {side} vs pipeline on the {len(picked)} sampled rows: "
            f"{sum(same) / len(same):.3f}; on the {len(on_mentioned)} with the actor mentioned: "
            f"{sum(on_mentioned) / max(len(on_mentioned), 1):.3f}"
        )
    print(
        "(gating answers none without the model where the actor is not mentioned; the pipeline has no gating, "
        "so on unmentioned rows it says whatever the untrained head says)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
