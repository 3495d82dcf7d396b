"""Option values the commands share, parsed once, with typer's error naming the option."""

from __future__ import annotations

import typer

from shared.runtime.plan import parse_scale
from shared.settings import SERVICES


def scale_option(scale: str | None) -> dict[str, int]:
    """``--scale order=2,...`` (instances per service), as ``oms run`` takes it."""
    try:
        return parse_scale(scale, SERVICES)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scale") from None
