"""Benchmark of inference on new articles (``make bench`` or ``python -m benchmarks predict``).

* Throughput: the end-to-end predict path (read JSONL, segment, match actors, the
  long-sentence rule, classify, write JSONL) against a bare pass of the same model over
  the same (actor and target, sentence) pairs: tokenize + forward only, with the same
  batching (chunks of 256 pairs sorted by length, batches of ``eval_batch_size``). Each is
  timed three times, alternately, and the fastest run counts (the machine is shared); the
  time the end-to-end runs spend outside the model call is printed too, a figure the load of
  other work hardly moves.
* Memory: peak resident set size (VmHWM in /proc/self/status) of a separate process running
  ``run_predict``: read after the model has loaded, then reset (``/proc/self/clear_refs``)
  and read again at the end, so the second figure is the peak while predicting. Flatness from
  1,000 to 10,000 sentences is measured with the
  TF-IDF backend, which runs the same streaming path (read, segment, match, batch, write)
  fast enough for 10,000 sentences in seconds; the fine-tuned MiniLM classifies some 35-70
  pairs/s on 2 cores, so 10,000 sentences (about 39,000 pairs) would take 10-20 minutes. The
  transformer is measured at 1,000 sentences, with the RSS after every batch (a leak would
  show as a rising trace); ``STANCE_BENCH_FULL=1`` adds the transformer at 10,000.

Inputs are synthetic: the seed articles' sentences (page furniture left out), shuffled
with a fixed seed and grouped into documents of 25 sentences, repeated as often as needed.
The model is ``models/finetune-minilm`` when it exists; otherwise the packaged MiniLM with
an untrained classification head (the same network, so the same speed) is saved to a
temporary folder, and the output says so.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def bare_forward(clf, rows, chunk: int = 256) -> float:
    """Seconds for tokenize + forward over ``rows``' model inputs, batched as predict_proba batches:
    each chunk tokenized at once, sorted by token count, padded per batch (the model's own helper)."""
    import torch

    from pipeline.models.encoders import padded_batches

    model = clf.model
    pairs = [model.formatter.pair(r) for r in rows]  # input strings built beforehand: not timed
    batch_size = model.training.eval_batch_size
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(pairs), chunk):
            first, second = zip(*pairs[i : i + chunk])
            enc = model.tokenizer(list(first), list(second), truncation=True, max_length=model.model_cfg.max_length)
            for _, batch in padded_batches(enc, model.tokenizer, batch_size):
                torch.softmax(model.model(**batch).logits, dim=-1)
    return time.perf_counter() - start


def throughput(model_dir: Path, tmp: Path) -> None:
    import torch

    from pipeline.inference.classifier import StanceClassifier
    from pipeline.inference.predict import run_predict
    from pipeline.inference.records import read_predictions
    from pipeline.models.inputs import Row

    clf = StanceClassifier.load(model_dir)
    source = synthetic_jsonl(tmp / "throughput.jsonl", THROUGHPUT_SENTENCES)
    clf.analyze("Macron urged talks with Putin.")  # warm-up
    # The time spent inside the model call during the end-to-end runs: what is left is the
    # pipeline's own work, a figure that the load of a shared machine hardly moves.
    in_model = []
    predict_proba = clf.model.predict_proba

    def timed_predict_proba(rows):
        start = time.perf_counter()
        try:
            return predict_proba(rows)
        finally:
            in_model[-1] += time.perf_counter() - start

    clf.model.predict_proba = timed_predict_proba
    e2e, bare, stats, rows = [], [], None, []

    def end_to_end() -> None:
        nonlocal stats, rows
        in_model.append(0.0)
        stats = run_predict(source, tmp / "out.jsonl", str(model_dir), classifier=clf).stats
        e2e.append(stats.seconds)
        # The same pairs; a truncated sentence (if any) goes in whole, cut by the tokenizer instead.
        rows = [Row(r["sentence"], r["actor"], r["target"]) for r in read_predictions(tmp / "out.jsonl")]

    # e2e, bare, bare, e2e, e2e, bare: neither goes first every time, and the best of three
    # of each damps the load of other work on a shared machine.
    for first_e2e in (True, False, True):
        for run_e2e in (first_e2e, not first_e2e):
            if run_e2e:
                end_to_end()
            else:
                bare.append(bare_forward(clf, rows))
    n = stats.pairs
    best_e2e, best_bare = min(e2e), min(bare)
    print(
        f"input: {stats.documents} synthetic documents, {stats.sentences} sentences, {n} pairs "
        f"({stats.truncated} truncated); torch threads {torch.get_num_threads()}",
        flush=True,
    )
    print(
        f"  end-to-end predict (read, segment, match, classify, write JSONL): {n / best_e2e:8.1f} pairs/s "
        f"({best_e2e:.1f} s)"
    )
    print(
        f"  bare pass (tokenize + forward, same pairs, same batching):       {n / best_bare:8.1f} pairs/s "
        f"({best_bare:.1f} s)"
    )
    print(
        f"  overhead of the predict path: {100 * (best_e2e / best_bare - 1):+.1f}% (goal < 15%); "
        f"runs e2e {[round(s, 1) for s in e2e]} s, bare {[round(s, 1) for s in bare]} s"
    )
    own = [total - model for total, model in zip(e2e, in_model)]
    print(
        f"  of which outside the model call (read, segment, match, length rule, write): "
        f"{[round(s, 2) for s in own]} s, {100 * min(own) / min(in_model):.1f}% of the model call's time"
    )


def peak_rss(model_dir: Path, n_sentences: int, tmp: Path) -> dict:
    """Run a prediction of ``n_sentences`` in a separate process; its memory figures (see ``_child``)."""
    source = synthetic_jsonl(tmp / f"memory-{n_sentences}.jsonl", n_sentences)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.predict",
        "child",
        str(model_dir),
        str(source),
        str(tmp / f"memory-{n_sentences}-out.jsonl"),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"memory run failed ({' '.join(cmd)}):\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory(model_dir: Path, tmp: Path) -> None:
    print("peak RSS (VmHWM) of a separate predict process; reset after the model loads:")

    def show(name: str, folder: Path, n: int) -> float:
        fig = peak_rss(folder, n, tmp)
        print(
            f"  {name:<12} {n:>6,} sentences, {fig['pairs']:>6,} pairs: peak while predicting "
            f"{fig['peak_mib']:7.1f} MiB (peak up to model load {fig['loaded_mib']:.1f} MiB) "
            f"in {fig['seconds']:.0f} s ({fig['pairs'] / fig['seconds']:.0f} pairs/s)",
            flush=True,
        )
        half = len(fig["trace"]) // 2
        if half:
            print(
                f"  {'':<12} RSS after each of {len(fig['trace'])} batches: highest {max(fig['trace'][:half]):.0f} MiB "
                f"in the first half, {max(fig['trace'][half:]):.0f} MiB in the second",
                flush=True,
            )
        return fig["peak_mib"]

    tfidf = tfidf_model(tmp)
    small, large = (show("tfidf", tfidf, n) for n in MEMORY_SENTENCES)
    print(
        f"  growth from {MEMORY_SENTENCES[0]:,} to {MEMORY_SENTENCES[1]:,} sentences (tfidf): "
        f"{large - small:+.1f} MiB (goal: flat)"
    )
    if os.environ.get("STANCE_BENCH_FULL") == "1":
        small, large = (show("transformer", model_dir, n) for n in MEMORY_SENTENCES)
        print(
            f"  growth from {MEMORY_SENTENCES[0]:,} to {MEMORY_SENTENCES[1]:,} sentences (transformer): "
            f"{large - small:+.1f} MiB"
        )
    else:
        show("transformer", model_dir, MEMORY_SENTENCES[0])
        print(f"  (transformer at {MEMORY_SENTENCES[1]:,} sentences: STANCE_BENCH_FULL=1 make bench, 10-20 minutes)")


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(model_dir: str, source: str, output: str) -> None:
    """Inside the measured process: load, reset the peak, predict, read the peak again.

    Not ``ru_maxrss``: Linux keeps it across fork + exec, so a child would report at least
    the parent's size. VmHWM belongs to this process image; writing 5 to
    /proc/self/clear_refs resets it to the current RSS, so the second reading is the peak
    while predicting alone.
    """
    from pipeline.inference.classifier import StanceClassifier
    from pipeline.inference.predict import run_predict

    clf = StanceClassifier.load(model_dir)
    loaded = _status_mib("VmHWM")
    trace: list[float] = []  # RSS after each batch: growth would show as a rising trace
    predict_proba = clf.model.predict_proba

    def traced(rows):
        out = predict_proba(rows)
        trace.append(_status_mib("VmRSS"))
        return out

    clf.model.predict_proba = traced
    Path("/proc/self/clear_refs").write_text("5")
    stats = run_predict(source, output, model_dir, classifier=clf).stats
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
        print(f"model: {note}")
        throughput(model_dir, tmp)
        memory(model_dir, tmp)
    print(f"bench predict took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        _child(*sys.argv[2:5])
    else:
        main()
