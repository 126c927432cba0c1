"""Is moving a job to a site with surplus renewable power worth it? Pure: numbers in, a verdict
with every number and the binding constraint out.

A move of a job with checkpoint size S over a WAN link of bandwidth B into a renewable window of
remaining length W is *timely* when

    T_move = T_checkpoint + S / B + T_restore  <=  (1 - margin) * W

and *worth it* when the energy the move costs (moving the bytes, at both ends, plus the job's
power while it is stopped for the move) is less than the non-renewable energy it avoids over the
rest of the window. Time, not energy, is usually the binding constraint: at the default 0.002
kWh/GB a terabyte costs about 2 kWh to move, while one 8-GPU node kept on renewable power for a
three-hour window avoids about 15 kWh; the transfer time of that terabyte is what rules moves out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

# Network energy per byte moved, both ends and the WAN together: about 0.002 kWh/GB, the order of
# recent estimates (it halves every few years; older studies give ten times more). An assumption:
# override it per move.
DEFAULT_TRANSFER_J_PER_BYTE = 0.002 * 3.6e6 / 1e9


@dataclass(frozen=True)
class Move:
    """One candidate move. Sizes in bytes, rates in bytes or bits per second, time in s, power in W."""

    checkpoint_bytes: float
    bandwidth_bps: float
    window_s: float
    margin: float = 0.2
    job_power_w: float = 6_000.0
    idle_power_w: float | None = None          # power held while the job is stopped; default 25% of job power
    checkpoint_write_Bps: float = 2e9          # checkpoint write rate (bytes/s) at the source
    restore_read_Bps: float = 2e9              # checkpoint read rate at the destination
    transfer_j_per_byte: float = DEFAULT_TRANSFER_J_PER_BYTE
    source_nonrenewable: float = 1.0           # share of the job's power that is non-renewable if it stays
    destination_nonrenewable: float = 0.0      # ... and at the destination during its window

    def __post_init__(self) -> None:
        for name in ("checkpoint_bytes", "bandwidth_bps", "window_s", "checkpoint_write_Bps", "restore_read_Bps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than zero, got {getattr(self, name)}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {self.margin}")
        for name in ("source_nonrenewable", "destination_nonrenewable"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {getattr(self, name)}")
        if self.job_power_w < 0 or self.transfer_j_per_byte < 0 or (self.idle_power_w or 0) < 0:
            raise ValueError("powers and energies must not be negative")


@dataclass(frozen=True)
class Verdict:
    feasible: bool
    binding: Literal["time", "energy"]
    checkpoint_s: float
    transfer_s: float
    restore_s: float
    move_s: float
    time_budget_s: float
    move_energy_j: float
    avoided_energy_j: float
    time_slack: float          # (budget - move) / budget; negative: too slow
    energy_slack: float        # (avoided - cost) / avoided; negative: not worth it

    def explain(self) -> str:
        verdict = "FEASIBLE" if self.feasible else "NOT FEASIBLE"
        return "\n".join([
            f"{verdict}: binding constraint is {self.binding}",
            f"  time:   checkpoint {_dur(self.checkpoint_s)} + transfer {_dur(self.transfer_s)} + restore "
            f"{_dur(self.restore_s)} = {_dur(self.move_s)} vs budget {_dur(self.time_budget_s)} "
            f"(slack {self.time_slack:+.0%})",
            f"  energy: move costs {self.move_energy_j / 3.6e6:.3f} kWh vs {self.avoided_energy_j / 3.6e6:.3f} kWh "
            f"of non-renewable energy avoided (slack {self.energy_slack:+.0%})",
        ])

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _dur(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def assess(move: Move) -> Verdict:
    """The verdict for one move, with its numbers and the constraint with the least slack."""
    checkpoint_s = move.checkpoint_bytes / move.checkpoint_write_Bps
    transfer_s = move.checkpoint_bytes * 8 / move.bandwidth_bps
    restore_s = move.checkpoint_bytes / move.restore_read_Bps
    move_s = checkpoint_s + transfer_s + restore_s
    budget_s = (1 - move.margin) * move.window_s
    idle_w = 0.25 * move.job_power_w if move.idle_power_w is None else move.idle_power_w
    cost_j = move.checkpoint_bytes * move.transfer_j_per_byte + idle_w * move_s
    benefit = move.source_nonrenewable - move.destination_nonrenewable
    avoided_j = move.job_power_w * max(0.0, move.window_s - move_s) * benefit
    time_slack = (budget_s - move_s) / budget_s
    energy_slack = (avoided_j - cost_j) / avoided_j if avoided_j > 0 else -1.0
    feasible = time_slack >= 0 and energy_slack > 0
    # A move that does not fit in time is bound by time (its avoided energy only shrinks because of
    # it); a timely one by whichever constraint has the least room left.
    binding: Literal["time", "energy"]
    if time_slack < 0:
        binding = "time"
    elif energy_slack <= 0:
        binding = "energy"
    else:
        binding = "time" if time_slack <= energy_slack else "energy"
    return Verdict(feasible, binding, checkpoint_s, transfer_s, restore_s, move_s, budget_s, cost_j, avoided_j,
                   time_slack, energy_slack)


def max_checkpoint_bytes(bandwidth_bps: float, window_s: float, margin: float = 0.2,
                         checkpoint_write_Bps: float = 2e9, restore_read_Bps: float = 2e9) -> float:
    """The largest checkpoint that still moves in time: the time boundary of the feasibility domain."""
    seconds_per_byte = 1 / checkpoint_write_Bps + 8 / bandwidth_bps + 1 / restore_read_Bps
    return (1 - margin) * window_s / seconds_per_byte
