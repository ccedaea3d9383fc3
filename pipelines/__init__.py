"""Orchestration: Prefect flows and deployments that run the DVC stages (see dvc.yaml)."""
