"""Operations: liveness, readiness, Prometheus metrics, request logs with a request id."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import g
from flask import jsonify
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from sqlalchemy import text

from idp.store.ephemeral import EphemeralStoreError
from idp.web import context

bp = Blueprint("ops", __name__)
access_log = logging.getLogger("idp.access")

REQUEST_LATENCY = Histogram(
    "idp_request_duration_seconds",
    "Request latency per endpoint",
    ["endpoint", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    deps = context.deps()
    checks: dict[str, str] = {}
    try:
        with deps.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # any driver error means not ready
        checks["database"] = "unavailable"
    if deps.store.is_shared:
        try:
            deps.store.ping()
            checks["redis"] = "ok"
        except EphemeralStoreError:
            checks["redis"] = "unavailable"
    # With the database as fallback, an instance without Redis still signs people in.
    optional = {"redis"} if deps.store.has_durable_fallback else set()
    ready = all(value == "ok" for key, value in checks.items() if key not in optional)
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    metrics_dir = context.deps().settings.metrics_dir
    if metrics_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


_EXTRA_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "client_ip",
    "seq",
    "chain_hash",
    "count",
)


# ``json.dumps(entry, ensure_ascii=False)`` without making an encoder per line (one per
# request: the access log).
_ENCODE_LINE = json.JSONEncoder(ensure_ascii=False).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = record.__dict__  # where ``extra`` puts them (LogRecord has none of these)
        for key in _EXTRA_FIELDS:
            if key in fields:
                entry[key] = fields[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODE_LINE(entry)


def configure_logging(level: str) -> None:
    """JSON lines on stderr, unless the host (a test runner, a server) set up logging."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        context.request_id()

    @app.after_request
    def _observe(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.endpoint or "unmatched"
        REQUEST_LATENCY.labels(endpoint, request.method, str(response.status_code)).observe(elapsed)
        # The path only, never the query: it may hold codes, tokens or personal data.
        access_log.info(
            "idp.http.request",
            extra={
                "request_id": context.request_id(),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "client_ip": request.remote_addr,
            },
        )
        return response
