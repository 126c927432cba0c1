"""The Kopf operator: handlers (the only place that knows Kopf), the control period, the cluster
inventory and the metrics."""
