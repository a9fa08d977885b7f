"""Shared by the model-zoo constructors: loading pretrained parameters."""

from __future__ import annotations

from typing import Any

from ..model_store import get_model_file


def load_pretrained(net: Any, name: str, root: str | None, ctx: Any) -> Any:
    """Load MXNet's pretrained parameters of model ``name`` from ``root`` into ``net``."""
    net.load_parameters(get_model_file(name, root=root), ctx=ctx)
    return net
