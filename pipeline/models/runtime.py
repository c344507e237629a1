"""Where a fine-tuned transformer runs: PyTorch, or ONNX Runtime in fp32 (``onnx``) or with
dynamic int8 quantisation of its linear layers (``onnx-int8``).

Export is the well-kept tools, in three steps:

1. ``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``) from a copy of the model
   set to eager attention. ONNX Runtime's transformer optimizer recognises the attention
   subgraph this produces and fuses it (Attention, EmbedLayerNormalization, SkipLayerNorm,
   BiasGelu); from the dynamo exporter, or from PyTorch's SDPA attention, it fuses only the
   layer norms and GELU, and the int8 model ran about 10% slower (measured on MiniLM-L6,
   docs/results/2026-11-24-runtimes.md).
2. ``onnxruntime.transformers.optimizer.optimize_model`` (BERT-family encoders only; other
   architectures keep ONNX Runtime's generic graph optimisations).
3. ``onnx-int8``: ``onnxruntime.quantization.quantize_dynamic`` of the linear layers only
   (``MatMul`` and the fused ``Attention``'s projections, as PyTorch's dynamic quantisation of
   ``nn.Linear``), int8 weights per output channel (per-tensor scales flipped more near-tie
   labels on the seed pairs), activations quantised on the fly per batch. ONNX Runtime's
   default would also quantise the word-embedding table (``EmbedLayerNormalization``): a
   4x smaller file (22 vs 56 MiB), as fast, but 6 changed labels on the seed pairs instead
   of 4 (docs/results/2026-11-24-runtimes.md).

The files live in the model folder (``onnx/model.onnx``, ``onnx/model-int8.onnx``) beside the
tokenizer and ``stance.json``; each is written under a temporary name and checked against
the PyTorch model on an example before it is renamed into place.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipeline.models.encoders import ModelLoadError

RUNTIMES = ("torch", "onnx", "onnx-int8")
ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model-int8.onnx"}
# ONNX Runtime's transformer optimizer knows these encoders' attention subgraph ("bert" fusions).
FUSABLE = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
OPSET = 17


class ExportError(ModelLoadError):
    """An export that failed its check against the PyTorch model."""


def onnx_file(folder: str | Path, runtime: str) -> Path:
    if runtime not in ONNX_FILES:
        raise ModelLoadError(f"runtime {runtime!r} has no ONNX file; expected one of {list(ONNX_FILES)}")
    return Path(folder) / ONNX_FILES[runtime]


@contextmanager
def _quiet():
    """The exporter's, optimizer's and quantizer's warnings are about their internals, not the user's model."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs its advice to the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _logits_module(model, names: list[str]):
    """The model as a function of positional tensors (the exporter's calling convention) to logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(names, tensors))).logits

    return Logits().eval()


def _eager_copy(model):
    """A copy of the model with eager attention (what the optimizer's attention fusion matches)."""
    twin = copy.deepcopy(model).eval()
    target = getattr(twin, "encoder", twin)  # MeanPooledClassifier keeps the HF encoder in .encoder
    if hasattr(target, "set_attn_implementation"):
        target.set_attn_implementation("eager")
    return twin


def _export_fp32(model, tokenizer, path: Path) -> dict[str, np.ndarray]:
    """Write the fp32 graph to ``path``; return the example inputs it was traced and checked on."""
    import torch

    example = tokenizer(
        ["Macron on negotiations", "Zelensky on territorial concessions"],
        ["He said talks with Russia must start.", "Zelensky refused to give up any land at all."],
        padding=True,
        return_tensors="pt",
    )
    names = list(example.keys())
    wrapped = _logits_module(_eager_copy(model), names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with _quiet(), torch.no_grad():  # the TorchScript tracer needs autograd's bookkeeping: no inference_mode
        torch.onnx.export(
            wrapped,
            tuple(example[n] for n in names),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return {n: example[n].numpy() for n in names}


def _optimize(path: Path, config) -> None:
    """Fuse the encoder's subgraphs in place (BERT-family only; else leave the graph as exported)."""
    if getattr(config, "model_type", None) not in FUSABLE:
        return
    from onnxruntime.transformers import optimizer

    with _quiet():
        opt = optimizer.optimize_model(
            str(path),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
        )
        opt.save_model_to_file(str(path))


def _quantize(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],  # the linear layers; embeddings stay fp32
            # The fused ops are in ONNX Runtime's own domain, where shape inference gives no type.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def export(model, tokenizer, folder: str | Path, runtime: str) -> Path:
    """Export ``model`` (a torch classifier returning ``.logits``) for ``runtime`` into ``folder``.

    The file appears only once written and checked: the fp32 graph must give the torch logits
    within 1e-4 on the example, the int8 one finite logits of the right shape.
    """
    import torch

    target = onnx_file(folder, runtime)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        fp32 = work / "model.onnx"
        example = _export_fp32(model, tokenizer, fp32)
        _optimize(fp32, model.config)
        with torch.inference_mode():
            expected = model(**{k: torch.from_numpy(v) for k, v in example.items()}).logits.float().numpy()
        got = OnnxForward(fp32, threads=1)(example)
        if not np.allclose(got, expected, atol=1e-4, rtol=0):
            raise ExportError(
                f"ONNX export of {folder}: the graph's logits differ from PyTorch's by "
                f"{np.abs(got - expected).max():.2e} (expected at most 1e-4); nothing was written"
            )
        made = fp32
        if runtime == "onnx-int8":
            made = work / "model-int8.onnx"
            _quantize(fp32, made)
            got = OnnxForward(made, threads=1)(example)
            if got.shape != expected.shape or not np.isfinite(got).all():
                raise ExportError(f"int8 quantisation of {folder} gave no usable logits; nothing was written")
        os.chmod(made, 0o644)
        os.replace(made, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def default_threads() -> int:
    """Every core this process may run on (its CPU affinity), as PyTorch's and ONNX Runtime's default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxForward:
    """An ONNX Runtime session: a batch of numpy inputs (the tokenizer's) to logits."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict) -> np.ndarray:
        feed = {name: np.asarray(batch[name], dtype=np.int64) for name in self.inputs}
        return self.session.run(None, feed)[0]


def size_mib(path: str | Path) -> float:
    return Path(path).stat().st_size / 2**20
