"""Hostile CARTO servers over real HTTP: every answer read bounded, within a deadline, sanitised."""
