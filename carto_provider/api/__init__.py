"""CARTO's HTTP APIs without Airflow: the one transport, the retry rules, what answers mean, the job
model, and one module per CARTO API (``sql``, ``imports``, ``workflows``, ...). No module here imports
Airflow, :mod:`carto_provider.auth` or the hooks; importing the package loads nothing."""
