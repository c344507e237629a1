"""Spark UDF vs direct predict throughput on 10,000 (sentence, actor, target) pairs, on each
runtime (torch, onnx, onnx-int8).

Needs a trained model (``make train``) and pyspark (``make predict-spark`` or ``make test``
install it). Both paths score the same pairs with the same saved model, exported to ONNX in a
temporary copy; labels are compared with direct PyTorch.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from pipeline.models.runtime import RUNTIMES

N_PAIRS = 10_000
MODEL = Path("models/finetune-minilm")


def workload(n: int = N_PAIRS):
    import pandas as pd

    from pipeline.config import load_config
    from pipeline.data.validate import load_records

    rows = [
        {"text": r.text, "actor": lab.actor, "target": lab.target}
        for r in load_records(load_config("configs/base.yaml"))
        for lab in r.labels
    ]
    return pd.DataFrame([rows[i % len(rows)] for i in range(n)])


def main() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        print("skipped: pyspark is not installed (make predict-spark installs it)")
        return
    if not (MODEL / "stance.json").is_file():
        print(f"skipped: no trained model at {MODEL} (run `make train`)")
        return
    from pipeline.inference.spark import mlflow_model_uri, score_frame, spark_session, stance_udf
    from pipeline.models.registry import load_model

    pairs = workload()
    spark = spark_session("local[*]")
    cores = spark.sparkContext.defaultParallelism
    print(
        f"{N_PAIRS} pairs, model {MODEL} exported into a temporary copy; direct: one process, every core; "
        f"Spark local[*]: {cores} tasks of {spark.conf.get('spark.task.cpus', '1')} thread"
    )
    print("  runtime     direct predict_proba    spark_udf (worker start and model load included)   labels = torch")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(MODEL, Path(tmp) / MODEL.name, ignore=shutil.ignore_patterns("onnx")))
        frame = spark.createDataFrame(pairs.assign(row=range(len(pairs))))
        frame = frame.repartition(cores).cache()
        frame.count()
        reference, spark_torch = None, None
        for runtime in RUNTIMES:
            model = load_model(folder, runtime=runtime)  # exports the runtime's file into the copy
            start = time.perf_counter()
            direct = model.predict_proba(pairs)
            direct_s = time.perf_counter() - start
            reference = direct if reference is None else reference
            uri, labels = mlflow_model_uri(str(folder), Path(tmp) / runtime)
            udf = stance_udf(spark, uri, labels, runtime)
            start = time.perf_counter()
            scored = score_frame(frame, udf).select("row", "label").toPandas().sort_values("row")
            spark_s = time.perf_counter() - start
            spark_torch = spark_torch or spark_s
            same = (scored["label"].to_numpy() == [labels[i] for i in reference.argmax(axis=1)]).mean()
            print(
                f"  {runtime:<10} {N_PAIRS / direct_s:8.1f} pairs/s ({direct_s:5.1f} s)   "
                f"{N_PAIRS / spark_s:8.1f} pairs/s ({spark_s:5.1f} s), {spark_torch / spark_s:.2f}x torch's"
                f"                 {same:.2%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
