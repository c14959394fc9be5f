"""The Airflow-free CARTO API layer."""
