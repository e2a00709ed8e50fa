"""Reach the live views of running workers (``playlog royalties``, ``replay --diff-live``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from core.errors import PlaylogError
from core.settings import Settings, load
from processors.statement import StatementLine, parse_csv

DEFAULT_WORKER_URL = "http://127.0.0.1:6066"


def worker_urls(settings: Settings | None = None) -> list[str]:
    """Worker web endpoints: ``PLAYLOG_WORKER_URLS`` (comma separated) when set, else those that
    ``playlog up`` recorded under ``PLAYLOG_DATA_DIR``, else the first worker's default port."""
    from devstack.stack import recorded_worker_urls

    settings = settings or load()
    if settings.worker_urls:
        return list(settings.worker_urls)
    return recorded_worker_urls(settings.data_dir) or [DEFAULT_WORKER_URL]


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback/configured URL)
        return resp.read()


def owner_url(settings: Settings | None = None, timeout: float = 5.0) -> str:
    """The worker that holds the live royalty view: each known worker is asked in turn, and one
    that is down or does not hold the view is passed over."""
    errors = []
    for url in worker_urls(settings):
        try:
            status = json.loads(_get(f"{url}/status", timeout))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        if status.get("owner"):
            return url
        errors.append(f"{url}: does not own the royalty view")
    raise PlaylogError(
        "no running worker holds the live royalty view (start one with 'playlog worker'; "
        f"PLAYLOG_WORKER_URLS lists where to look): {'; '.join(errors)}"
    )


def fetch_statement_csv(settings: Settings | None, period: str, timeout: float = 60.0) -> str:
    url = owner_url(settings)
    try:
        return _get(f"{url}/royalties/{period}", timeout).decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise PlaylogError(f"worker answered {exc.code} for period {period}: {exc.read()[:200]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PlaylogError(f"cannot reach the worker at {url}: {exc}") from None


def fetch_statement(settings: Settings | None, period: str) -> list[StatementLine]:
    return parse_csv(fetch_statement_csv(settings, period))
