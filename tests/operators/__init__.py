"""Tests of carto_provider.operators."""
