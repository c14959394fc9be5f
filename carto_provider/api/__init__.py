"""CARTO's HTTP APIs as data and small clients: paths, request bodies and replies. No Airflow here."""
