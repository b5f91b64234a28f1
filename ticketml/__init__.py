"""ticketml: MLflow-centric multi-task triage (topic + priority) of customer-support tickets."""

from pyfunc import TASKS  # the served model owns the task list

__version__ = "0.1.0"
__all__ = ["TASKS", "__version__"]
