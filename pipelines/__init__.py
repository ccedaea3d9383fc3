"""Orchestration: Prefect flows and deployments that run the DVC stages (see dvc.yaml).

Importing the package turns telemetry off for this process and what it starts (a temporary
Prefect server, DVC, MLflow), before Prefect reads its settings; a value already in the
environment is kept.
"""

import os

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
}
for _name, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)
