"""Tests of the carto connection type: form, settings, sources, the Test button."""
