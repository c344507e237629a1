"""The annotation commands of the command line (``suggest``); see cli.py."""

from __future__ import annotations

import argparse
import sys

from pipeline.annotate.select import DEFAULT_DIVERSITY, DEFAULT_STRATEGY, STRATEGIES
from pipeline.cli_inference import DEFAULT_MODEL, overwrite_option, runtime_option


def cmd_suggest(args: argparse.Namespace) -> int:
    from pipeline.annotate.suggest import suggest

    models = [m.strip() for m in args.model.split(",") if m.strip()]
    result = suggest(
        args.input,
        args.output,
        models,
        n=args.n,
        strategy=args.strategy,
        diversity=args.diversity,
        seed=args.seed,
        runtime=args.runtime,
        overwrite=args.overwrite,
        task=args.task,
        exclude=args.exclude,
        encoding_errors=args.encoding_errors,
    )
    st = result.stats
    print(
        f"{st.documents} documents, {st.sentences} sentences, {st.sentences_with_actors} with an actor "
        f"({st.pairs} pairs scored): picked {len(result.picked)} by {args.strategy} -> {result.output}/"
    )
    if len(result.picked) < args.n:
        print(f"only {len(result.picked)} sentences name an actor of the model's task (N={args.n})", file=sys.stderr)
    return 0


def annotate_commands(add) -> None:
    p = add("suggest", cmd_suggest, "pick the sentences of new articles most worth annotating (Label Studio, doccano)")
    p.add_argument("--input", required=True, help="a folder of .txt files, a .jsonl or a .csv, as for predict")
    p.add_argument("--output", required=True, help="folder to write (tasks.json, label_config.xml, doccano.jsonl, ...)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="model folder, runs:/ or models:/ URI; several, comma-separated, form a committee "
        f"(default {DEFAULT_MODEL})",
    )
    p.add_argument("-n", "--n", type=int, default=100, help="sentences to pick (default 100)")
    p.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY, help=f"default {DEFAULT_STRATEGY}")
    p.add_argument(
        "--diversity",
        type=float,
        default=DEFAULT_DIVERSITY,
        help=f"weight of dissimilarity to the sentences already picked, in [0, 1) (default {DEFAULT_DIVERSITY})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random strategy")
    p.add_argument(
        "--task", default=None, help="a task file (actors, targets) instead of the model's own, as for predict"
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="CORPUS",
        help="a corpus JSONL whose units are already annotated: never suggested again (repeatable)",
    )
    p.add_argument("--encoding-errors", choices=["strict", "replace"], default="strict", help="as for predict")
    runtime_option(p)
    overwrite_option(p)
