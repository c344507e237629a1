"""Benchmark of inference on new articles, on every runtime (``make bench`` or
``python -m benchmarks predict``).

* Throughput, for torch, onnx and onnx-int8 on the same pairs: the end-to-end predict path
  (read JSONL, segment, match actors, the long-sentence rule, classify, write JSONL) against a
  bare pass of the same model over the same (actor and target, sentence) pairs: tokenize +
  forward only, with the same batching (chunks of 256 pairs sorted by length, batches of
  ``eval_batch_size``), the physical limit on this machine. Each is timed three times,
  alternately, and the fastest run counts (the machine is shared); the time the end-to-end
  runs spend outside the model call is printed too, a figure the load of other work hardly
  moves. Label agreement with torch is printed on these pairs and on the seed corpus's
  annotated pairs, with the largest probability difference.
* Memory: peak resident set size (VmHWM in /proc/self/status) of a separate process running
  ``run_predict`` on 1,000 and on 10,000 sentences, for TF-IDF and each runtime: read after
  the model has loaded and classified one sentence, then reset (``/proc/self/clear_refs``)
  and read again at the end, so the second figure is the peak while predicting; the RSS
  after every batch shows whether it rises.

``STANCE_BENCH_PARTS=throughput`` (or ``memory``) runs one part: memory takes some 15 minutes
on 2 cores; ``STANCE_BENCH_RUNTIMES=onnx,onnx-int8`` measures the memory of those runtimes only.

Inputs are synthetic: the seed articles' sentences (page furniture left out), shuffled
with a fixed seed and grouped into documents of 25 sentences, repeated as often as needed.
The model is a copy of ``models/finetune-minilm`` when it exists (the ONNX files are exported
into the copy); otherwise the packaged MiniLM with an untrained classification head (the same
network, so the same speed) is saved to a temporary folder, and the output says so.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.models.runtime import RUNTIMES

SENTENCES_PER_DOC = 25
THROUGHPUT_SENTENCES = 250
MEMORY_SENTENCES = (1_000, 10_000)
DEFAULT_MODEL = Path("models/finetune-minilm")


def seed_sentences() -> list[str]:
    """Non-furniture sentences of the seed articles."""
    from pipeline.data.segment import segment

    out = []
    for path in sorted(Path("seeds").glob("*.txt")):
        out += [s.text for s in segment(path.read_text(encoding="utf-8"), path.stem) if not s.furniture]
    return out


def synthetic_jsonl(path: Path, n_sentences: int, seed: int = 0) -> Path:
    """``n_sentences`` seed sentences, shuffled and repeated, as documents of 25 paragraphs."""
    rng = random.Random(seed)
    pool = seed_sentences()
    sentences: list[str] = []
    while len(sentences) < n_sentences:
        batch = pool[:]
        rng.shuffle(batch)
        sentences += batch
    with path.open("w", encoding="utf-8") as fh:
        for i in range(0, n_sentences, SENTENCES_PER_DOC):
            text = "\n\n".join(sentences[i : min(i + SENTENCES_PER_DOC, n_sentences)])
            fh.write(json.dumps({"doc_id": f"synth-{i // SENTENCES_PER_DOC:05d}", "text": text}) + "\n")
    return path


def bench_model(tmp: Path) -> tuple[Path, str]:
    """The trained default model, or an untrained one of the same architecture."""
    if (DEFAULT_MODEL / "stance.json").is_file():
        return DEFAULT_MODEL, f"{DEFAULT_MODEL} (trained by `make train`)"
    from pipeline.config import load_config
    from pipeline.models.encoders import load_hf, resolve_base_model
    from pipeline.models.transformer import TransformerModel

    config = load_config("configs/finetune.yaml")
    model = TransformerModel(config.task, config.model, config.training)
    labels = config.task.labels
    model.tokenizer, model.model = load_hf(
        resolve_base_model(config.model.base_model),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    folder = model.save(tmp / "untrained-minilm")
    return folder, (
        f"{DEFAULT_MODEL} is absent: the packaged {config.model.base_model} with an untrained "
        f"classification head, saved to a temp folder (same network and speed; labels meaningless)"
    )


def tfidf_model(tmp: Path) -> Path:
    """The TF-IDF baseline fitted on the seed corpus's training split (seconds), for the memory runs."""
    from pipeline.config import load_config
    from pipeline.data.datasets import build_dataset
    from pipeline.models.registry import build_model

    config = load_config("configs/tfidf.yaml")
    model = build_model(config)
    model.fit(build_dataset(config)["train"])
    return model.save(tmp / "tfidf")


def bare_forward(model, rows, chunk: int = 256) -> float:
    """Seconds for tokenize + forward over ``rows``' model inputs, batched as predict_proba batches:
    each chunk tokenized at once, sorted by token count, padded per batch (the model's own helper),
    on the model's runtime (a torch module, or its ONNX Runtime session)."""
    import torch
    from scipy.special import softmax

    from pipeline.models.encoders import padded_batches

    pairs = [model.formatter.pair(r) for r in rows]  # input strings built beforehand: not timed
    batch_size = model.training.eval_batch_size
    tensors = "np" if model.onnx is not None else "pt"
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(pairs), chunk):
            first, second = zip(*pairs[i : i + chunk])
            enc = model.tokenizer(list(first), list(second), truncation=True, max_length=model.model_cfg.max_length)
            for _, batch in padded_batches(enc, model.tokenizer, batch_size, tensors):
                if model.onnx is not None:
                    softmax(model.onnx(batch), axis=-1)
                else:
                    torch.softmax(model.model(**batch).logits, dim=-1)
    return time.perf_counter() - start


def _timed_model_calls(clf, in_model: list[float]) -> None:
    """Count the seconds spent inside the model call into ``in_model[-1]``."""
    predict_proba = clf.model.predict_proba

    def timed(rows):
        start = time.perf_counter()
        try:
            return predict_proba(rows)
        finally:
            in_model[-1] += time.perf_counter() - start

    clf.model.predict_proba = timed


def throughput_of(model_dir: Path, runtime: str, source: Path, tmp: Path) -> dict:
    """End-to-end predict and the bare pass on one runtime: best of three each, alternated."""
    from pipeline.inference.classifier import StanceClassifier
    from pipeline.inference.predict import run_predict
    from pipeline.inference.records import read_predictions
    from pipeline.models.inputs import Row

    clf = StanceClassifier.load(model_dir, runtime=runtime)
    clf.analyze("Macron urged talks with Putin.")  # warm-up
    in_model: list[float] = []
    _timed_model_calls(clf, in_model)
    e2e, bare, stats, rows, out = [], [], None, [], tmp / f"out-{runtime}.jsonl"

    def end_to_end() -> None:
        nonlocal stats, rows
        in_model.append(0.0)
        stats = run_predict(source, out, str(model_dir), classifier=clf, overwrite=True).stats
        e2e.append(stats.seconds)
        # The same pairs; a truncated sentence (if any) goes in whole, cut by the tokenizer instead.
        rows = [Row(r["sentence"], r["actor"], r["target"]) for r in read_predictions(out)]

    # e2e, bare, bare, e2e, e2e, bare: neither goes first every time, and the best of three
    # of each damps the load of other work on a shared machine.
    for first_e2e in (True, False, True):
        for run_e2e in (first_e2e, not first_e2e):
            if run_e2e:
                end_to_end()
            else:
                bare.append(bare_forward(clf.model, rows))
    own = min(total - model for total, model in zip(e2e, in_model))
    probs = np.array([list(r["probs"].values()) for r in read_predictions(out)])
    return {"stats": stats, "e2e": min(e2e), "bare": min(bare), "own": own, "in_model": min(in_model), "probs": probs}


def seed_pairs_probs(model_dir: Path, runtime: str) -> np.ndarray:
    """Probabilities on every annotated (sentence, actor, target) pair of the seed corpus."""
    from pipeline.config import load_config
    from pipeline.data.datasets import build_dataset
    from pipeline.models.inputs import rows_of
    from pipeline.models.registry import load_model

    dd = build_dataset(load_config("configs/base.yaml"))
    rows = [r for split in dd for r in rows_of(dd[split])]
    return load_model(model_dir, runtime=runtime).predict_proba(rows)


def throughput(model_dir: Path, tmp: Path) -> None:
    import torch

    from pipeline.models.runtime import default_threads

    source = synthetic_jsonl(tmp / "throughput.jsonl", THROUGHPUT_SENTENCES)
    figures = {rt: throughput_of(model_dir, rt, source, tmp) for rt in RUNTIMES}
    stats = figures["torch"]["stats"]
    n = stats.pairs
    print(
        f"input: {stats.documents} synthetic documents, {stats.sentences} sentences, {n} pairs "
        f"({stats.truncated} truncated); threads: torch {torch.get_num_threads()}, "
        f"onnxruntime {default_threads()} (one process, every core)",
        flush=True,
    )
    seed = {rt: seed_pairs_probs(model_dir, rt) for rt in RUNTIMES}
    base = figures["torch"]
    print(
        "  runtime     end-to-end   bare pass   e2e vs bare   vs torch e2e   outside model   "
        "labels = torch (bench pairs / seed pairs)   max |dp| (seed pairs)"
    )
    for rt, f in figures.items():
        same_bench = (f["probs"].argmax(1) == base["probs"].argmax(1)).mean()
        same_seed = (seed[rt].argmax(1) == seed["torch"].argmax(1)).mean()
        print(
            f"  {rt:<10} {n / f['e2e']:8.1f}/s  {n / f['bare']:8.1f}/s   {100 * (f['e2e'] / f['bare'] - 1):+8.1f}%"
            f"   {base['e2e'] / f['e2e']:9.2f}x   {100 * f['own'] / f['in_model']:9.1f}%       "
            f"{same_bench:7.2%} / {same_seed:7.2%} of {len(seed[rt])}"
            f"                 {np.abs(seed[rt] - seed['torch']).max():.2e}",
            flush=True,
        )
    print(
        "  (pairs/s: best of three runs each; 'outside model': read, segment, match, length rule, write, "
        "as a share of the model call's time)"
    )


def peak_rss(model_dir: Path, n_sentences: int, tmp: Path, runtime: str = "torch") -> dict:
    """Run a prediction of ``n_sentences`` in a separate process; its memory figures (see ``_child``)."""
    source = tmp / f"memory-{n_sentences}.jsonl"
    if not source.exists():
        synthetic_jsonl(source, n_sentences)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.predict",
        "child",
        str(model_dir),
        str(source),
        str(tmp / f"memory-{n_sentences}-{runtime}-{Path(model_dir).name}-out.jsonl"),
        runtime,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"memory run failed ({' '.join(cmd)}):\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory(model_dir: Path, tmp: Path) -> None:
    print("peak RSS (VmHWM) of a separate predict process; reset after the model loads:")

    def show(name: str, folder: Path, n: int, runtime: str = "torch") -> float:
        fig = peak_rss(folder, n, tmp, runtime)
        print(
            f"  {name:<10} {n:>6,} sentences, {fig['pairs']:>6,} pairs: peak while predicting "
            f"{fig['peak_mib']:7.1f} MiB (up to model load {fig['loaded_mib']:.1f} MiB) "
            f"in {fig['seconds']:.0f} s ({fig['pairs'] / fig['seconds']:.0f} pairs/s)",
            flush=True,
        )
        half = len(fig["trace"]) // 2
        if half:
            print(
                f"  {'':<10} RSS after each of {len(fig['trace'])} batches: highest {max(fig['trace'][:half]):.0f} MiB "
                f"in the first half, {max(fig['trace'][half:]):.0f} MiB in the second",
                flush=True,
            )
        return fig["peak_mib"]

    from pipeline.models.registry import load_model

    small_n, large_n = MEMORY_SENTENCES
    runtimes = [rt for rt in os.environ.get("STANCE_BENCH_RUNTIMES", ",".join(RUNTIMES)).split(",") if rt]
    for rt in runtimes:  # export here, so that no measured process carries an export's memory
        load_model(model_dir, runtime=rt)
    runs = [("tfidf", tfidf_model(tmp), "torch")] + [(rt, model_dir, rt) for rt in runtimes]
    for name, folder, runtime in runs:
        small, large = show(name, folder, small_n, runtime), show(name, folder, large_n, runtime)
        print(
            f"  {name:<10} growth from {small_n:,} to {large_n:,} sentences: {large - small:+.1f} MiB "
            f"({100 * (large / small - 1):+.1f}%; goal at most +5%)",
            flush=True,
        )


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(model_dir: str, source: str, output: str, runtime: str = "torch") -> None:
    """Inside the measured process: load, reset the peak, predict, read the peak again.

    Not ``ru_maxrss``: Linux keeps it across fork + exec, so a child would report at least
    the parent's size. VmHWM belongs to this process image; writing 5 to
    /proc/self/clear_refs resets it to the current RSS, so the second reading is the peak
    while predicting alone.
    """
    from pipeline.inference.classifier import StanceClassifier
    from pipeline.inference.predict import run_predict

    clf = StanceClassifier.load(model_dir, runtime=runtime)
    clf.analyze("Macron urged talks with Putin.")  # first-call allocations belong to loading, not to the input
    loaded = _status_mib("VmHWM")
    trace: list[float] = []  # RSS after each batch: growth would show as a rising trace
    predict_proba = clf.model.predict_proba

    def traced(rows):
        out = predict_proba(rows)
        trace.append(_status_mib("VmRSS"))
        return out

    clf.model.predict_proba = traced
    Path("/proc/self/clear_refs").write_text("5")
    stats = run_predict(source, output, model_dir, classifier=clf, overwrite=True).stats
    print(
        json.dumps(
            {
                "loaded_mib": loaded,
                "peak_mib": _status_mib("VmHWM"),
                "pairs": stats.pairs,
                "seconds": stats.seconds,
                "trace": trace,
            }
        )
    )


def main() -> None:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir, note = bench_model(tmp)
        if model_dir == DEFAULT_MODEL:  # the ONNX exports go into a copy, not into the user's folder
            model_dir = Path(
                shutil.copytree(DEFAULT_MODEL, tmp / DEFAULT_MODEL.name, ignore=shutil.ignore_patterns("onnx"))
            )
        print(f"model: {note}; exported to ONNX Runtime fp32 and int8 in a temporary copy", flush=True)
        parts = os.environ.get("STANCE_BENCH_PARTS", "throughput,memory").split(",")
        if "throughput" in parts:
            throughput(model_dir, tmp)
        if "memory" in parts:
            memory(model_dir, tmp)
    print(f"bench predict took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        _child(*sys.argv[2:6])
    else:
        main()
