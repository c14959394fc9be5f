"""Airflow hooks for CARTO."""
