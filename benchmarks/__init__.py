"""Benchmarks of airflow-provider-carto against ``carto-auth`` 0.2.0 (run them with ``make bench``).

Nothing here is imported by ``carto_provider``; the harness (:mod:`benchmarks.run`) starts the CARTO
emulator and real task processes, and writes ``benchmarks/RESULTS.md``.
"""
