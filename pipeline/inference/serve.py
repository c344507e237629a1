"""REST serving: MLflow's own scoring server (the app `mlflow models serve` runs) with a row limit.

MLflow's app answers ``/invocations``, ``/ping``, ``/health`` and ``/version``, parses the
request formats (``dataframe_split``, ``dataframe_records``, ``inputs``, ``instances``, CSV)
and stops waiting after its timeout with HTTP 504, but it cannot stop the computation, which
runs on for nothing. Added here, because MLflow has no such option: a request over
``max_rows`` rows is refused at once with HTTP 413 naming the limit, so every accepted request
is answered well inside the timeout (the limit is sized from measured rows per second:
docs/inference.md). Bad rows (null or non-string ``text``, ``actor``, ``target``, an unknown
actor or target) get HTTP 400 from the model, naming the row and the field.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

DEFAULT_MAX_ROWS = 2000
DEFAULT_TIMEOUT = 60


def count_rows(body: bytes, content_type: str | None) -> int | None:
    """Rows in an ``/invocations`` body, or None where it cannot be told (MLflow then answers 400)."""
    if content_type and "csv" in content_type:
        return max(body.count(b"\n") - 1 + (not body.endswith(b"\n")), 0)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    for key in ("dataframe_records", "instances", "inputs"):
        value = payload.get(key)
        if isinstance(value, list):
            return len(value)
        if isinstance(value, dict):  # columns -> lists
            lengths = [len(v) for v in value.values() if isinstance(v, list)]
            return max(lengths, default=1)
    split = payload.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("data"), list):
        return len(split["data"])
    return None


def build_app(model_uri: str, max_rows: int, timeout: int, workdir: Path, runtime: str | None = None):
    """MLflow's scoring app for ``model_uri`` (folder, ``runs:/`` or ``models:/``), with the row limit;
    a model folder is wrapped as an MLflow model in ``workdir``. ``runtime``: torch, onnx or
    onnx-int8 instead of the model's own (an ONNX file it lacks is exported on load)."""
    os.environ["MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"] = str(timeout)  # read by scoring_server.init
    import mlflow.pyfunc
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from mlflow.pyfunc import scoring_server

    from pipeline.inference.spark import mlflow_model_uri

    uri, _ = mlflow_model_uri(model_uri, workdir)
    app = scoring_server.init(mlflow.pyfunc.load_model(uri, model_config={"runtime": runtime} if runtime else None))

    @app.middleware("http")  # added last, so it runs first: an oversized request is never parsed twice
    async def row_limit(request: Request, call_next):
        if request.method == "POST" and request.url.path == "/invocations":
            rows = count_rows(await request.body(), request.headers.get("content-type"))
            if rows is not None and rows > max_rows:
                message = (
                    f"{rows} rows in one request; the limit is {max_rows} rows per request "
                    f"(about {timeout} s of work at most): split the request, or start the server "
                    "with a higher --max-rows (make serve SERVE_MAX_ROWS=) and --timeout"
                )
                return JSONResponse({"error_code": "REQUEST_TOO_LARGE", "message": message}, status_code=413)
        return await call_next(request)

    return app


def serve(model_uri: str, host: str, port: int, max_rows: int, timeout: int, runtime: str | None = None) -> None:
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="stance-serve-") as workdir:
        app = build_app(model_uri, max_rows, timeout, Path(workdir), runtime)
        on = f" on {runtime}" if runtime else ""
        print(
            f"serving {model_uri}{on} on http://{host}:{port}/invocations: at most {max_rows} rows a request, "
            f"timeout {timeout} s",
            flush=True,
        )
        uvicorn.run(app, host=host, port=port, log_level="warning")
