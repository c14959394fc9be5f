"""The CARTO Data Warehouse: a BigQuery client whose credentials refresh themselves (:mod:`.client`)."""
