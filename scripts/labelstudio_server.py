"""Label Studio for `make annotate` and `make export-annotations`, run by .venv-labelstudio's python.

Standalone on purpose: it imports only the standard library and label-studio-sdk, which live in
Label Studio's own venv (constraints-labelstudio.txt) and never in the pipeline's .venv. The
pipeline's side of the exchange is files: `make suggest` writes TASKS/label_config.xml and
TASKS/tasks.json; `make import-annotations` reads the JSON export this script writes.

    serve  --tasks DIR [--port 8080] [--data-dir .labelstudio]
        start Label Studio on 127.0.0.1, create (or reuse) the project of DIR, import its tasks,
        print the URL and the login, and keep serving until Ctrl-C.
    export --tasks DIR --output FILE [--port 8080] [--data-dir .labelstudio] [--overwrite]
        write the project's Label Studio JSON export (annotated tasks) to FILE, starting a
        server for the time of the export if none is running on the port.

The login (created on the first start of a data dir): LS_USERNAME (default annotator@localhost),
LS_PASSWORD (default stance-annotate). API calls use a token generated on that first start and
kept in DATA_DIR/api-token.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

HOST = "127.0.0.1"
DEFAULT_USERNAME = "annotator@localhost"
DEFAULT_PASSWORD = "stance-annotate"
START_TIMEOUT = 300  # seconds for a first start (database migrations) to answer /health
REQUEST_TIMEOUT = 60
# Label Studio reads each setting from LABEL_STUDIO_<NAME>, HEARTEX_<NAME> or the bare <NAME>: a shell's
# own HOST, PORT or USERNAME would leak in. These are cleared, then set from our arguments only.
CLEARED = ("HOST", "PORT", "USERNAME", "PASSWORD", "USER_TOKEN", "BASE_DATA_DIR", "DATABASE_NAME")
QUIET = {  # no calls outside the machine: no version check, no analytics, no error reporting
    "LATEST_VERSION_CHECK": "false",
    "COLLECT_ANALYTICS": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
}


class StudioError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


def login() -> tuple[str, str]:
    return os.environ.get("LS_USERNAME") or DEFAULT_USERNAME, os.environ.get("LS_PASSWORD") or DEFAULT_PASSWORD


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def read_tasks_folder(folder: Path) -> tuple[str, list[dict]]:
    """The label config and the tasks `make suggest` wrote, checked enough to fail early and clearly."""
    config_path, tasks_path = folder / "label_config.xml", folder / "tasks.json"
    missing = [p.name for p in (config_path, tasks_path) if not p.is_file()]
    if missing:
        raise StudioError(
            f"{folder}: expected label_config.xml and tasks.json (make suggest writes both); "
            f"missing {', '.join(missing)}"
        )
    try:
        tasks = json.loads(tasks_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StudioError(f"{tasks_path}: not JSON ({exc})") from exc
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "unit_id" in t.get("data", {}) for t in tasks):
        raise StudioError(f"{tasks_path}: expected a JSON list of tasks each with data.unit_id, found something else")
    return config_path.read_text(encoding="utf-8"), tasks


def first_start(data_dir: Path) -> bool:
    """Whether Label Studio has not yet started on this data dir (no database yet)."""
    return not (data_dir / "label_studio.sqlite3").exists()


def api_token(data_dir: Path) -> tuple[str, bool]:
    """The API token of this data dir, and whether this is its first start."""
    token_file = data_dir / "api-token"
    first = first_start(data_dir)
    if token_file.is_file():
        return token_file.read_text().strip(), first
    if not first:
        raise StudioError(
            f"{data_dir} holds a Label Studio database but no api-token file: delete {data_dir} to start afresh"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(20)
    tmp = token_file.with_suffix(".tmp")
    tmp.write_text(token + "\n")
    tmp.chmod(0o600)
    tmp.replace(token_file)
    return token, first


def server_env(data_dir: Path, token: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.removeprefix("LABEL_STUDIO_").removeprefix("HEARTEX_") not in CLEARED
    }
    username, password = login()
    env.update(QUIET, LABEL_STUDIO_USERNAME=username, LABEL_STUDIO_PASSWORD=password)
    env["LABEL_STUDIO_BASE_DATA_DIR"] = str(data_dir.resolve())
    if token:
        env["LABEL_STUDIO_USER_TOKEN"] = token
    return env


def wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StudioError(f"Label Studio exited with status {process.returncode} while starting; see {log}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise StudioError(f"Label Studio did not answer on {HOST}:{port} within {START_TIMEOUT} s; see {log}")


def stop(process: subprocess.Popen) -> None:
    """Ctrl-C, then SIGTERM, then SIGKILL (a server started in the background ignores SIGINT)."""
    for send in (lambda: process.send_signal(signal.SIGINT), process.terminate, process.kill):
        if process.poll() is not None:
            return
        send()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


@contextlib.contextmanager
def running_server(data_dir: Path, port: int) -> Iterator[str]:
    """Start Label Studio on 127.0.0.1:port with data_dir; yield the API token; stop it on the way out."""
    if port_in_use(port):
        raise StudioError(
            f"port {port} on {HOST} is in use (Label Studio already running?): pick another with LS_PORT="
        )
    token, first = api_token(data_dir)
    log = data_dir / "server.log"
    print(f"starting Label Studio on http://{HOST}:{port} (data: {data_dir}, log: {log})", flush=True)
    command = [str(Path(sys.executable).with_name("label-studio")), "start", "--no-browser"]
    command += ["--internal-host", HOST, "--port", str(port), "--data-dir", str(data_dir.resolve())]
    if first:  # the organization's flag is set once, when the first start creates it
        command.append("--enable-legacy-api-token")
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=server_env(data_dir, token if first else None), stdout=out, stderr=out)
    try:
        wait_healthy(port, process, log)
        yield token
    finally:
        stop(process)


def client(port: int, token: str) -> LabelStudio:
    return LabelStudio(base_url=f"http://{HOST}:{port}", api_key=token, timeout=REQUEST_TIMEOUT)


def project_marker(folder: Path) -> str:
    return f"tasks folder: {folder.resolve()}"


def find_project(ls, folder: Path):
    """The project made for this tasks folder (its description names the folder), or None."""
    found = [p for p in ls.projects.list(page_size=100) if (p.description or "") == project_marker(folder)]
    if len(found) > 1:
        print(f"warning: {len(found)} projects for {folder}; using the first, id {found[0].id}", file=sys.stderr)
    return found[0] if found else None


def task_unit_ids(ls, project_id: int) -> set[str]:
    return {(t.data or {}).get("unit_id") for t in ls.tasks.list(project=project_id, fields="all", page_size=100)}


def open_project(ls, folder: Path, label_config: str, tasks: list[dict]):
    """Create the folder's project and import its tasks, or reuse it and import only the new tasks."""
    project = find_project(ls, folder)
    if project is None:
        title = f"stance: {folder.resolve().name}"[:50]
        project = ls.projects.create(title=title, description=project_marker(folder), label_config=label_config)
        print(f"created project {project.id} '{project.title}'")
        known: set[str] = set()
    else:
        print(f"reusing project {project.id} '{project.title}' (made earlier for {folder}): no duplicate")
        if (project.label_config or "").strip() != label_config.strip():
            ls.projects.update(id=project.id, label_config=label_config)
            print("  label config updated from label_config.xml")
        known = task_unit_ids(ls, project.id)
    new = [t for t in tasks if t["data"]["unit_id"] not in known]
    if new:
        ls.projects.import_tasks(id=project.id, request=new, return_task_ids=False)
    print(f"  {len(new)} task(s) imported, {len(tasks) - len(new)} already there")
    return project


def serve(folder: Path, port: int, data_dir: Path) -> None:
    label_config, tasks = read_tasks_folder(folder)
    first = first_start(data_dir)
    with running_server(data_dir, port) as token:
        ls = client(port, token)
        project = open_project(ls, folder, label_config, tasks)
        print(f"\nLabel Studio: http://{HOST}:{port}/projects/{project.id}/data")
        # The stored account, not this shell's LS_USERNAME: only the first start of a data dir sets it.
        username = ls.users.whoami().email or login()[0]
        password = login()[1] if first else f"the one set on the first start of {data_dir} (default {DEFAULT_PASSWORD})"
        print(f"login: {username} / {password}")
        print("Ctrl-C stops it; `make export-annotations` writes the annotations without the UI.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    print("Label Studio stopped")


def export(folder: Path, output: Path, port: int, data_dir: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise StudioError(f"{output} exists: pass OVERWRITE=1 (--overwrite) to replace it")
    with contextlib.ExitStack() as stack:
        if port_in_use(port):
            if not (data_dir / "api-token").is_file():
                raise StudioError(f"{data_dir}/api-token not found: is {data_dir} the data dir of `make annotate`?")
            token = (data_dir / "api-token").read_text().strip()
        else:
            token = stack.enter_context(running_server(data_dir, port))
        ls = client(port, token)
        project = find_project(ls, folder)
        if project is None:
            raise StudioError(f"no Label Studio project for {folder} in {data_dir}: run `make annotate TASKS={folder}`")
        data = b"".join(ls.projects.exports.download_sync(project.id, export_type="JSON"))
    tasks = json.loads(data)
    n_annotations = sum(len(t.get("annotations", [])) for t in tasks)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    print(f"wrote {output}: {len(tasks)} annotated task(s), {n_annotations} annotation(s), project {project.id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "export"):
        p = sub.add_parser(name)
        p.add_argument("--tasks", type=Path, required=True, help="the folder make suggest wrote")
        p.add_argument("--port", type=int, default=8080)
        p.add_argument("--data-dir", type=Path, default=Path(".labelstudio"))
        if name == "export":
            p.add_argument("--output", type=Path, required=True)
            p.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or `kill` stops the server, even when started with `&`
        signal.signal(sig, signal.default_int_handler)
    try:
        if args.command == "serve":
            serve(args.tasks, args.port, args.data_dir)
        else:
            export(args.tasks, args.output, args.port, args.data_dir, args.overwrite)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:  # e.g. 401: another server (another data dir) on the port
        print(f"error: Label Studio answered {exc.status_code}: {str(exc.body)[:300]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
