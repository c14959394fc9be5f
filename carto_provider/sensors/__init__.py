"""Sensors for CARTO SQL jobs and imports started elsewhere."""
