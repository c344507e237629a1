"""``zeroshot_eval(config)``: the zero-shot stance method measured on targets it never saw.

One MLflow parent run, a child per measurement:

* **Leave one target out** on the configured corpus. For each target T, the stance model (the
  config's recipe: a fine-tuned transformer reading "actor on target wording") is trained on
  every example of every other target: the corpus, all of its documents, and the extra
  training corpora, with each example of T removed (by target id and by wording). It is then
  asked about T through the zero-shot backend (``method: stance``, mention gating as
  configured) on T's examples in the corpus, all documents. Beside it, the similarity method,
  its none threshold calibrated on the corpus's examples of the other targets.
* **A public benchmark** (COVID-19-Stance; ``benchmark`` names its config), none of it in
  training: a stance model trained on every target of the corpus and the extra corpora answers
  the benchmark's test split through the benchmark's task. Beside it, the similarity method
  (threshold calibrated on the corpus, not on the benchmark) and TF-IDF + logistic regression
  trained on the benchmark's train split: a supervised reference, not a zero-shot one.

Every figure is on text of a target absent from the stance model's training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from pipeline.config import Config, ConfigError, ZeroShotConfig, load_config
from pipeline.data.datasets import build_dataset, extra_examples, to_dataset, to_examples
from pipeline.data.validate import load_records
from pipeline.experiments.train import prefixed, score
from pipeline.metrics import f_avg
from pipeline.models.registry import build_model
from pipeline.models.transformer import TransformerModel
from pipeline.models.zeroshot import ZeroShotModel

DEFAULT_BENCHMARK = "configs/covid19-stance.yaml"
ERRORS_SHOWN = 40  # wrong predictions logged per measurement (errors_<name>.jsonl)


def without_target(rows: list[dict], target: str, wording: str) -> list[dict]:
    """The examples that are not about ``target``: neither its id nor its wording."""
    return [r for r in rows if r["target"] != target and r["target_text"] != wording]


def _stance_config(config: Config) -> Config:
    if config.model.backend != TransformerModel.backend:
        raise ConfigError(
            f"{config.name}: the zero-shot evaluation trains a stance model, so model.backend must be "
            f"'transformer'; found {config.model.backend!r} (use configs/stance-model.yaml)"
        )
    return config


def _zeroshot(config: Config, method: str, **update) -> ZeroShotConfig:
    """The config's zero-shot settings for ``method``; hypotheses keyed by the task's own label names
    (a benchmark may spell them FAVOR, AGAINST)."""
    by_lower = {lab.lower(): lab for lab in config.task.labels}
    hypotheses = {
        key: {by_lower.get(label.lower(), label): templates for label, templates in per_label.items()}
        for key, per_label in config.zeroshot.hypotheses.items()
    }
    nli_labels = {k: by_lower.get(v.lower(), v) for k, v in config.zeroshot.nli_labels.items()}
    return config.zeroshot.model_copy(
        update={"method": method, "model": None, "hypotheses": hypotheses, "nli_labels": nli_labels, **update}
    )


def _errors(dataset, probs, config: Config) -> list[dict]:
    """Wrong predictions, most confident first."""
    gold = config.task.label_names(dataset["label"])
    pred = config.task.predicted(probs)
    wrong = [i for i, (g, p) in enumerate(zip(gold, pred)) if g != p]
    wrong.sort(key=lambda i: -float(np.max(probs[i])))
    return [
        {
            "text": dataset["text"][i],
            "actor": dataset["actor"][i],
            "target": dataset["target"][i],
            "gold": gold[i],
            "predicted": pred[i],
            "p": round(float(np.max(probs[i])), 3),
        }
        for i in wrong[:ERRORS_SHOWN]
    ]


def _measure(name: str, model, dataset, config: Config, results: dict, errors: bool = True) -> dict[str, float]:
    """Score one model on one test set; log its metrics (and its worst errors) to the active run."""
    import mlflow

    metrics, probs = score(model, dataset, config)
    mlflow.log_metrics(prefixed(metrics, name))
    if errors:
        mlflow.log_text(
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in _errors(dataset, probs, config)),
            f"errors_{name}.jsonl",
        )
    gold, pred = config.task.label_names(dataset["label"]), config.task.predicted(probs)
    mlflow.log_text(
        "".join(
            json.dumps({"text": t, "actor": a, "target": g, "gold": y, "predicted": p}, ensure_ascii=False) + "\n"
            for t, a, g, y, p in zip(dataset["text"], dataset["actor"], dataset["target"], gold, pred)
        ),
        f"predictions_{name}.jsonl",
    )
    results[name] = metrics | {"gold": gold, "predicted": pred, "stance_labels": list(config.task.stance_labels)}
    print(
        f"  {name}: F_avg {metrics['f_avg']:.4f}, macro-F1 {metrics['macro_f1']:.4f} ({len(dataset)} examples)",
        flush=True,
    )
    return metrics


def _train_stance_model(config: Config, rows: list[dict]):
    from pipeline.experiments import tracking

    model = build_model(config)
    start = time.time()
    model.fit(to_dataset(rows, config.task), None, on_epoch=tracking.epoch_logger())
    print(f"  stance model trained on {len(rows)} examples in {time.time() - start:.0f} s", flush=True)
    return model


def corpus_examples(config: Config) -> tuple[list[dict], list[dict]]:
    """The corpus's examples (every document) and the extra training corpora's, read once for both measurements."""
    return to_examples(load_records(config), config.task, config.data.group_by), extra_examples(config)


def leave_one_target_out(
    config: Config, rows: list[dict], extra: list[dict], targets: list[str] | None = None
) -> dict[str, dict]:
    """One nested run per held-out target (see the module's docstring); figures per target."""
    import mlflow

    from pipeline.experiments import tracking

    task = config.task
    out: dict[str, dict] = {}
    for target in targets or task.target_ids:
        wording = task.target(target).wording
        train_rows = without_target(rows + extra, target, wording)
        test = to_dataset([r for r in rows if r["target"] == target], task)
        print(f"held out: {target} ({wording!r}): {len(test)} test examples", flush=True)
        tags = tracking.run_tags(config, "zeroshot-loto") | {"held_out_target": target}
        with tracking.run(f"loto-{target}", tags, nested=True):
            mlflow.log_params(
                {"held_out_target": target, "held_out_wording": wording, "train_examples": len(train_rows)}
            )
            results: dict[str, dict] = {}
            stance_model = _train_stance_model(config, train_rows)
            stance = ZeroShotModel(task, config.model, _zeroshot(config, "stance"), stance_model=stance_model)
            _measure("stance", stance, test, config, results)
            similarity = ZeroShotModel(task, config.model, _zeroshot(config, "similarity"))
            similarity.fit(to_dataset(without_target(rows, target, wording), task))  # threshold: other targets
            mlflow.log_metric("similarity/none_threshold", similarity.none_threshold)
            _measure("similarity", similarity, test, config, results)
        out[target] = results
    return out


def benchmark_zero_shot(config: Config, benchmark: Config, rows: list[dict], extra: list[dict]) -> dict[str, dict]:
    """The stance model trained on the whole corpus (every target) answers the benchmark's test split."""
    import mlflow

    from pipeline.experiments import tracking

    task = config.task
    bench = build_dataset(benchmark)
    test = bench["test"]
    print(
        f"benchmark {benchmark.data.corpus}: {len(test)} test examples, targets {benchmark.task.target_ids}", flush=True
    )
    results: dict[str, dict] = {}
    with tracking.run(
        f"benchmark-{benchmark.data.corpus}", tracking.run_tags(config, "zeroshot-benchmark"), nested=True
    ):
        mlflow.log_params({"benchmark": benchmark.data.corpus, "benchmark_test_examples": len(test)})
        stance_model = _train_stance_model(config, rows + extra)
        # The benchmark's actor (a tweet's author) is never named: no mention gating, no mark.
        zs = _zeroshot(benchmark, "stance", mention_gating=False)
        _measure(
            "stance",
            ZeroShotModel(benchmark.task, benchmark.model, zs, stance_model=stance_model),
            test,
            benchmark,
            results,
        )
        calibrated = ZeroShotModel(task, config.model, _zeroshot(config, "similarity"))
        calibrated.fit(to_dataset(rows, task))  # the threshold from the corpus, not the benchmark
        sim_zs = _zeroshot(
            benchmark, "similarity", mention_gating=False, calibrate=False, none_threshold=calibrated.none_threshold
        )
        _measure("similarity", ZeroShotModel(benchmark.task, benchmark.model, sim_zs), test, benchmark, results)
        tfidf_config = benchmark.model_copy(update={"model": benchmark.model.model_copy(update={"backend": "tfidf"})})
        tfidf = build_model(tfidf_config)
        tfidf.fit(bench["train"])
        _measure("tfidf_supervised", tfidf, test, benchmark, results, errors=False)
    return results


def _table(loto: dict[str, dict], bench: dict[str, dict] | None) -> str:
    lines = ["| held-out target | stance F_avg | similarity F_avg |", "|---|---|---|"]
    for target, r in loto.items():
        lines.append(f"| {target} | {r['stance']['f_avg']:.3f} | {r['similarity']['f_avg']:.3f} |")
    if loto:
        mean = {m: np.mean([r[m]["f_avg"] for r in loto.values()]) for m in ("stance", "similarity")}
        lines.append(f"| **mean** | **{mean['stance']:.3f}** | {mean['similarity']:.3f} |")
        pooled = {
            m: f_avg(
                [y for r in loto.values() for y in r[m]["gold"]],
                [y for r in loto.values() for y in r[m]["predicted"]],
                next(iter(loto.values()))[m]["stance_labels"],
            )
            for m in ("stance", "similarity")
        }
        lines.append(f"| pooled | {pooled['stance']:.3f} | {pooled['similarity']:.3f} |")
    if bench:
        lines += ["", "| benchmark (test) | F_avg | macro-F1 |", "|---|---|---|"]
        for name, r in bench.items():
            lines.append(f"| {name} | {r['f_avg']:.3f} | {r['macro_f1']:.3f} |")
    return "\n".join(lines) + "\n"


def zeroshot_eval(
    config: Config, benchmark: str | None = DEFAULT_BENCHMARK, targets: list[str] | None = None
) -> dict[str, float]:
    """Leave-one-target-out and the benchmark, as one parent run; returns the parent's figures.

    ``benchmark``: a config path, or None to skip it. Its data must exist (the public benchmark
    is not in the repository): a missing file is an error naming it."""
    import mlflow

    from pipeline.experiments import tracking

    config = _stance_config(config)
    unknown = sorted(set(targets or []) - set(config.task.target_ids))
    if unknown:
        raise ConfigError(
            f"--target {unknown}: not a target of {config.name}; expected one of {config.task.target_ids}"
        )
    bench_config = None
    if benchmark:
        bench_config = load_config(benchmark)
        path = Path(bench_config.data.annotations)
        if not path.is_file():
            raise ConfigError(
                f"{benchmark}: benchmark data {path} not found (it is not in the repository: see its config); "
                "skip the benchmark with --no-benchmark (make zeroshot-eval NO_BENCHMARK=1)"
            )
    tracking.setup(config)
    start = time.time()
    with tracking.run(f"zeroshot-eval-{config.name}", tracking.run_tags(config, "zeroshot-eval")) as parent:
        tracking.log_params(config)
        rows, extra = corpus_examples(config)
        loto = leave_one_target_out(config, rows, extra, targets)
        bench = benchmark_zero_shot(config, bench_config, rows, extra) if bench_config else None
        summary: dict[str, float] = {}
        for target, r in loto.items():
            for method, m in r.items():
                summary[f"loto/{target}/{method}/f_avg"] = m["f_avg"]
        for method in ("stance", "similarity"):
            if loto:
                summary[f"loto/{method}/f_avg/mean"] = float(np.mean([r[method]["f_avg"] for r in loto.values()]))
                # All held-out targets' predictions pooled: steadier than the mean when a target has few stances.
                gold = [y for r in loto.values() for y in r[method]["gold"]]
                pred = [y for r in loto.values() for y in r[method]["predicted"]]
                summary[f"loto/{method}/f_avg/pooled"] = f_avg(gold, pred, config.task.stance_labels)
        for method, m in (bench or {}).items():
            summary[f"benchmark/{method}/f_avg"] = m["f_avg"]
            summary[f"benchmark/{method}/macro_f1"] = m["macro_f1"]
        summary["zeroshot_eval/seconds"] = time.time() - start
        mlflow.log_metrics(summary)
        table = _table(loto, bench)
        mlflow.log_text(table, "zeroshot_eval.md")
        print(table + f"MLflow run {parent.info.run_id}", flush=True)
    return summary
