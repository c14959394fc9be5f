"""Tests of carto_provider.auth."""
