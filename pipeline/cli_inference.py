"""The inference commands of the command line (``predict``, ``predict-spark``, ``serve``); see cli.py."""

from __future__ import annotations

import argparse
import sys

from pipeline.inference.serve import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT
from pipeline.models.runtime import RUNTIMES

DEFAULT_MODEL = "models/finetune-minilm"  # the folder `make train` writes (configs/finetune.yaml's name)


def overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output (the old one stays until the new one is complete); "
        "without it, an existing output is refused",
    )


def cmd_predict_spark(args: argparse.Namespace) -> int:
    from pipeline.inference.spark import predict_spark

    predict_spark(args.input, args.output, args.model, args.master, overwrite=args.overwrite, runtime=args.runtime)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.inference.serve import serve

    serve(args.model, args.host, args.port, args.max_rows, args.timeout, runtime=args.runtime)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import logging

    from pipeline.inference.predict import run_predict

    # Warnings about the input (an empty file, replaced bytes) go to stderr as they happen.
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    result = run_predict(
        args.input,
        args.output,
        args.model,
        report_dir=args.report,
        encoding_errors=args.encoding_errors,
        batch_size=args.batch_size,
        task=args.task,
        runtime=args.runtime,
        overwrite=args.overwrite,
    )
    stats = result.stats
    if stats.documents and not stats.pairs:
        print(f"no actor of the model's task is mentioned in {args.input}: the output is empty", file=sys.stderr)
    notes = [
        f"{n} {what}"
        for n, what in (
            (stats.truncated, "pairs truncated (long sentences)"),
            (stats.encoding_replaced, "documents with replaced bytes"),
            (stats.empty_documents, "empty documents"),
        )
        if n
    ]
    print(f"{stats.line()} -> {result.output}" + (f"; {', '.join(notes)}" if notes else ""))
    if result.report_files:
        print(f"report: {', '.join(str(p) for p in result.report_files)}")
    return 0


def runtime_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="run the model on torch, onnx (ONNX Runtime fp32) or onnx-int8 (dynamic int8) instead of the runtime "
        "it was saved with; an ONNX file the model folder lacks is exported into it first (once)",
    )


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.models.export import export_model

    export_model(args.model, args.runtime)
    return 0


def inference_commands(add) -> None:
    p = add("export", cmd_export, "export a model folder to ONNX (fp32 or int8) and make it the folder's runtime")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model folder (default: {DEFAULT_MODEL})")
    p.add_argument("--runtime", choices=RUNTIMES[1:], default="onnx-int8", help="default onnx-int8")
    p = add(
        "predict-spark", cmd_predict_spark, "score (text, actor, target) rows on Spark through mlflow.pyfunc.spark_udf"
    )
    p.add_argument("--input", required=True, help="JSONL or Parquet with text, actor, target columns")
    p.add_argument("--output", required=True, help="Parquet folder to write")
    p.add_argument(
        "--model", default=DEFAULT_MODEL, help="model folder, runs:/<run_id>/model or models:/<name>@<alias>"
    )
    p.add_argument("--master", default="local[*]", help="Spark master URL (default local[*])")
    runtime_option(p)
    overwrite_option(p)
    p = add("serve", cmd_serve, "REST predictions (MLflow's scoring server) with a row limit per request")
    p.add_argument("--model", default="models:/stance-ukraine-seeds@champion", help="model folder, runs:/ or models:/")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="rows per request; more get HTTP 413")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds before a request gets HTTP 504")
    runtime_option(p)
    p = add("predict", cmd_predict, "stance of every mentioned actor on every target in new articles")
    p.add_argument(
        "--input",
        required=True,
        help="a folder of .txt files, a .jsonl or a .csv (a 'text' column; optional doc_id, date, title)",
    )
    p.add_argument("--output", required=True, help="predictions file: .jsonl or .csv (written whole or not at all)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model folder, runs:/<run_id>/model or models:/<name>@<alias> (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="also write the stance report (counts, evidence, heatmap, DNA export) into DIR",
    )
    p.add_argument(
        "--encoding-errors",
        choices=["strict", "replace"],
        default="strict",
        help="invalid UTF-8: stop with the file and byte offset (strict), or decode with U+FFFD and "
        "flag the document's predictions encoding_replaced (replace)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="pairs classified per batch (memory stays flat)")
    runtime_option(p)
    overwrite_option(p)
    p.add_argument(
        "--task",
        default=None,
        help="a task file (actors with aliases, targets with wording) to use instead of the model's own; "
        "its labels must be the model's (the model reads actor names and target wordings)",
    )
