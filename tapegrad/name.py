"""``mx.name``: automatic naming of blocks and parameters (``NameManager``, ``Prefix``)."""

from .gluon.block import NameManager  # noqa: F401

__all__ = ["NameManager"]
