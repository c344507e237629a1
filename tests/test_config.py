from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, load_config, load_task
from pipeline.data.actors import ActorMatcher
from tests.conftest import ROOT, write_yaml


def all_config_files() -> list[Path]:
    return sorted(p for p in (ROOT / "configs").glob("*.yaml"))  # collected before the fixture sets the cwd


@pytest.mark.parametrize("path", all_config_files(), ids=lambda p: p.name)
def test_every_config_file_loads(path):
    config = load_config(path)
    assert config.task.actors and config.task.targets


def all_task_files() -> list[Path]:
    return sorted((ROOT / "configs" / "tasks").glob("*.yaml"))


def test_there_are_task_files_to_check():
    assert all_task_files()  # an empty glob would leave the parametrized test below with no case


@pytest.mark.parametrize("path", all_task_files(), ids=lambda p: p.name)
def test_every_task_file_loads(path):
    task = load_task(path)  # validation (labels, none_label, unique ids) raises on a bad file
    # Usable for matching: every actor's aliases compile, and its own name finds it and no one else.
    matcher = ActorMatcher(task)
    assert {a.id: matcher.actors_in(a.name) for a in task.actors} == {a.id: [a.id] for a in task.actors}


def test_base_task_is_the_seed_task():
    task = load_config("configs/base.yaml").task
    assert task.labels == ["favor", "against", "none"]
    assert task.stance_labels == ["favor", "against"]
    assert set(task.target_ids) == {"concessions", "integrity", "negotiations"}
    assert {"macron", "zelensky", "putin"} <= set(task.actor_ids)


def test_child_overrides_only_what_differs(tmp_path):
    child = write_yaml(
        tmp_path / "child.yaml", {"extends": str(Path("configs/base.yaml").resolve()), "data": {"seed": 7}}
    )
    config = load_config(child)
    assert config.data.seed == 7
    assert config.data.annotations == "seeds/annotations.jsonl"


def test_unknown_key_names_key_and_file(tmp_path):
    child = write_yaml(
        tmp_path / "typo.yaml", {"extends": str(Path("configs/base.yaml").resolve()), "data": {"test_sise": 0.3}}
    )
    with pytest.raises(ConfigError) as err:
        load_config(child)
    assert f"{child}: data.test_sise: unknown key" in str(err.value)


def test_bad_value_names_key_file_and_value(tmp_path):
    child = write_yaml(
        tmp_path / "bad.yaml", {"extends": str(Path("configs/base.yaml").resolve()), "data": {"test_size": 1.5}}
    )
    with pytest.raises(ConfigError) as err:
        load_config(child)
    msg = str(err.value)
    assert f"{child}: data.test_size:" in msg and "1.5" in msg


def test_missing_key_is_reported(tmp_path):
    cfg = write_yaml(tmp_path / "nodata.yaml", {"task": str(Path("configs/tasks/ukraine-war.yaml").resolve())})
    with pytest.raises(ConfigError, match=r"nodata.yaml: data: required key is missing"):
        load_config(cfg)


def test_error_in_task_file_names_the_task_file(tmp_path):
    task = write_yaml(
        tmp_path / "task.yaml",
        {
            "labels": ["favor", "against"],
            "none_label": "none",
            "actors": [{"id": "a", "name": "A"}],
            "targets": [{"id": "t", "name": "T", "wording": "t"}],
        },
    )
    cfg = write_yaml(tmp_path / "exp.yaml", {"task": "task.yaml", "data": {"annotations": "x.jsonl"}})
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert f"{task}: task: " in str(err.value) and "none_label 'none' is not one of labels" in str(err.value)


def test_malformed_and_duplicate_ids_are_refused(tmp_path):
    target = {"id": "t", "name": "T", "wording": "t"}
    bad_id = {"actors": [{"id": "a", "name": "A"}], "targets": [{**target, "id": "bad id"}]}
    path = write_yaml(tmp_path / "t.yaml", bad_id)
    with pytest.raises(ConfigError) as err:
        load_task(path)
    assert f"{path}: targets[0].id:" in str(err.value) and "target id must be letters" in str(err.value)
    dupes = {"actors": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}], "targets": [target]}
    with pytest.raises(ConfigError, match=r"actors: duplicate ids \['a'\]"):
        load_task(write_yaml(tmp_path / "d.yaml", dupes))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_with_overrides_validates_a_copy_in_memory():
    from pipeline.config import ConfigError, with_overrides

    config = load_config("configs/finetune.yaml")
    changed = with_overrides(config, {"training.learning_rate": 3e-5, "model.pooling": "mean"})
    assert (changed.training.learning_rate, changed.model.pooling) == (3e-5, "mean")
    assert (config.training.learning_rate, config.model.pooling) != (3e-5, "mean")
    assert changed.task == config.task and changed.data == config.data
    with pytest.raises(ConfigError, match=r"<override>: training.epochs: .*greater than or equal to 1"):
        with_overrides(config, {"training.epochs": 0})
    with pytest.raises(ConfigError, match="training.epocs: unknown key"):
        with_overrides(config, {"training.epocs": 3})


def test_sweep_space_entries_are_checked_at_load(tmp_path):
    with pytest.raises(ConfigError, match="sweep.space.training.learning_rate.*low < high"):
        load_config("configs/finetune.yaml", {"sweep.space": {"training.learning_rate": {"type": "float", "low": 1}}})
    with pytest.raises(ConfigError, match="sweep.space.model.pooling.*non-empty 'choices'"):
        load_config("configs/finetune.yaml", {"sweep.space": {"model.pooling": {"type": "categorical", "choices": []}}})


def test_class_defaults_are_the_recipe_in_base_yaml():
    """One source of defaults: a config that does not extend base.yaml gets the same recipe."""
    from pipeline.config import (
        DataConfig,
        ModelConfig,
        SweepConfig,
        TfidfConfig,
        TrackingConfig,
        TrainingConfig,
        ZeroShotConfig,
    )

    raw = yaml.safe_load(Path("configs/base.yaml").read_text())
    sections = {
        "model": ModelConfig(),
        "tfidf": TfidfConfig(),
        "zeroshot": ZeroShotConfig(),
        "training": TrainingConfig(),
        "sweep": SweepConfig(),
        "tracking": TrackingConfig(),
        "data": DataConfig(annotations=raw["data"]["annotations"]),
    }
    differ = []

    def walk(prefix, values, default):
        for key, value in values.items():
            dv = getattr(default, key)
            if isinstance(value, dict) and hasattr(dv, "model_dump") and key != "space":
                walk(f"{prefix}.{key}", value, dv)
                continue
            if key == "space":
                dv = {k: {f: v for f, v in p.model_dump().items() if f in value[k]} for k, p in dv.items()}
            if dv != value:
                differ.append(f"{prefix}.{key}: base.yaml {value!r}, class default {dv!r}")

    corpus_identity = {"corpus", "annotations", "documents", "metadata"}  # which corpus, not how to use it
    raw["data"] = {k: v for k, v in raw["data"].items() if k not in corpus_identity}
    for name, default in sections.items():
        walk(name, raw[name], default)
    assert len(raw["training"]) > 5 and len(raw["zeroshot"]) > 5  # the comparison covers the recipe
    assert differ == []
