"""Tests of carto_provider.hooks."""
