"""Sensors for CARTO SQL jobs started elsewhere."""
