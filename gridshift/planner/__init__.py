"""The pure decision engine: state in, actions out, no I/O. The operator and the simulator call
the same functions, so what is measured offline is what runs live."""

from gridshift.planner.ladder import (
    Action,
    BatteryState,
    PlanInput,
    PlanLimits,
    Workload,
    plan,
)

__all__ = ["Action", "BatteryState", "PlanInput", "PlanLimits", "Workload", "plan"]
