"""MLflow wiring: tracking store, experiment per corpus, run tags, logged pyfunc model, registry.

Everything that talks to MLflow lives here, so train/evaluate/cv stay readable.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import process
from pipeline.config import Config, TaskConfig
from pipeline.models.registry import model_source

DEFAULT_DB = "mlflow.db"
# MLflow 3 opens an experiment without this tag on its GenAI (traces) overview; with it, on the runs table.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
# A saved view of the runs table with the headline metrics as columns (MLflow's own "share view"
# state, an experiment tag): `make ui` prints the link that opens it.
VIEW_KEY = "stance-metrics"
VIEW_COLUMNS = ["test/f_avg", "test/macro_f1", "cv/f_avg/mean", "cv/pooled/f_avg", "dev/f_avg"]


def shared_view_tag() -> tuple[str, str]:
    """The experiment tag holding the runs-table view: MLflow's UI reads "deflate;" + base64(zlib(JSON))."""
    import base64
    import json
    import zlib

    columns = ["attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`"]
    columns += [f"metrics.`{m}`" for m in VIEW_COLUMNS]
    state = json.dumps({"selectedColumns": columns}).encode()
    return f"mlflow.sharedViewState.{VIEW_KEY}", "deflate;" + base64.b64encode(zlib.compress(state)).decode()


def tracking_uri(config: Config | None = None) -> str:
    """Config value, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory."""
    if config is not None and config.tracking.tracking_uri:
        return config.tracking.tracking_uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def experiment_name(config: Config) -> str:
    return config.tracking.experiment or config.data.corpus


def registered_model_name(config: Config) -> str:
    return config.tracking.registered_model or f"stance-{config.data.corpus}"


class TrackingError(RuntimeError):
    """The tracking server cannot be reached."""


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail fast on an HTTP tracking server that does not answer its health check.

    MLflow's client retries for minutes before giving up; one short request up front
    says what is wrong before any training time is spent.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            if resp.status != 200:
                raise TrackingError(f"MLflow tracking server {uri} answered {resp.status} to its health check")
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingError(
            f"MLflow tracking server {uri} is not reachable ({getattr(exc, 'reason', exc)}); "
            "start it, or unset MLFLOW_TRACKING_URI to use sqlite:///mlflow.db"
        ) from None


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun / accelerate launch: they train, but log nothing."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(config: Config) -> str:
    """Point MLflow at the store and select (or create) the corpus's experiment.

    Opening the store also tidies what a killed process (SIGKILL, a power cut) left: its
    runs still RUNNING are marked FAILED, and its scratch folders are removed.
    """
    import mlflow

    uri = tracking_uri(config)
    check_server(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(uri)
    name = experiment_name(config)
    experiment = mlflow.get_experiment_by_name(name)
    wanted = EXPERIMENT_TAGS | dict([shared_view_tag()])
    if experiment is None:
        location = None
        if uri.startswith("sqlite:"):  # keep artefacts beside the database, not wherever the cwd is
            location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts" / name).resolve().as_uri()
        mlflow.create_experiment(name, artifact_location=location, tags=wanted)
    mlflow.set_experiment(name)
    missing = {k: v for k, v in wanted.items() if experiment is not None and k not in experiment.tags}
    if missing:  # an experiment made before the tags existed
        mlflow.set_experiment_tags(missing)
    reap_orphaned_runs()
    process.clean_scratch()
    return uri


def ui_url(config: Config, base: str = "http://127.0.0.1:5000") -> str:
    """The MLflow UI page of the config's experiment (after ``setup``): the runs table (not MLflow
    3's GenAI overview, which ``workflowType`` switches off) with the headline metrics as columns."""
    import mlflow

    experiment_id = mlflow.get_experiment_by_name(experiment_name(config)).experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"


def reap_orphaned_runs() -> list[str]:
    """Mark FAILED the RUNNING runs whose process (host and pid tags) is gone; return their ids.

    Only this host's processes can be checked; runs of other hosts, and runs without the
    tags (logged by other tools), are left alone.
    """
    import mlflow

    client = mlflow.MlflowClient()
    running = mlflow.search_runs(
        search_all_experiments=True, filter_string="attributes.status = 'RUNNING'", output_format="list"
    )
    reaped = []
    for run in running:
        tags = run.data.tags
        if "pid" not in tags or process.is_alive(tags.get("host"), tags.get("pid"), tags.get("pid_start")):
            continue
        client.set_tag(
            run.info.run_id, "error", f"process {tags['pid']} on {tags['host']} ended without closing the run (killed)"
        )
        client.set_terminated(run.info.run_id, status="FAILED")
        reaped.append(run.info.run_id)
    if reaped:
        print(f"marked FAILED {len(reaped)} run(s) left RUNNING by a killed process: {', '.join(reaped)}", flush=True)
    return reaped


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def split_digest(dataset) -> str:
    """Digest of a split's example ids and labels: the same digest means the same test set."""
    h = hashlib.sha256()
    for i, lab in zip(dataset["id"], dataset["label"]):
        h.update(f"{i}\t{lab}\n".encode())
    return h.hexdigest()[:12]


def run_tags(config: Config, kind: str) -> dict[str, str]:
    return {
        "kind": kind,
        "backend": config.model.backend,
        "base_model": model_source(config),
        "git_commit": git_commit(),
        "data_digest": file_digest(config.data.annotations),
        "corpus": config.data.corpus,
        "config_name": config.name,
    }


@contextmanager
def run(run_name: str, tags: dict[str, str] | None = None, nested: bool = False) -> Iterator[Any]:
    """``mlflow.start_run`` that records this process (host, pid) and ends the run with its reason
    on any error: FAILED, or KILLED for Ctrl-C and stop signals (``failing_run_marked``)."""
    import mlflow

    tags = {**(tags or {}), **process.identity()}
    with mlflow.start_run(run_name=run_name, nested=nested, tags=tags) as active, failing_run_marked():
        yield active


def log_params(config: Config) -> None:
    import mlflow

    params = {k: ("null" if v is None else v) for k, v in config.flat().items()}
    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})


def dataset_frame(dataset, task: TaskConfig) -> pd.DataFrame:
    df = dataset.to_pandas()
    df["label"] = task.label_names(df["label"])
    return df


def log_datasets(dd, config: Config) -> None:
    """Each split as an MLflow dataset input (source, digest, schema, counts)."""
    import mlflow

    for split, ds in dd.items():
        df = dataset_frame(ds, config.task)
        with warnings.catch_warnings():  # MLflow registers two equivalent local sources
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            data = mlflow.data.from_pandas(
                df,
                source=str(Path(config.data.annotations).resolve()),
                name=f"{config.data.corpus}-{split}",
                targets="label",
            )
        mlflow.log_input(data, context=split)


def epoch_logger(prefix: str = ""):
    """An epoch hook (``fit(..., on_epoch=...)``) logging per-epoch curves to the active MLflow run.

    Keys: ``curve/train_loss``, ``curve/dev_loss``, ``curve/dev_f_avg``, ``curve/dev_macro_f1``
    (step = epoch), apart from the final ``dev/*`` metrics of the kept model.
    """

    def log_epoch(epoch: int, figures: dict[str, float]) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        out = {f"{prefix}curve/{k}": v for k, v in figures.items()}
        mlflow.log_metrics(out, step=epoch)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in figures.items())
        print(f"epoch {epoch}: {shown}", flush=True)

    return log_epoch


# ------------------------------------------------------------------ pyfunc model


def log_model(model, model_dir: Path, config: Config, example_rows: list[dict]) -> Any:
    """Log the saved model folder as an MLflow pyfunc model (signature, input example), registered."""
    import mlflow
    from mlflow.models import infer_signature

    import pipeline
    from pipeline.models import pyfunc
    from pipeline.models.pyfunc import predictions_frame

    package = Path(pipeline.__file__).parent
    example = pd.DataFrame(example_rows)[["text", "actor", "target"]]
    output = predictions_frame(model.predict_proba(example), model.task)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(pyfunc.__file__).with_name("mlflow_model.py")),
        artifacts={"model": str(model_dir)},
        code_paths=[str(package)],
        model_config=pyfunc.MODEL_CONFIG,
        signature=infer_signature(example, output),
        input_example=example,
        registered_model_name=registered_model_name(config) if config.tracking.register_model else None,
    )


def run_id_of_model_uri(uri: str) -> str | None:
    """The run that produced a ``models:/`` or ``runs:/`` model, if any."""
    import mlflow

    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/")[0]
    if uri.startswith("models:/"):
        client = mlflow.MlflowClient()
        ref = uri.removeprefix("models:/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        name, _, version = ref.partition("/")
        return client.get_model_version(name, version).run_id
    return None


@contextmanager
def failing_run_marked() -> Iterator[None]:
    """End the active run with the reason if the block raises: KILLED with ``error`` = "stopped by
    SIGTERM" (or SIGINT, SIGHUP) for a stop signal, else FAILED with the error text and traceback."""
    import mlflow

    try:
        yield
    except BaseException as exc:
        if mlflow.active_run() is not None:
            if isinstance(exc, KeyboardInterrupt):
                mlflow.set_tag("error", f"stopped by {process.signal_name(exc)}")
                mlflow.end_run(status="KILLED")
            else:
                mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
                mlflow.log_text(traceback.format_exc(), "error.txt")
                mlflow.end_run(status="FAILED")
        raise


def update_champion(config: Config, run_id: str, f_avg: float, test_digest: str) -> str:
    """Tag the run's model version with its test F_avg; move the champion alias if it is better.

    The alias moves only when the current champion was scored on the same test split
    (same digest) and the new F_avg is strictly higher, or when there is no champion yet.
    """
    import mlflow

    client = mlflow.MlflowClient()
    name = registered_model_name(config)
    versions = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if not versions:
        return f"no registered version of {name} for run {run_id}: champion unchanged"
    version = max(versions, key=lambda v: int(v.version))
    client.set_model_version_tag(name, version.version, "test_f_avg", f"{f_avg:.6f}")
    client.set_model_version_tag(name, version.version, "test_split_digest", test_digest)
    alias = config.tracking.champion_alias
    try:
        champion = client.get_model_version_by_alias(name, alias)
    except Exception:  # no such alias yet
        champion = None
    if champion is None:
        client.set_registered_model_alias(name, alias, version.version)
        return f"{name} version {version.version} is the first {alias} (test F_avg {f_avg:.4f})"
    if champion.version == version.version:
        return f"{name} version {version.version} is already the {alias}"
    champ_digest = champion.tags.get("test_split_digest")
    champ_score = float(champion.tags.get("test_f_avg", "nan"))
    if champ_digest != test_digest:
        return (
            f"{alias} (version {champion.version}) was scored on another test split "
            f"({champ_digest} vs {test_digest}): alias not moved"
        )
    if f_avg > champ_score:
        client.set_registered_model_alias(name, alias, version.version)
        return f"{alias} moved to version {version.version}: test F_avg {f_avg:.4f} > {champ_score:.4f}"
    return f"{alias} stays version {champion.version}: test F_avg {f_avg:.4f} <= {champ_score:.4f}"
