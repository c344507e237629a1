"""Dataset splits: grouped by document, seeded, and corpus-agnostic."""

import pytest

from pipeline.config import load_config
from pipeline.data.datasets import SplitError, build_dataset, cross_validation_folds
from pipeline.data.validate import load_records
from tests.conftest import write_jsonl


def docs_of(ds) -> set[str]:
    return set(ds["doc_id"])


@pytest.mark.parametrize("seed", [0, 1, 13, 42])
def test_a_document_is_never_in_two_splits(seed):
    config = load_config("configs/base.yaml", {"data.seed": seed})
    dd = build_dataset(config)
    assert set(dd) == {"train", "dev", "test"}
    names = list(dd)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not docs_of(dd[a]) & docs_of(dd[b]), (seed, a, b)
    n_labels = sum(len(r.labels) for r in load_records(config))
    assert sum(len(dd[s]) for s in dd) == n_labels


def test_splits_are_seeded():
    a = build_dataset(load_config("configs/base.yaml", {"data.seed": 5}))
    b = build_dataset(load_config("configs/base.yaml", {"data.seed": 5}))
    assert a["test"]["id"] == b["test"]["id"] and a["train"]["id"] == b["train"]["id"]


def test_examples_carry_actor_target_and_class_label():
    dd = build_dataset(load_config("configs/base.yaml"))
    ex = dd["train"][0]
    assert set(ex) >= {"id", "unit_id", "doc_id", "text", "actor", "actor_name", "target", "target_text", "label"}
    assert dd["train"].features["label"].names == ["favor", "against", "none"]
    assert ex["id"] == f"{ex['unit_id']}|{ex['actor']}|{ex['target']}"


def test_grouped_kfold_covers_every_example_once_with_disjoint_documents():
    config = load_config("configs/base.yaml", {"data.n_folds": 5})
    folds = cross_validation_folds(config)
    assert len(folds) == 5
    test_ids = [i for f in folds for i in f["test"]["id"]]
    assert len(test_ids) == len(set(test_ids))
    total = sum(len(build_dataset(config)[s]) for s in ("train", "dev", "test"))
    assert len(test_ids) == total
    for f in folds:
        assert not docs_of(f["test"]) & (docs_of(f["train"]) | docs_of(f["dev"]))
        assert not docs_of(f["train"]) & docs_of(f["dev"])


def test_too_few_groups_is_a_clear_error():
    config = load_config("configs/base.yaml", {"data.n_folds": 6})
    with pytest.raises(SplitError, match=r"6 folds need at least 6 groups; 5 found \(data.n_folds\)"):
        cross_validation_folds(config)


def test_tweet_corpus_with_its_own_config_and_predefined_split(tweet_config):
    config = load_config(tweet_config)
    dd = build_dataset(config)
    assert {s: len(dd[s]) for s in dd} == {"train": 12, "dev": 4, "test": 6}
    assert dd["train"].features["label"].names == ["FAVOR", "AGAINST", "NONE"]
    assert set(dd["test"]["actor"]) == {"author"}
    assert set(dd["train"]["target"]) == {"mayor", "bike_lanes"}
    assert config.task.stance_labels == ["FAVOR", "AGAINST"]
    assert dd["test"]["id"][0].startswith("tw016|author|")


def test_predefined_split_without_dev_gets_a_grouped_dev_carved_from_train(tmp_path, tweet_config):
    from tests.conftest import tweet_records

    recs = tweet_records({"train": 20, "test": 5})
    path = write_jsonl(tmp_path / "nodev.jsonl", recs)
    config = load_config(tweet_config, {"data.annotations": str(path)})
    dd = build_dataset(config)
    assert len(dd["test"]) == 5 and len(dd["train"]) + len(dd["dev"]) == 20
    assert not set(dd["train"]["unit_id"]) & set(dd["dev"]["unit_id"])


def test_no_predefined_split_groups_by_document(tmp_path, tweet_config):
    from tests.conftest import tweet_records

    recs = [{**r, "doc_id": f"user{i % 10}"} for i, r in enumerate(tweet_records({"all": 40}))]
    for r in recs:
        del r["split"]
    path = write_jsonl(tmp_path / "grouped.jsonl", recs)
    config = load_config(tweet_config, {"data.annotations": str(path), "data.group_by": "doc_id"})
    dd = build_dataset(config)
    assert not docs_of(dd["test"]) & (docs_of(dd["train"]) | docs_of(dd["dev"]))
    assert sum(len(dd[s]) for s in dd) == 40


def test_group_by_id_splits_sentences_not_documents():
    config = load_config("configs/base.yaml", {"data.group_by": "id"})
    dd = build_dataset(config)
    assert docs_of(dd["test"]) & docs_of(dd["train"])  # documents now span splits
    assert not set(dd["test"]["unit_id"]) & set(dd["train"]["unit_id"])


def _extra_corpus(tmp_path, labels=("favor", "against", "none")):
    """A small extra corpus with its own task: an actor and a target the seed task does not know."""
    from tests.conftest import write_yaml

    task = write_yaml(
        tmp_path / "extra-task.yaml",
        {
            "labels": list(labels),
            "none_label": labels[-1],
            "actors": [{"id": "halvorsen", "name": "Ingrid Halvorsen", "aliases": ["Halvorsen"]}],
            "targets": [{"id": "sanctions", "name": "Sanctions", "wording": "sanctions on Russia"}],
        },
    )
    records = [
        {
            "id": f"x{i}",
            "doc_id": f"xd{i}",
            "text": f"Halvorsen said sanctions must stay, point {i}.",
            "labels": [{"actor": "halvorsen", "target": "sanctions", "label": labels[i % 3]}],
            "meta": {"synthetic": True},
        }
        for i in range(9)
    ]
    corpus = write_jsonl(tmp_path / "extra.jsonl", records)
    return {"data.extra_train": [{"name": "extra", "annotations": str(corpus), "task": str(task)}]}


def test_extra_corpora_join_train_only_in_every_split_and_fold(tmp_path):
    config = load_config("configs/base.yaml", _extra_corpus(tmp_path))
    plain = build_dataset(load_config("configs/base.yaml"))
    dd = build_dataset(config)
    extra = [i for i, doc in enumerate(dd["train"]["doc_id"]) if doc.startswith("xd")]
    assert len(extra) == 9 and len(dd["train"]) == len(plain["train"]) + 9
    assert dd["test"]["id"] == plain["test"]["id"] and dd["dev"]["id"] == plain["dev"]["id"]
    example = dd["train"][extra[0]]
    assert example["actor_name"] == "Ingrid Halvorsen" and example["target_text"] == "sanctions on Russia"
    assert example["text"][slice(*example["spans"][0])] == "Halvorsen"
    plain_folds = cross_validation_folds(load_config("configs/base.yaml"))
    for fold, ref in zip(cross_validation_folds(config), plain_folds):
        assert sum(d.startswith("xd") for d in fold["train"]["doc_id"]) == 9
        assert fold["test"]["id"] == ref["test"]["id"] and fold["dev"]["id"] == ref["dev"]["id"]


def test_an_extra_corpus_with_other_labels_is_refused_naming_its_task(tmp_path):
    from pipeline.data.corpus import CorpusError

    config = load_config("configs/base.yaml", _extra_corpus(tmp_path, labels=("pro", "con", "neutral")))
    with pytest.raises(CorpusError, match=r"extra-task.yaml: labels: expected the main task's labels"):
        build_dataset(config)
