"""Test helpers: the CARTO emulator and its pytest fixtures (installed with the ``emulator`` extra)."""

from carto_provider.testing.emulator import CartoEmulator

__all__ = ["CartoEmulator"]
