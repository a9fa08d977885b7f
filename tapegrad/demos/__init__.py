"""Demos run by ``tapegrad demo NAME``: one module per demo with ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``."""
