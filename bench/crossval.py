"""Cross-validated control: every headline control figure, out of sample.

    python bench/crossval.py [--trace-dir ../shared/data] [--hours 24] [--folds 0 1 2 3 4]
                             [--scenarios training-64 mixed synthetic-training] [--workers 2]
                             [--json out/crossval.json] [--markdown out/crossval.md]

Leave-one-run-out over the five full H100 runs (``gpu-power/h100-8gpu-llm-training``). For fold k:

1. the forecaster is trained on the other four runs plus the two short runs
   (``gpu-power/h100-8gpu-llm-training-short``) with the recipe of ``make default-model`` (seed 0,
   CPU, 100 student epochs) but, unless ``--distill``, without its teacher: distillation neither
   helps nor hurts measurably after online adaptation (``bench/forecast_loro.py``, five seeds) and
   the teacher takes six minutes a fold on two cores. Models are cached under ``--cache`` by the
   hash of their training files and recipe;
2. each bundled scenario is simulated with only the held-out run's trace (every job on the site
   replays that run from its own offset), for every strategy: ``none``, ``reactive``,
   ``persistence``, ``student`` (the fold's model), ``oracle`` and ``noise`` (the student strategy on
   ``gridshift.sim.noise.NoiseForecaster``, a forecaster that is pure noise).

The ``synthetic-training`` scenario (generated job power, no real trace) runs once with the bundled
model, which never saw a generated trace. Prints per-fold and pooled tables (energy above the cap,
worst second over it, job delay, battery energy) and a PASS/FAIL line per acceptance criterion of
issue 22; ``--json`` writes everything.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from _common import write_json

from gridshift.sim import scenario as sc
from gridshift.sim.site import SiteModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FULL = "gpu-power/h100-8gpu-llm-training"
SHORT = "gpu-power/h100-8gpu-llm-training-short"
STRATEGIES = ("none", "reactive", "persistence", "student", "oracle", "noise")
RECIPE = {"teacher_epochs": 40, "student_epochs": 100, "seed": 0}  # make default-model's


def runs(trace_dir: Path) -> list[Path]:
    found = sorted((trace_dir / FULL).glob("run-*-per-gpu.csv"))
    if len(found) < 2:
        raise SystemExit(f"crossval: needs the H100 runs under {trace_dir / FULL}")
    return found


def fold_model(train: list[Path], cache: Path, distill: bool, log: Any) -> Path:
    """The fold's model directory, trained once per set of training files and recipe."""
    recipe = repr(sorted({**RECIPE, "distill": distill}.items()))
    key = hashlib.sha256(("|".join(f"{p.name}:{p.stat().st_size}" for p in train) + recipe).encode()).hexdigest()[:16]
    out = cache / key
    if (out / "model.json").is_file():
        return out
    from gridshift.forecaster.train.fit import TrainConfig, fit_models, write_model_dir
    from gridshift.telemetry.traces import load_series

    cfg = TrainConfig(seed=RECIPE["seed"], teacher_epochs=RECIPE["teacher_epochs"],
                      student_epochs=RECIPE["student_epochs"], device="cpu")
    series = load_series([str(p) for p in train], cfg.step_s, 5.0, min_length=cfg.window + cfg.trajectory + 1)
    started = time.monotonic()
    result = fit_models(series, cfg, teacher=distill)
    write_model_dir(result, out, train, include_teacher=False, networks=("student",))
    log(f"  trained on {len(train)} files in {time.monotonic() - started:.0f} s -> {out}")
    return out


def scenario_for(name: str, trace: str | None, draw: int = 0) -> sc.Scenario:
    """The bundled scenario ``name``, its jobs replaying only ``trace`` (relative to the trace dir);
    ``draw`` > 0 shifts its seed: another day of job arrivals, sizes and offsets on the same trace."""
    doc = yaml.safe_load(sc.bundled()[name].read_text())
    if trace is not None:
        doc["traces"] = [trace]
    doc["seed"] = int(doc.get("seed", 0)) + draw
    return sc.parse(yaml.safe_dump(doc), f"{name} on {trace or 'its own traces'}")


def _site(name: str, trace: str | None, trace_dir: str, hours: float, draw: int) -> tuple[sc.Scenario, SiteModel]:
    scn = scenario_for(name, trace, draw)
    return scn, scn.site(scn.job_traces(Path(trace_dir)), seconds=int(hours * 3600))


def setup_overrides(pairs: list[str]) -> dict[str, bool | float]:
    """``--setup KEY=VALUE`` pairs: fields of ``gridshift.sim.peak.Setup`` to override in every run
    (an ablation: ``pace_workloads=false``, ``budget_speculation=false``, ``endurance_s=0``)."""
    from dataclasses import fields

    from gridshift.sim.peak import Setup

    known = {f.name: f.type for f in fields(Setup)}
    out: dict[str, bool | float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise SystemExit(f"crossval: --setup {pair!r}: expected KEY=VALUE, KEY one of {', '.join(sorted(known))}")
        if str(known[key]).startswith("bool"):
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"crossval: --setup {key}: expected true or false, got {value!r}")
            out[key] = value.lower() == "true"
        else:
            try:
                out[key] = float(value)
            except ValueError:
                raise SystemExit(f"crossval: --setup {key}: expected a number, got {value!r}") from None
    return out


def _run(task: tuple[str, str | None, str, float, str, str | None, float, int, dict[str, Any]]) -> dict[str, Any]:
    """One strategy on one fold's site (in a worker process)."""
    from gridshift.forecaster.runtime import Forecaster
    from gridshift.sim.noise import NoiseForecaster
    from gridshift.sim.peak import simulate

    name, trace, trace_dir, hours, strategy, model_dir, cap, draw, overrides = task
    scn, site = _site(name, trace, trace_dir, hours, draw)
    model = None
    if strategy == "student":
        model = Forecaster.load(model_dir or "default")
    elif strategy == "noise":
        model = NoiseForecaster(seed=scn.file.seed)
    started = time.monotonic()
    setup = replace(scn.setup(cap), **overrides)
    result = simulate(site, setup, "student" if strategy == "noise" else strategy, model=model)
    out = result.summary()
    out["strategy"] = strategy
    out["wall_s"] = round(time.monotonic() - started, 1)
    return out


def cap_of(name: str, trace: str | None, trace_dir: str, hours: float, draw: int = 0) -> float:
    from gridshift.sim.peak import simulate

    scn, site = _site(name, trace, trace_dir, hours, draw)
    if scn.file.budget.cap_watts is not None:
        return scn.file.budget.cap_watts
    return scn.cap_w(simulate(site, scn.setup(1e9), "none").load_w)


KEYS = (("energy_above_cap_kwh", "kWh>cap", "{:.3f}"), ("worst_overshoot_w", "worst W", "{:.0f}"),
        ("job_delay_gpu_h", "delay GPU-h", "{:.2f}"), ("inference_shed_replica_h", "shed rep-h", "{:.1f}"),
        ("battery_discharged_kwh", "batt kWh", "{:.1f}"), ("actions", "actions", "{:.0f}"))


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = ["strategy", *[k[1] for k in KEYS]]
    body = [[s, *[fmt.format(r[key]) for key, _, fmt in KEYS]] for s, r in rows.items()]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    lines = []
    for x in [head, *body]:
        lines.append("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(x, widths, strict=True))))
    return "\n".join(lines)


def mean_of(draws: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per strategy, the mean of each figure over the draws (days) of one fold."""
    out: dict[str, dict[str, Any]] = {}
    for strategy in draws[0]:
        rows = [d[strategy] for d in draws]
        figures = [key for key, _, _ in KEYS] + ["battery_charged_kwh"]
        out[strategy] = {**rows[0], **{key: sum(r[key] for r in rows) / len(rows) for key in figures}}
        out[strategy]["wall_s"] = round(sum(r.get("wall_s", 0.0) for r in rows), 1)
    return out


def pool(per_fold: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for strategy in per_fold[0]:
        rs = [f[strategy] for f in per_fold]
        out[strategy] = {"energy_above_cap_kwh": sum(r["energy_above_cap_kwh"] for r in rs),
                         "worst_overshoot_w": max(r["worst_overshoot_w"] for r in rs),
                         "job_delay_gpu_h": sum(r["job_delay_gpu_h"] for r in rs),
                         "inference_shed_replica_h": sum(r["inference_shed_replica_h"] for r in rs),
                         "battery_discharged_kwh": sum(r["battery_discharged_kwh"] for r in rs),
                         "actions": sum(r["actions"] for r in rs)}
    return out


TOL = 1e-9


def checks(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """The acceptance criteria of issue 22 that this bench measures."""
    out: list[tuple[str, bool]] = []
    for name, block in results["scenarios"].items():
        folds = block["folds"]
        if not all({"student", "reactive", "persistence"} <= set(f["results"]) for f in folds):
            continue  # the criteria compare the student with reactive control and persistence
        if name == "synthetic-training":
            r = folds[0]["results"]
            s, re_ = r["student"], r["reactive"]
            out.append((f"{name}: student <= reactive on energy, worst second and job delay",
                        s["energy_above_cap_kwh"] <= re_["energy_above_cap_kwh"] + TOL
                        and s["worst_overshoot_w"] <= re_["worst_overshoot_w"] + TOL
                        and s["job_delay_gpu_h"] <= re_["job_delay_gpu_h"] + TOL))
            continue
        every = all(f["results"]["student"]["energy_above_cap_kwh"]
                    <= min(f["results"]["reactive"]["energy_above_cap_kwh"],
                           f["results"]["persistence"]["energy_above_cap_kwh"]) + TOL for f in folds)
        out.append((f"{name}: every fold, student energy above cap <= reactive and <= persistence", every))
        out.append((f"{name}: every fold, student worst second <= reactive",
                    all(f["results"]["student"]["worst_overshoot_w"] <= f["results"]["reactive"]["worst_overshoot_w"]
                        + TOL for f in folds)))
        out.append((f"{name}: every fold, student job delay <= reactive",
                    all(f["results"]["student"]["job_delay_gpu_h"] <= f["results"]["reactive"]["job_delay_gpu_h"]
                        + TOL for f in folds)))
        pooled = block["pooled"]
        out.append((f"{name}: pooled student energy above cap <= 0.5x reactive",
                    pooled["student"]["energy_above_cap_kwh"] <= 0.5 * pooled["reactive"]["energy_above_cap_kwh"]
                    + TOL))
        if "noise" in pooled:
            out.append((f"{name}: every fold, noise forecaster <= 1.05x reactive energy above cap",
                        all(f["results"]["noise"]["energy_above_cap_kwh"]
                            <= 1.05 * f["results"]["reactive"]["energy_above_cap_kwh"] + TOL for f in folds)))
    return out


def markdown(results: dict[str, Any]) -> str:
    """The README's table: per scenario, every strategy pooled over the folds, then per fold the
    student beside reactive control."""
    out = ["| scenario | strategy | kWh > cap | worst W | job delay GPU-h | replica-h shed | battery kWh |",
           "|---|---|---|---|---|---|---|"]
    for name, block in results["scenarios"].items():
        rows = block.get("pooled") or block["folds"][0]["results"]
        for k, (strategy, r) in enumerate(rows.items()):
            out.append(f"| {name if k == 0 else ''} | {strategy} | {r['energy_above_cap_kwh']:.3f} | "
                       f"{r['worst_overshoot_w']:.0f} | {r['job_delay_gpu_h']:.1f} | "
                       f"{r['inference_shed_replica_h']:.1f} | {r['battery_discharged_kwh']:.1f} |")
    ran = [s for s in STRATEGIES if any(s in f["results"] for block in results["scenarios"].values()
                                        for f in block.get("folds", []))]
    delayed = [s for s in ("reactive", "student") if s in ran] or ran
    out += ["", f"| scenario | held-out run | kWh > cap: {' / '.join(ran)} | "
            f"job delay GPU-h: {' / '.join(delayed)} |", "|---|---|---|---|"]
    for name, block in results["scenarios"].items():
        if "pooled" not in block:
            continue
        for f in block["folds"]:
            r = f["results"]
            energy = " / ".join(f"{r[s]['energy_above_cap_kwh']:.3f}" for s in STRATEGIES if s in r)
            delay = " / ".join(f"{r[s]['job_delay_gpu_h']:.1f}" for s in delayed if s in r)
            run = Path(f["trace"]).name.removesuffix("-per-gpu.csv")
            out.append(f"| {name} | {run} | {energy} | {delay} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace-dir", type=Path, default=DATA)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--folds", type=int, nargs="*", help="fold numbers (default: every run)")
    parser.add_argument("--scenarios", nargs="+", default=["training-64", "mixed", "synthetic-training"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draws", type=int, default=1,
                        help="days of job arrivals per fold (scenario seeds seed..seed+N-1); per-fold figures are "
                             "their mean (default 1: one day is one draw of a chaotic job schedule)")
    parser.add_argument("--distill", action="store_true", help="train each fold's teacher and distil (slow)")
    parser.add_argument("--cache", type=Path, default=Path("out/crossval/models"))
    parser.add_argument("--json")
    parser.add_argument("--markdown", help="also write the README's tables to this file")
    parser.add_argument("--setup", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of gridshift.sim.peak.Setup in every run, e.g. pace_workloads=false "
                             "(an ablation; repeatable)")
    args = parser.parse_args()
    overrides = setup_overrides(args.setup)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    started = time.monotonic()
    full = runs(args.trace_dir)
    short = sorted((args.trace_dir / SHORT).glob("run-*-per-gpu.csv"))
    folds = args.folds if args.folds else list(range(len(full)))
    strategies = ["none", *[s for s in args.strategies if s != "none"]]
    results: dict[str, Any] = {"hours": args.hours, "draws": args.draws, "recipe": {**RECIPE, "distill": args.distill},
                               "setup": overrides, "folds": [], "scenarios": {}}
    models: dict[int, Path] = {}
    for k in folds:
        held = full[k]
        train = [p for p in full if p != held] + short
        log(f"fold {k}: held out {held.name}; training on {', '.join(p.name for p in train)}")
        models[k] = fold_model(train, args.cache, args.distill, log)
        results["folds"].append({"fold": k, "held_out": held.name, "trained_on": [p.name for p in train],
                                 "model": str(models[k])})
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool_:
        for name in args.scenarios:
            block: dict[str, Any] = {"folds": []}
            fold_list: list[tuple[int | None, str | None, str | None]] = (
                [(None, None, None)] if name == "synthetic-training"
                else [(k, f"{FULL}/{full[k].name}", str(models[k])) for k in folds])
            for k, trace, model_dir in fold_list:
                t0 = time.monotonic()
                caps = [cap_of(name, trace, str(args.trace_dir), args.hours, d) for d in range(args.draws)]
                tasks = [(name, trace, str(args.trace_dir), args.hours, s, model_dir, caps[d], d, overrides)
                         for d in range(args.draws) for s in strategies]
                done = list(pool_.map(_run, tasks))
                draws = [{r["strategy"]: r for r in done[d * len(strategies):(d + 1) * len(strategies)]}
                         for d in range(args.draws)]
                rows = mean_of(draws)
                label = f"fold {k} (held out {full[k].name})" if k is not None else "bundled model, generated traces"
                mean = "" if args.draws == 1 else f", mean of {args.draws} days"
                log(f"\n{name}, {label}: cap {caps[0] / 1000:.1f} kW{mean}, {time.monotonic() - t0:.0f} s\n"
                    f"{table(rows)}")
                block["folds"].append({"fold": k, "trace": trace, "cap_w": caps[0], "caps_w": caps, "results": rows,
                                       "draws": draws if args.draws > 1 else None})
            if name != "synthetic-training":
                block["pooled"] = pool([f["results"] for f in block["folds"]])
                log(f"\n{name}, pooled over {len(folds)} folds\n{table(block['pooled'])}")
            results["scenarios"][name] = block
    results["seconds"] = round(time.monotonic() - started, 1)
    results["checks"] = [{"check": c, "pass": ok} for c, ok in checks(results)]
    print(f"\ncross-validation took {results['seconds']:.0f} s")
    for c, ok in checks(results):
        print(f"{'PASS' if ok else 'FAIL'}  {c}")
    write_json(args.json, results)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown(results) + "\n")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
