"""Runtimes: a fine-tuned model exported to ONNX Runtime (fp32, dynamic int8) gives PyTorch's
answers, is exported once into its folder, and is what every door runs once exported."""

import json
import shutil

import numpy as np
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.data.datasets import build_dataset
from pipeline.models import runtime
from pipeline.models.encoders import ModelLoadError
from pipeline.models.export import export_model
from pipeline.models.inputs import rows_of
from pipeline.models.registry import build_model, load_model
from tests.conftest import ROOT, tiny_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A tiny transformer fine-tuned on the seed corpus's train split, saved; and the seed corpus's pairs."""
    tmp = tmp_path_factory.mktemp("runtime")
    config = load_config(ROOT / "configs/base.yaml", tiny_overrides(tmp, tiny_model_dir))
    dd = build_dataset(config)
    model = build_model(config)
    model.fit(dd["train"])
    folder = model.save(tmp / "model")
    rows = [r for split in ("train", "dev", "test") for r in rows_of(dd[split])]
    return folder, rows, model.predict_proba(rows)


@pytest.fixture
def copy(trained, tmp_path):
    """A fresh copy of the trained folder (exports write into it)."""
    return shutil.copytree(trained[0], tmp_path / "model")


def test_onnx_gives_torchs_labels_on_every_seed_pair_and_probabilities_within_1e4(trained, copy):
    _, rows, torch_probs = trained
    model = load_model(copy, runtime="onnx")
    assert model.onnx is not None and model.model is None  # ONNX Runtime alone: no torch weights in memory
    probs = model.predict_proba(rows)
    assert len(rows) > 500
    assert np.abs(probs - torch_probs).max() <= 1e-4
    assert (probs.argmax(axis=1) == torch_probs.argmax(axis=1)).all()


def test_int8_quantises_the_linear_layers_only_and_agrees_with_torch_on_the_seed_pairs(trained, copy):
    import onnx

    _, rows, torch_probs = trained
    probs = load_model(copy, runtime="onnx-int8").predict_proba(rows)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(axis=1) == torch_probs.argmax(axis=1)).mean() >= 0.99
    int8, fp32 = runtime.onnx_file(copy, "onnx-int8"), (copy / "model.safetensors")
    assert int8.stat().st_size < fp32.stat().st_size
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops  # int8 linear layers
    assert "MatMul" not in ops and "QEmbedLayerNormalization" not in ops  # every one of them; embeddings fp32


def test_export_happens_once_into_the_folder_and_leaves_no_temp_files(copy, capsys):
    load_model(copy, runtime="onnx")
    path = runtime.onnx_file(copy, "onnx")
    assert "exporting" in capsys.readouterr().err
    stamp = path.stat().st_mtime_ns
    load_model(copy, runtime="onnx")
    assert path.stat().st_mtime_ns == stamp and "exporting" not in capsys.readouterr().err
    assert sorted(p.name for p in (copy / "onnx").iterdir()) == ["model.onnx"]


def test_a_failed_export_check_writes_nothing(copy, monkeypatch):
    monkeypatch.setattr(runtime.OnnxForward, "__call__", lambda self, batch: np.zeros((2, 3), np.float32))
    with pytest.raises(runtime.ExportError, match="differ from PyTorch's"):
        load_model(copy, runtime="onnx")
    assert not runtime.onnx_file(copy, "onnx").exists()
    assert list((copy / "onnx").iterdir()) == []


def test_export_command_makes_the_runtime_the_models_own(trained, copy, capsys):
    _, rows, torch_probs = trained
    path = export_model(copy, "onnx-int8")
    assert path == runtime.onnx_file(copy, "onnx-int8") and path.is_file()
    assert "runs on onnx-int8" in capsys.readouterr().out
    assert json.loads((copy / "stance.json").read_text())["model"]["runtime"] == "onnx-int8"
    assert load_model(copy).onnx is not None
    back = load_model(copy, runtime="torch")  # the option still picks PyTorch
    assert back.onnx is None and np.allclose(back.predict_proba(rows[:20]), torch_probs[:20], atol=1e-6)


def test_a_model_loaded_for_onnx_saves_whole(trained, copy, tmp_path):
    _, rows, torch_probs = trained
    model = load_model(copy, runtime="onnx")
    saved = model.save(tmp_path / "again")
    assert json.loads((saved / "stance.json").read_text())["model"]["runtime"] == "onnx"
    assert np.allclose(load_model(saved).predict_proba(rows[:20]), torch_probs[:20], atol=1e-4)
    assert np.allclose(load_model(saved, runtime="torch").predict_proba(rows[:20]), torch_probs[:20], atol=1e-6)


def test_the_pyfunc_takes_the_runtime_from_model_config(copy, tmp_path):
    import mlflow.pyfunc

    target = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=str(ROOT / "pipeline/models/mlflow_model.py"),
        artifacts={"model": str(copy)},
        code_paths=[str(ROOT / "pipeline")],
        model_config={"runtime": None, "threads": None},
    )
    plain = mlflow.pyfunc.load_model(str(target)).unwrap_python_model().model
    onnx = mlflow.pyfunc.load_model(str(target), model_config={"runtime": "onnx"}).unwrap_python_model().model
    assert plain.onnx is None and onnx.onnx is not None


def test_runtime_errors_name_the_key_and_the_choices(tmp_path, tiny_model_dir, copy):
    with pytest.raises(ConfigError, match="tfidf backend has no runtime"):
        load_config(ROOT / "configs/tfidf.yaml", {"model.runtime": "onnx"})
    with pytest.raises(ConfigError, match="method 'similarity' runs on torch only"):
        load_config(ROOT / "configs/zeroshot-similarity.yaml", {"model.runtime": "onnx"})
    with pytest.raises(ConfigError, match="runtime"):
        load_config(ROOT / "configs/finetune.yaml", {"model.runtime": "tensorrt"})
    with pytest.raises(ModelLoadError, match="make export writes into a model folder"):
        export_model("runs:/abc/model", "onnx")


def test_the_heap_bound_is_set_once_and_leaves_a_users_own_setting(monkeypatch):
    from pipeline import process

    monkeypatch.setattr(process, "_heap_bounded", False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert process.bound_heap() is False  # the user's setting stands
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setattr(process, "_heap_bounded", False)
    assert process.bound_heap() is True  # glibc (this CI's Linux) accepts it
    assert process.bound_heap() is False  # once


def test_evaluate_on_a_runtime_scores_it_and_tags_the_run(trained, copy, mlflow_store, tmp_path, tiny_model_dir):
    import mlflow

    from pipeline.experiments.evaluate import evaluate

    config = load_config(ROOT / "configs/base.yaml", tiny_overrides(tmp_path, tiny_model_dir))
    on_torch = evaluate(config, str(copy))
    on_onnx = evaluate(config, str(copy), runtime="onnx")
    assert on_onnx["test/f_avg"] == on_torch["test/f_avg"]  # the same labels
    runs = mlflow.search_runs(experiment_names=["ukraine-seeds"])
    assert sorted(runs["tags.runtime"]) == ["onnx", "torch"]
