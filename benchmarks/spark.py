"""Spark UDF vs direct predict throughput on 10,000 (sentence, actor, target) pairs.

Needs a trained model (``make train``) and pyspark (``make predict-spark`` or ``make test``
install it). Both paths score the same pairs with the same saved model.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

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
    model = load_model(MODEL)
    start = time.perf_counter()
    direct = model.predict_proba(pairs)
    direct_s = time.perf_counter() - start

    spark = spark_session("local[*]")
    with tempfile.TemporaryDirectory() as tmp:
        uri, labels = mlflow_model_uri(str(MODEL), Path(tmp))
        udf = stance_udf(spark, uri, labels)
        frame = spark.createDataFrame(pairs.assign(row=range(len(pairs))))
        frame = frame.repartition(spark.sparkContext.defaultParallelism)
        start = time.perf_counter()
        scored = score_frame(frame, udf).select("row", "label").toPandas().sort_values("row")
        spark_s = time.perf_counter() - start
    agree = (scored["label"].to_numpy() == [labels[i] for i in direct.argmax(axis=1)]).mean()
    cores = spark.sparkContext.defaultParallelism
    print(f"{N_PAIRS} pairs, model {MODEL} ({model.backend}), Spark local[*] with {cores} cores")
    print(f"direct predict: {direct_s:7.1f}s  {N_PAIRS / direct_s:8.1f} pairs/s")
    print(f"spark_udf:      {spark_s:7.1f}s  {N_PAIRS / spark_s:8.1f} pairs/s  (includes worker start and model load)")
    print(f"labels identical on {agree:.1%} of pairs")
