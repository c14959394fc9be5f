"""Tests of the CARTO emulator (carto_provider.testing)."""
