"""CARTO's APIs without Airflow: what every call reads and how (see :mod:`.bounded`)."""
