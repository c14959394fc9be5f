"""Operators for CARTO SQL jobs and queries, imports and Workflows."""
