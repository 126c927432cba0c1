"""Fuzz the PowerPolicy and EnergyStorage APIs on a real API server against the operator's models.

    python bench/schema_fuzz.py [--documents 1000] [--seed 0] [--json out/schema_fuzz.json]

Starts a local control plane (CRDs installed), then sends ``--documents`` generated documents of
each kind (tests/schema_fuzz.py: a valid spec with one to three mutations at paths from the CRD's
schema) as dry-run creates with strict field validation, and validates each with the pydantic
models the operator runs. Prints, per kind: documents, accepted, refused, refusals that name no
``spec`` field, documents only the operator refuses by design (``OPERATOR_ONLY``: an IANA time
zone, which CEL cannot check), and disagreements (the server accepts what the models refuse, or
the reverse), each disagreement with its mutations; writes the same as JSON. Any disagreement, or a
refusal naming no field, makes the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json
from hypothesis import HealthCheck, Phase, given, seed, settings
from kubernetes import client

from gridshift.devcluster.cluster import DevCluster
from tests.schema_fuzz import Kind, kinds, mutated_specs, verdict


def fuzz(custom: client.CustomObjectsApi, kind: Kind, documents: int, seed_: int) -> dict[str, object]:
    """Send ``documents`` generated specs of ``kind``; the tally and up to 20 offending examples."""
    tally = {"accepted": 0, "refused": 0, "refusals_naming_no_field": 0, "operator_only": 0, "disagreements": 0}
    examples: list[dict[str, object]] = []
    started = time.monotonic()

    @seed(seed_)
    @settings(max_examples=documents, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(mutated_specs(kind))
    def run(case: tuple[dict, list[str]]) -> None:
        spec, mutations = case
        seen = verdict(custom, kind, spec)
        tally["accepted" if seen.server_accepted else "refused"] += 1
        tally["refusals_naming_no_field"] += not seen.names_a_field
        tally["operator_only"] += seen.operator_only
        disagree = not seen.agree and not seen.operator_only
        tally["disagreements"] += disagree
        if disagree or not seen.names_a_field:
            examples.append({"mutations": mutations, "server": seen.server_message or "accepted",
                             "operator": seen.operator_message or "accepted"})

    run()
    return {**tally, "seconds": round(time.monotonic() - started, 1), "examples": examples[:20]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1000, help="documents per kind (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if args.documents < 1:
        parser.error(f"--documents must be at least 1, got {args.documents}")
    result: dict[str, object] = {"documents_per_kind": args.documents, "seed": args.seed}
    failed = False
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        cluster = DevCluster.up(directory=Path(tmp) / "cluster", pools=[], log=lambda m: print("  " + m, flush=True))
        stack.callback(cluster.down_now)
        custom = client.CustomObjectsApi(cluster.api_client())
        for name, kind in kinds().items():
            outcome = fuzz(custom, kind, args.documents, args.seed)
            result[name] = outcome
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in outcome.items() if k != "examples"), flush=True)
            for example in outcome["examples"]:  # type: ignore[attr-defined]
                print(f"  {example}")
            failed |= bool(outcome["disagreements"] or outcome["refusals_naming_no_field"])
    write_json(args.json, result)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
