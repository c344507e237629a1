"""``run_predict``: stream an input file or folder of articles through a model into a JSONL
or CSV file (and optionally the stance report)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.documents import EncodingErrors, read_documents
from pipeline.files import refuse_existing
from pipeline.inference.classifier import DEFAULT_BATCH_SIZE, StanceClassifier
from pipeline.inference.records import PredictionWriter, PredictStats, output_format
from pipeline.process import check_stop


@dataclass
class PredictResult:
    output: Path
    stats: PredictStats
    report_files: list[Path] = field(default_factory=list)


def run_predict(
    input_path: str | Path,
    output_path: str | Path,
    model_uri: str,
    report_dir: str | Path | None = None,
    encoding_errors: EncodingErrors = "strict",
    batch_size: int = DEFAULT_BATCH_SIZE,
    classifier: StanceClassifier | None = None,
    task: str | Path | None = None,
    runtime: str | None = None,
    overwrite: bool = False,
) -> PredictResult:
    """Stream the documents of ``input_path`` through the model into ``output_path``.

    An existing output file or report folder is refused unless ``overwrite``; either way the
    outputs appear whole, and only once every prediction (and the report) is written.

    A progress bar (tqdm) shows on stderr only when stderr is a terminal and only after
    the first two seconds, so short runs and logs stay clean.
    """
    from tqdm.auto import tqdm

    from pipeline.inference.report import StanceReport

    output_format(output_path)  # fail before the model loads
    refuse_existing(output_path, overwrite, "predictions file")
    if report_dir is not None:
        refuse_existing(report_dir, overwrite, "report folder", folder=True)
    clf = classifier or StanceClassifier.load(model_uri, task, runtime)
    start = time.perf_counter()  # after loading: the figures are about classifying
    documents = read_documents(input_path, encoding_errors)  # checks the input before any output exists
    stats = PredictStats()
    report = StanceReport(clf.task) if report_dir is not None else None
    with (
        PredictionWriter(output_path, clf.labels, clf.uri or model_uri) as writer,
        tqdm(documents, desc="predict", unit="doc", disable=None, delay=2, file=sys.stderr) as bar,
    ):
        for pred in clf.predict_documents(bar, batch_size, stats):
            check_stop()
            writer.write(pred)
            if report is not None:
                report.add(pred)
        # Inside the block: the predictions file is renamed into place only if the report is written too.
        files = report.write(report_dir, clf.uri or model_uri) if report is not None else []
    stats.seconds = time.perf_counter() - start
    return PredictResult(Path(output_path), stats, files)
