"""Typed errors of the project, so callers (and the CLI) can tell our refusals from bugs.

The CLI prints a :class:`DPPError` as one line and exits 2; any other exception is a bug and keeps its
traceback. :class:`DPPError` derives from ``ValueError`` (and :class:`ArgumentTypeError` also from
``TypeError``) so library callers that catch the built-in types keep working.
"""

from __future__ import annotations


class DPPError(ValueError):
    """Base class: a value the project refuses, with a message naming it and what was expected."""


class ArgumentTypeError(DPPError, TypeError):
    """A value of the wrong type (e.g. a float where an integer count is expected)."""


class FormatError(DPPError):
    """A packed matrix or its file is malformed (bad shape, index, value range, schema version)."""


class SimulationError(DPPError):
    """A hardware build or simulation failed, timed out, or disagreed with the reference."""


class PathError(DPPError):
    """A path the user gave cannot be read or written (missing, a file where a folder is expected, read-only)."""


class GraphError(DPPError):
    """A model the graph front end cannot take: tracing failed, or a node, op or module is not supported."""
