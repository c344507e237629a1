"""Attribution coverage: `make predict` on the raw seed articles, against the gold.

Prints the share of the gold favor/against (sentence, actor, target) pairs for which
`make predict` produces a prediction (the actor was found in that sentence: by name, alias,
pronoun or quote), the same share for every gold pair, the share found by alias matching
alone (the rule before document-level attribution), and lists the gold stance pairs missed.
With a trained model (``make train``) it also prints how often the predicted label equals
the gold on those pairs (the seed articles are partly training data: not a test figure).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

MODEL = Path("models/finetune-minilm")


def _gold() -> list[dict]:
    return [json.loads(line) for line in Path("seeds/annotations.jsonl").read_text(encoding="utf-8").splitlines()]


def _model(tmp: Path) -> str:
    """The trained default model, else a majority model: coverage does not depend on the model."""
    if (MODEL / "stance.json").is_file():
        return str(MODEL)
    from pipeline.config import load_config
    from pipeline.data.datasets import build_dataset
    from pipeline.models.registry import build_model

    config = load_config("configs/base.yaml", {"model.backend": "majority"})
    model = build_model(config)
    model.fit(build_dataset(config)["train"])
    return str(model.save(tmp / "majority"))


def main() -> None:
    from pipeline.config import load_config
    from pipeline.data.actors import ActorMatcher
    from pipeline.inference.predict import run_predict
    from pipeline.inference.records import read_predictions

    task = load_config("configs/base.yaml").task
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(Path(tmp))
        out = Path(tmp) / "seeds.jsonl"
        result = run_predict("seeds", out, model)
        preds = {(p["sentence_id"], p["actor"], p["target"]): p for p in read_predictions(out)}
    matcher = ActorMatcher(task)
    gold = [(r["id"], r["text"], lab) for r in _gold() for lab in r["labels"]]
    stance = [g for g in gold if g[2]["label"] != task.none_label]

    def key(g):
        return g[0], g[2]["actor"], g[2]["target"]

    found = [g for g in stance if key(g) in preds]
    by_alias = [g for g in stance if g[2]["actor"] in matcher.actors_in(g[1])]
    print(f"model: {model}; {result.stats.line()}; pairs by how the actor was found: {result.stats.via}")
    print(
        f"gold favor/against pairs produced by make predict: {len(found)}/{len(stance)} "
        f"= {len(found) / len(stance):.3f}"
    )
    print(
        f"  by alias matching alone (before attribution): {len(by_alias)}/{len(stance)} "
        f"= {len(by_alias) / len(stance):.3f}"
    )
    all_found = sum(key(g) in preds for g in gold)
    print(f"all gold pairs produced: {all_found}/{len(gold)} = {all_found / len(gold):.3f}")
    if model == str(MODEL):
        same = sum(preds[key(g)]["label"] == g[2]["label"] for g in found)
        print(
            f"  predicted label = gold on the produced stance pairs: {same}/{len(found)} "
            "(the seed articles are partly training data)"
        )
    for g in stance:
        if key(g) not in preds:
            print(f"  missed: {g[0]} {g[2]['actor']} {g[2]['target']} {g[2]['label']}: {g[1][:100]}")


if __name__ == "__main__":
    main()
