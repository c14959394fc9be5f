"""The errors of :mod:`carto_provider.auth`, kept importable from here: they live in
:mod:`carto_provider.errors`, the one errors module of the package."""

from carto_provider import errors as _errors
from carto_provider.errors import *  # noqa: F403  (the same classes under their old import path)

__all__ = list(_errors.__all__)
