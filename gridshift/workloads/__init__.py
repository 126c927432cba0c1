"""Workload kinds as plug-ins (one module per kind behind ``kind.WorkloadKind``, as KEDA keeps its
scalers), the registry that maps pods to them, and Kueue's Workload handshake. Pure."""
