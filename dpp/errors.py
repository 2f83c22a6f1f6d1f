"""Typed errors of the project, so callers (and the CLI) can tell our refusals from bugs."""

from __future__ import annotations


class DPPError(ValueError):
    """Base class: a value the project refuses, with a message naming it and what was expected."""


class FormatError(DPPError):
    """A packed matrix or its file is malformed (bad shape, index, value range, schema version)."""


class SimulationError(DPPError):
    """A hardware build or simulation failed, timed out, or disagreed with the reference."""
