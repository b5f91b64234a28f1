"""ticketml: MLflow-centric multi-task triage (topic + priority) of customer-support tickets."""

__version__ = "0.1.0"
TASKS = ("topic", "priority")
