"""Command line: ``stance <command> [--config FILE]`` (also ``python -m pipeline``).

Thin by design: each command parses its arguments and calls a library function.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.cli_annotate import annotate_commands
from pipeline.cli_inference import inference_commands, overwrite_option, runtime_option

DEFAULT_CONFIG = "configs/base.yaml"
TRAIN_CONFIG = "configs/finetune.yaml"
STANCE_CONFIG = "configs/stance-model.yaml"


def _config(args: argparse.Namespace):
    from pipeline.config import load_config

    return load_config(args.config)


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.data.validate import load_extra_corpora, validate

    config = _full_config(args)
    records, issues = validate(config)
    for issue in issues:
        print(issue, file=sys.stderr)
    if issues:
        files = [config.data.annotations, *(e.annotations for e in config.data.extra_train)]
        print(f"FAILED: {len(issues)} problem(s) in {', '.join(files)}", file=sys.stderr)
        return 1
    n_labels = sum(len(r.labels) for r in records)
    print(f"OK: {config.data.annotations}: {len(records)} units, {n_labels} labels")
    for (name, extra, _), spec in zip(load_extra_corpora(config), config.data.extra_train):
        n_extra = sum(len(r.labels) for r in extra)
        print(f"OK: {spec.annotations} (extra training corpus {name}): {len(extra)} units, {n_extra} labels")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from pipeline.data.stats import corpus_stats, format_stats, write_json_atomic
    from pipeline.data.validate import load_records
    from pipeline.files import refuse_existing

    config = _full_config(args)
    if args.output:
        refuse_existing(args.output, args.overwrite, "statistics file")
    stats = corpus_stats(load_records(config), config.task)
    print(format_stats(stats, config.task))
    if args.output:
        print(f"\nwritten to {write_json_atomic(stats, args.output)}")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from pipeline.data.segment import segment

    for path in args.files:
        path = Path(path)
        for sent in segment(path.read_text(encoding="utf-8"), path.stem):
            print(json.dumps(sent.to_dict(), ensure_ascii=False))
    return 0


def cmd_scaffold(args: argparse.Namespace) -> int:
    """Write an annotation skeleton: every sentence; the actors it refers to (names, aliases,
    pronouns, quote speakers: the attribution `make predict` uses) labelled 'none'."""
    from pipeline.data.attribution import attribute
    from pipeline.data.segment import segment
    from pipeline.files import write_atomic

    task = _config(args).task
    out, documents = Path(args.output), Path(args.documents)
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    articles = sorted(documents.glob("*.txt")) if documents.is_dir() else []
    if not articles:
        print(f"error: {documents}: expected a folder of .txt articles, found none", file=sys.stderr)
        return 1
    lines = []
    for path in articles:
        sentences = segment(path.read_text(encoding="utf-8"), path.stem)
        text_units = [s for s in sentences if not s.furniture]
        refs = dict(zip((s.id for s in text_units), attribute([s.text for s in text_units], task)))
        for sent in sentences:
            actors = [r.actor for r in refs.get(sent.id, [])]
            labels = [{"actor": a, "target": t, "label": task.none_label} for a in actors for t in task.target_ids]
            record = {
                "id": sent.id,
                "doc_id": sent.doc_id,
                "start": sent.start,
                "end": sent.end,
                "text": sent.text,
                "furniture": sent.furniture,
                "labels": labels,
            }
            lines.append(json.dumps(record, ensure_ascii=False))
    write_atomic(out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} units to {out}")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from pipeline.data.agreement import agreement_files, format_agreement

    try:
        result = agreement_files(args.a, args.b, _config(args).task)
    except ValueError as exc:  # CorpusError is one: the files' own problems, each with file and line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_agreement(result))
    return 0


def cmd_import_annotations(args: argparse.Namespace) -> int:
    from pipeline.annotate.merge import ImportRefused, import_annotations

    config = _full_config(args)
    try:
        summary = import_annotations(
            args.export, args.output, config.task, args.format, config.data.complete_labels, args.split
        )
    except ImportRefused as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _overrides(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: --set expects key=value, found {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def _full_config(args: argparse.Namespace):
    from pipeline.config import load_config

    return load_config(args.config, _overrides(args.set))


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.experiments.train import train

    train(_full_config(args), overwrite=args.overwrite)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.experiments.evaluate import evaluate

    evaluate(_full_config(args), args.model or None, args.runtime)
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from pipeline.experiments.cv import cross_validate

    cross_validate(_full_config(args))
    return 0


def cmd_zeroshot_eval(args: argparse.Namespace) -> int:
    from pipeline.experiments.zeroshot_eval import zeroshot_eval

    zeroshot_eval(_full_config(args), None if args.no_benchmark else args.benchmark, args.target or None)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pipeline.experiments.sweep import run_sweep

    run_sweep(args.config, _overrides(args.set), n_trials=args.trials, output=args.output, overwrite=args.overwrite)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pipeline.experiments.compare import compare_runs, format_runs
    from pipeline.experiments.tracking import ui_url

    config = _full_config(args)
    print(format_runs(compare_runs(config)))
    print(f"\nin the MLflow UI (make ui): {ui_url(config)}")  # compare_runs has opened the store
    return 0


def cmd_ui_link(args: argparse.Namespace) -> int:
    from pipeline.experiments import tracking

    config = _full_config(args)
    tracking.setup(config)
    print(tracking.ui_url(config, f"http://127.0.0.1:{args.port}"))
    return 0


def _corpus_commands(add) -> None:
    p = add("validate", cmd_validate, "validate the corpus against the task config and the articles")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    _set_option(p)
    p = add("stats", cmd_stats, "label counts per target x label, per actor and per document")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    _set_option(p)
    p.add_argument("--output", default=None, help="also write the counts as JSON to this file")
    overwrite_option(p)
    p = add("segment", cmd_segment, "print the sentences of text files as JSONL")
    p.add_argument("files", nargs="+")
    p = add("scaffold", cmd_scaffold, "write an annotation skeleton for a folder of articles")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--documents", default="seeds")
    p.add_argument("--output", required=True)
    p.add_argument("--overwrite", action="store_true")
    p = add("agreement", cmd_agreement, "Cohen's kappa between two annotation files of the same units")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p = add(
        "import-annotations",
        cmd_import_annotations,
        "merge a Label Studio JSON or doccano JSONL export into a corpus file (validated, conflicts refused)",
    )
    p.add_argument("--export", required=True, help="the export: .json (Label Studio) or .jsonl (doccano)")
    p.add_argument("--output", required=True, help="corpus JSONL to merge into (created if missing)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="its task gives the actors, targets and labels")
    _set_option(p)
    p.add_argument("--format", choices=["labelstudio", "doccano"], default=None, help="default: from the extension")
    p.add_argument(
        "--split", choices=["train", "dev", "test"], default=None, help="the split new units join (corpora with splits)"
    )


def _set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set training.epochs=3 (repeatable)",
    )


def _experiment_commands(add) -> None:
    for name, func, help in (
        ("train", cmd_train, "train the configured model, save it under models/<name>/ and log it to MLflow"),
        ("evaluate", cmd_evaluate, "evaluate a saved model on the test split and log the metrics to MLflow"),
        ("cv", cmd_cv, "grouped k-fold cross-validation: a parent MLflow run with one child run per fold"),
        ("compare", cmd_compare, "print the experiment's runs side by side, best first"),
        (
            "zeroshot-eval",
            cmd_zeroshot_eval,
            "the zero-shot stance method on targets absent from training: leave-one-target-out on the corpus "
            "and a public benchmark, one parent MLflow run",
        ),
        ("ui-link", cmd_ui_link, "print the MLflow UI link to the experiment's runs table, metric columns shown"),
        (
            "sweep",
            cmd_sweep,
            "hyperparameter search (Optuna) scored on dev: a parent MLflow run, one child "
            "per trial; writes the best trial's config",
        ),
    ):
        p = add(name, func, help)
        p.add_argument("--config", default=TRAIN_CONFIG)
        _set_option(p)
        if name in ("train", "sweep"):
            overwrite_option(p)
        if name == "ui-link":
            p.add_argument("--port", type=int, default=5000)
        if name == "zeroshot-eval":
            p.set_defaults(config=STANCE_CONFIG)
            p.add_argument(
                "--benchmark",
                default="configs/covid19-stance.yaml",
                help="config of the public benchmark answered zero-shot (default: COVID-19-Stance)",
            )
            p.add_argument("--no-benchmark", action="store_true", help="leave-one-target-out only")
            p.add_argument(
                "--target",
                action="append",
                default=[],
                help="hold out only this target (repeatable; default: each target in turn)",
            )
        if name == "sweep":
            p.add_argument("--trials", type=int, default=None, help="number of trials (default: sweep.n_trials)")
            p.add_argument(
                "--output",
                default=None,
                help="best config file (default: sweep.output, else <config>-best.yaml beside it)",
            )
        if name == "evaluate":
            p.add_argument(
                "--model",
                default=None,
                help="model folder, runs:/<run_id>/model or models:/<name>@<alias> (default: models/<name>)",
            )
            runtime_option(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    _corpus_commands(add)
    _experiment_commands(add)
    inference_commands(add)
    annotate_commands(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline import process
    from pipeline.annotate.select import SelectionError
    from pipeline.config import ConfigError
    from pipeline.data.corpus import CorpusError
    from pipeline.data.datasets import SplitError
    from pipeline.data.documents import InputFileError
    from pipeline.experiments.sweep import SweepError
    from pipeline.experiments.tracking import TrackingError
    from pipeline.files import OutputPathError
    from pipeline.inference.records import OutputFileError
    from pipeline.inference.spark import SparkInputError
    from pipeline.models.encoders import ModelLoadError
    from pipeline.models.inputs import InputError

    args = build_parser().parse_args(argv)
    process.handle_stop_signals()
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (process.Terminated)
        print(
            f"error: stopped by {process.signal_name(exc)}; its MLflow run (if any) is marked KILLED and "
            "temporary files and partial outputs are removed",
            file=sys.stderr,
        )
        return process.exit_code(exc)
    except (
        OutputPathError,
        ConfigError,
        CorpusError,
        SplitError,
        ModelLoadError,
        InputError,
        InputFileError,
        OutputFileError,
        TrackingError,
        SparkInputError,
        SweepError,
        SelectionError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
