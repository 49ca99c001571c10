"""Local retrain pipelines: store, run (job kind), gate, schedules, agent and the service."""
