"""Tests of carto_provider.triggers."""
