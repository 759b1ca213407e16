"""The metrics and readiness server of a process without a web server (bridges, Celery workers)."""

from __future__ import annotations

from .readiness import PROCESS


def serve_metrics(port: int) -> None:
    """For processes without a web server (bridges, Celery workers): their metrics on :port/metrics,
    summed over every process writing into this host's PROMETHEUS_MULTIPROC_DIR, and :port/readyz, the
    process's readiness (readiness.py): what its health check asks."""
    import json
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess
    from prometheus_client.exposition import ThreadingWSGIServer

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict, start_response):  # noqa: ANN202
        if environ.get("PATH_INFO") != "/readyz":
            return metrics_app(environ, start_response)
        status, body = PROCESS.report()
        start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                       [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = make_server("0.0.0.0", port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
