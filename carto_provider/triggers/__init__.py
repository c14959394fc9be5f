"""Deferrable triggers: wait for CARTO SQL jobs and imports in the triggerer, not in a worker slot."""
