"""DAG runs of the example DAGs, the CLI and the deploy files."""
