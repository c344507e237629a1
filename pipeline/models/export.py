"""``make export``: write a model folder's ONNX file and make it the folder's runtime."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.files import write_atomic
from pipeline.models import runtime as runtimes
from pipeline.models.encoders import ModelLoadError
from pipeline.models.registry import load_model
from pipeline.models.store import SPEC_FILE, is_mlflow_uri


def _weights_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20


def export_model(model: str | Path, runtime: str) -> Path:
    """Export ``model`` (a folder) for ``runtime`` (onnx, onnx-int8) and record it in its stance.json,
    so every door (predict, evaluate, serve, Spark, the logged model) runs it by default; ``RUNTIME=``
    or ``--runtime torch`` still picks PyTorch. Returns the ONNX file."""
    if is_mlflow_uri(str(model)):
        raise ModelLoadError(
            f"{model}: make export writes into a model folder; a logged model gets its ONNX file when trained "
            "with SET=model.runtime=onnx-int8, or exports on load with make serve / make predict-spark RUNTIME="
        )
    folder = Path(model)
    loaded = load_model(folder, runtime=runtime)  # exports into the folder if its file is missing
    spec_path = folder / SPEC_FILE
    spec = json.loads(spec_path.read_text())
    spec["model"]["runtime"] = runtime
    write_atomic(spec_path, json.dumps(spec, indent=2, ensure_ascii=False) + "\n")
    inner = getattr(loaded, "stance_model", None)  # a zero-shot model runs its stance model
    source = (inner or loaded).folder
    path = runtimes.onnx_file(source, runtime)
    print(
        f"{folder} runs on {runtime}: {path} ({runtimes.size_mib(path):.1f} MiB; the PyTorch weights "
        f"{_weights_mib(source):.1f} MiB); --runtime torch (RUNTIME=torch) still runs PyTorch"
    )
    return path
