"""Batch inference on Spark through ``mlflow.pyfunc.spark_udf`` over a logged model.

Spark does the distribution; the UDF is MLflow's own. A local model folder (not yet an
MLflow model) is wrapped with ``mlflow.pyfunc.save_model`` first, so the same code
serves ``models/<name>``, ``runs:/<id>/model`` and ``models:/<name>@<alias>``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

INPUT_COLUMNS = ("text", "actor", "target")


class SparkInputError(ValueError):
    """The input cannot be read or lacks a required column."""


def spark_session(master: str = "local[*]", app: str = "stance-predict"):
    import os
    import sys

    from pyspark.sql import SparkSession

    # Workers must run this interpreter (it has the pipeline's packages); on a cluster,
    # PYSPARK_PYTHON set by the user names the executors' Python instead.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def mlflow_model_uri(model: str, workdir: Path) -> tuple[str, list[str]]:
    """An MLflow model URI for ``model`` and its labels (a local stance folder is wrapped)."""
    import mlflow.pyfunc

    import pipeline
    from pipeline.models import pyfunc
    from pipeline.models.base import SPEC_FILE
    from pipeline.models.encoders import ModelLoadError
    from pipeline.models.registry import is_mlflow_uri, locate

    if is_mlflow_uri(model):
        folder = locate(model)
        return model, json.loads((folder / SPEC_FILE).read_text())["labels"]
    folder = Path(model)
    if not (folder / SPEC_FILE).is_file():
        raise ModelLoadError(f"{folder} is not a saved stance model: no {SPEC_FILE} in it")
    package = Path(pipeline.__file__).parent
    target = workdir / "mlflow-model"
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=str(Path(pyfunc.__file__).with_name("mlflow_model.py")),
        artifacts={"model": str(folder)},
        code_paths=[str(package)],
        model_config=pyfunc.MODEL_CONFIG,
    )
    return str(target), json.loads((folder / SPEC_FILE).read_text())["labels"]


def stance_udf(spark, model_uri: str, labels: list[str], runtime: str | None = None):
    """The pyfunc as a Spark UDF returning struct<label, prob_<label>...>.

    Each Spark task runs the model with ``spark.task.cpus`` threads (default 1): Spark already
    runs one task per core, and a model using every core in each would oversubscribe them.
    ``runtime``: torch, onnx or onnx-int8 instead of the model's own.
    """
    import mlflow.pyfunc

    result_type = ", ".join(["label string", *(f"prob_{lab} double" for lab in labels)])
    options = {"threads": int(spark.conf.get("spark.task.cpus", "1"))} | ({"runtime": runtime} if runtime else {})
    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type, env_manager="local", model_config=options)


def check_columns(df, source: str) -> None:
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise SparkInputError(
            f"{source}: missing column(s) {missing}; expected {list(INPUT_COLUMNS)}, found {df.columns}"
        )


def score_frame(df, udf):
    """Add the prediction columns (label, prob_*) to a DataFrame with text, actor, target."""
    from pyspark.sql import functions as F

    check_columns(df, "input DataFrame")
    scored = df.withColumn("_prediction", udf(F.struct(*[F.col(c) for c in INPUT_COLUMNS])))
    return scored.select("*", "_prediction.*").drop("_prediction")


def predict_spark(
    input_path: str,
    output_path: str,
    model: str,
    master: str = "local[*]",
    overwrite: bool = False,
    runtime: str | None = None,
) -> dict:
    """Read JSONL or Parquet, score every row, write a Parquet folder whole: into a temporary folder
    beside ``output_path``, which replaces it at the end. An existing output is refused unless
    ``overwrite``; nothing is deleted before the new output is complete."""
    from pipeline.files import refuse_existing, replace_dir
    from pipeline.models.registry import is_mlflow_uri, load_model
    from pipeline.process import clean_scratch, remove_scratch, scratch_dir

    source = Path(input_path)
    if not source.exists():
        raise SparkInputError(f"input {source} does not exist")
    out = refuse_existing(output_path, overwrite, "Parquet output folder", folder=True)
    start = time.time()
    spark = spark_session(master)
    staging_root = out.absolute().parent / ".staging"
    clean_scratch(staging_root)
    staging = scratch_dir("spark", root=staging_root)
    try:
        with tempfile.TemporaryDirectory(prefix="stance-spark-") as tmp:
            if runtime and runtime != "torch" and not is_mlflow_uri(model):
                load_model(model, runtime)  # export once here, not in every Spark worker
            uri, labels = mlflow_model_uri(model, Path(tmp))
            if source.suffix in (".jsonl", ".json"):
                df = spark.read.json(str(source))
            elif source.suffix == ".parquet" or source.is_dir():
                df = spark.read.parquet(str(source))
            else:
                raise SparkInputError(f"{source}: expected a .jsonl or .parquet input")
            check_columns(df, str(source))
            scored = score_frame(df, stance_udf(spark, uri, labels, runtime))
            scored.write.mode("overwrite").parquet(str(staging / out.name))
            replace_dir(staging / out.name, out)
    finally:
        remove_scratch(staging)
    rows = spark.read.parquet(str(out)).count()
    seconds = time.time() - start
    print(f"scored {rows} rows on {master} in {seconds:.1f}s ({rows / seconds:.0f} rows/s) -> {out}")
    return {"rows": rows, "seconds": seconds}
