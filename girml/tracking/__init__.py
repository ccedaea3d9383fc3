"""Experiment tracking. :mod:`girml.tracking.mlflow` is the only module that imports MLflow."""
