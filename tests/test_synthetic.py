"""The synthetic training corpus (data/synthetic/): written by the team, marked as such, valid,
and no paraphrase of the seed sentences it is never evaluated against."""

import json
import re
from collections import defaultdict

import pytest

from pipeline.config import load_config, load_task
from pipeline.data.corpus import parse_corpus
from tests.conftest import ROOT

CORPUS = ROOT / "data/synthetic/synthetic.jsonl"
TASK = ROOT / "data/synthetic/task.yaml"
MISSION = ("concessions", "integrity", "negotiations")


@pytest.fixture(scope="module")
def lines():
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_no_synthetic_sentence_shares_five_words_with_a_seed_sentence(lines):
    seed_grams = set()
    for line in (ROOT / "seeds/annotations.jsonl").read_text(encoding="utf-8").splitlines():
        w = _words(json.loads(line)["text"])
        seed_grams |= {tuple(w[i : i + 5]) for i in range(len(w) - 4)}
    shared = []
    for rec in lines:
        w = _words(rec["text"])
        hits = {tuple(w[i : i + 5]) for i in range(len(w) - 4)} & seed_grams
        shared += [(rec["id"], " ".join(h)) for h in hits]
    assert shared == []


def test_every_record_is_marked_synthetic_and_valid(lines):
    assert all(rec["meta"]["synthetic"] is True for rec in lines)
    records, issues = parse_corpus(CORPUS, load_task(TASK))
    assert issues == [] and len(records) == len(lines)


def test_the_corpus_has_the_size_balance_and_spread_it_promises(lines):
    labels = [(rec, lab) for rec in lines for lab in rec["labels"]]
    stance = [lab for _, lab in labels if lab["label"] != "none"]
    targets = {lab["target"] for _, lab in labels}
    assert len(labels) >= 6000 and len(stance) / len(labels) >= 0.40
    assert sum(lab["target"] in MISSION for _, lab in labels) > len(labels) / 2  # the mission targets carry most
    assert len(targets - set(MISSION)) >= 25
    assert len({lab["actor"] for _, lab in labels}) >= 60


def test_every_real_actor_is_shown_on_both_sides_of_some_target(lines):
    task = load_task(TASK)
    sides = defaultdict(set)
    for rec in lines:
        for lab in rec["labels"]:
            sides[(lab["actor"], lab["target"])].add(lab["label"])
    both = {actor for (actor, _), seen in sides.items() if {"favor", "against"} <= seen}
    used = {actor for actor, _ in sides}
    assert used - both == set() and len(used) >= 60
    assert {a.id for a in task.actors} - used == set()


def test_the_default_model_trains_on_it_and_evaluates_on_seeds_only():
    config = load_config(ROOT / "configs/finetune.yaml")
    assert [e.annotations for e in config.data.extra_train] == ["data/synthetic/synthetic.jsonl"]


@pytest.mark.parametrize(
    ("pairs", "kappa", "config", "rounds"),
    [
        (
            r"\(sentence, actor, target\) pairs",
            "Cohen's kappa",
            "configs/synthetic-corpus.yaml",
            [("annotator1.jsonl", "annotator2.jsonl"), ("round2-annotator1.jsonl", "round2-annotator2.jsonl")],
        ),
        (
            r"\(text, target\) pairs",
            r"Cohen's kappa \(opinion\)",
            "configs/opinion-corpus.yaml",
            [("opinion-annotator1.jsonl", "opinion-annotator2.jsonl")],
        ),
    ],
    ids=["news", "opinion"],
)
def test_each_agreement_round_in_agreement_md_is_what_the_files_give(pairs, kappa, config, rounds):
    from pipeline.data.agreement import agreement_files

    task = load_config(config).task
    text = (ROOT / "data/synthetic/agreement/AGREEMENT.md").read_text(encoding="utf-8")
    stated = re.findall(
        rf"^\| {pairs} \| (\d+) \|\n\| observed agreement \| ([\d.]+) \|\n\| \*\*{kappa}\*\* \| \*\*([\d.]+)\*\* \|",
        text,
        re.MULTILINE,
    )
    folder = ROOT / "data/synthetic/agreement"
    assert len(stated) == len(rounds)
    for (a, b), (n, observed, k) in zip(rounds, stated):
        result = agreement_files(folder / a, folder / b, task)
        assert (result.n_items, f"{result.observed:.3f}", f"{result.kappa:.3f}") == (int(n), observed, k)


def test_opinion_corpus_is_marked_synthetic_valid_and_trains_the_stance_model_only():
    from pipeline.data.validate import validate

    config = load_config("configs/opinion-corpus.yaml")
    records, issues = validate(config)
    assert issues == [] and len(records) >= 2200
    assert all(r.meta.get("synthetic") is True for r in records)
    assert {lab.actor for r in records for lab in r.labels} == {"author"}
    labels = [lab.label for r in records for lab in r.labels]
    assert min(labels.count("favor"), labels.count("against")) / len(labels) > 0.25  # stance-dense
    stance = load_config("configs/stance-model.yaml")
    assert "data/synthetic/opinion.jsonl" in [e.annotations for e in stance.data.extra_train]
    assert stance.data.annotations == "seeds/annotations.jsonl"  # evaluation stays on real text


def test_civic_corpora_are_marked_synthetic_valid_and_name_their_actors():
    from pipeline.data.actors import ActorMatcher
    from pipeline.data.validate import load_extra_corpora

    config = load_config("configs/stance-model.yaml")
    civic = [(name, records, task) for name, records, task in load_extra_corpora(config) if name.startswith("civic")]
    assert len(civic) == 3
    for _, records, task in civic:
        assert all(r.meta.get("synthetic") is True for r in records)
        matcher = ActorMatcher(task)
        named = [lab.actor in matcher.actors_in(r.text) for r in records for lab in r.labels]
        assert sum(named) / len(named) > 0.95  # the marked mention is there for the model to read


def test_round2_agreement_in_agreement_md_is_what_the_files_give():
    import json

    from sklearn.metrics import cohen_kappa_score

    from pipeline.data.agreement import agreement_files

    folder = ROOT / "data/synthetic/agreement"
    text = (folder / "AGREEMENT.md").read_text(encoding="utf-8")
    row = {
        name: re.search(rf"^\| {name} \| ([\d.]+) \| ([\d.]+) \|$", text, re.MULTILINE).groups()
        for name in ("pairs", "observed agreement", "Cohen's kappa")
    }
    opinion = agreement_files(
        folder / "opinion2-annotator1.jsonl",
        folder / "opinion2-annotator2.jsonl",
        load_config("configs/opinion-corpus.yaml").task,
    )

    def labels(path):
        return {
            (r["id"], x["actor"], x["target"]): x["label"]
            for line in path.read_text(encoding="utf-8").splitlines()
            for r in [json.loads(line)]
            for x in r["labels"]
        }

    a, b = labels(folder / "civic-annotator1.jsonl"), labels(folder / "civic-annotator2.jsonl")
    assert set(a) == set(b)
    keys = sorted(a)
    civic = (
        len(keys),
        sum(a[k] == b[k] for k in keys) / len(keys),
        cohen_kappa_score([a[k] for k in keys], [b[k] for k in keys]),
    )
    assert row["pairs"] == (str(opinion.n_items), str(civic[0]))
    assert row["observed agreement"] == (f"{opinion.observed:.3f}", f"{civic[1]:.3f}")
    assert row["Cohen's kappa"] == (f"{opinion.kappa:.3f}", f"{civic[2]:.3f}")
