"""The operator commands' HTTP calls to a running service.

Where the service is: ``OMS_<SERVICE>_URL``, else the instances the running ``oms run`` recorded
(``--free-ports``, ``--scale``), else ``OMS_<SERVICE>_HTTP_PORT`` or the default port
(``shared/runtime/endpoints.py``). With several instances the first that accepts the connection
answers: one that is down (crashed, stopped) is skipped. Only a refused connection moves on to the
next instance, so a request is never sent twice (a payment is not posted to two instances).
"""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

from shared.runtime.endpoints import service_urls


def send(service: str, method: str, path: str, api_key: str, *, console: Console,
         timeout: float | httpx.Timeout = 30, headers: dict[str, str] | None = None,
         **kwargs: Any) -> httpx.Response:
    """The answer of the first instance of ``service`` that takes the connection, whatever its
    status; exit 2 naming every address tried when none does."""
    urls = service_urls(service)
    for base in urls:
        try:
            return httpx.request(method, base.rstrip("/") + path,
                                 headers={"X-API-Key": api_key, **(headers or {})},
                                 timeout=timeout, **kwargs)
        except httpx.ConnectError:
            continue
    console.print(f"[red]cannot reach the {service} service at {', '.join(urls)}: is `oms run` "
                  f"running? (or set OMS_{service.upper()}_URL)[/red]")
    raise typer.Exit(2)


def checked(response: httpx.Response, console: Console) -> httpx.Response:
    """``response`` when it succeeded; else its error printed (the service's ``detail`` when it
    gives one) and exit 1."""
    if response.status_code < 400:
        return response
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if response.status_code == 404 and isinstance(detail, str):
        console.print(f"[yellow]{detail}[/yellow]")
    else:
        console.print(f"[red]{response.status_code}[/red] {response.text}", highlight=False)
    raise typer.Exit(1)


def base_url(service: str) -> str:
    """Where the first instance of ``service`` is (what ``send`` tries first)."""
    return service_urls(service)[0].rstrip("/")
