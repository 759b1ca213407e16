"""A health check's probe, without Django (fast, in every image): `python -m apps.monitoring.probe URL`.

URL may be a path (`/readyz`), read from this process's METRICS_PORT on 127.0.0.1. Prints the answer (the
readiness JSON names what is down) and exits 0 on 200, else 1."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 8.0) -> tuple[int, str]:
    if url.startswith("/"):
        url = f"http://127.0.0.1:{os.environ['METRICS_PORT']}{url}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, f"no answer from {url}: {error}"


if __name__ == "__main__":
    status, text = probe(sys.argv[1] if len(sys.argv) > 1 else "/readyz")
    print(text)
    sys.exit(0 if status == 200 else 1)
