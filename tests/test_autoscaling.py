"""A scale-down beside a HorizontalPodAutoscaler, without a cluster: the HPA's maximum follows the
replicas gridshift leaves, within the HPA's own bounds, and comes back exactly."""

from __future__ import annotations

from types import SimpleNamespace

from gridshift.actuators.autoscaling import (
    Autoscaler,
    ScaledObject,
    autoscaler_of,
    cap_patch,
    pause_patch,
    release_patch,
    scaled_object_of,
    unpause_patch,
)
from gridshift.api import annotations as ann


def _hpa(min_r: int = 2, max_r: int = 8, **notes: str) -> Autoscaler:
    return Autoscaler("web", min_r, max_r, dict(notes), "41")


def _applied(hpa: Autoscaler, patch: dict | None) -> Autoscaler:
    """``hpa`` after a merge patch (a None annotation removes it)."""
    if patch is None:
        return hpa
    notes = {**hpa.annotations, **patch.get("metadata", {}).get("annotations", {})}
    return Autoscaler(hpa.name, hpa.min_replicas, patch.get("spec", {}).get("maxReplicas", hpa.max_replicas),
                      {k: v for k, v in notes.items() if v is not None}, hpa.resource_version)


def test_a_scale_down_lowers_the_maximum_to_the_replicas_left_and_records_the_original() -> None:
    patch = cap_patch(_hpa(), 3, "site")
    assert patch is not None and patch["spec"] == {"maxReplicas": 3}
    assert patch["metadata"]["annotations"] == {ann.MANAGED_BY: "site", ann.ORIGINAL_MAX_REPLICAS: "8"}
    assert patch["metadata"]["resourceVersion"] == "41"  # a concurrent writer makes the claim fail
    # a second step down keeps the first record: the original is the HPA's, not gridshift's 3
    again = cap_patch(_applied(_hpa(), patch), 2, "site")
    assert again is not None and again["metadata"]["annotations"][ann.ORIGINAL_MAX_REPLICAS] == "8"


def test_the_maximum_stays_within_the_hpas_own_bounds() -> None:
    below_min = cap_patch(_hpa(min_r=2), 1, "site")
    assert below_min is not None and below_min["spec"]["maxReplicas"] == 2  # the API refuses max < min
    above_max = cap_patch(_hpa(max_r=4), 6, "site")
    assert above_max is not None and above_max["spec"]["maxReplicas"] == 4  # a scale-down never raises it
    held = _applied(_hpa(), cap_patch(_hpa(), 3, "site"))
    assert cap_patch(held, 3, "site") is None  # already held there: no write


def test_the_restore_raises_the_maximum_step_by_step_and_ends_with_the_hpas_spec_as_it_was() -> None:
    before = _hpa(min_r=2, max_r=8)
    held = _applied(before, cap_patch(before, 2, "site"))
    step = _applied(held, release_patch(held, 4, restored=False, policy="site"))
    assert step.max_replicas == 4 and step.annotations[ann.ORIGINAL_MAX_REPLICAS] == "8"
    done = _applied(step, release_patch(step, 6, restored=True, policy="site"))
    assert (done.max_replicas, done.annotations) == (8, {})


def test_an_hpa_held_by_no_policy_or_another_is_not_restored() -> None:
    assert release_patch(_hpa(), 8, restored=True, policy="site") is None
    theirs = _hpa(**{ann.MANAGED_BY: "other", ann.ORIGINAL_MAX_REPLICAS: "8"})
    assert release_patch(theirs, 8, restored=True, policy="site") is None


def test_an_unreadable_record_releases_the_hpa_at_its_current_maximum() -> None:
    broken = _hpa(max_r=3, **{ann.MANAGED_BY: "site", ann.ORIGINAL_MAX_REPLICAS: "eight"})
    patch = release_patch(broken, 4, restored=False, policy="site")
    assert patch is not None and patch["spec"] == {"maxReplicas": 3}
    assert patch["metadata"]["annotations"] == dict.fromkeys(ann.AUTOSCALER_WRITES)


def test_the_hpa_of_a_workload_is_found_by_its_scale_target() -> None:
    def obj(name: str, kind: str, target: str) -> SimpleNamespace:
        return SimpleNamespace(
            metadata=SimpleNamespace(name=name, annotations=None, resource_version="7"),
            spec=SimpleNamespace(scale_target_ref=SimpleNamespace(kind=kind, name=target), min_replicas=None,
                                 max_replicas=5))
    hpas = [obj("a", "StatefulSet", "web"), obj("b", "Deployment", "web")]
    found = autoscaler_of(hpas, "Deployment", "web")
    assert found is not None and (found.name, found.min_replicas, found.max_replicas) == ("b", 1, 5)
    assert autoscaler_of(hpas, "Deployment", "chat") is None


def _paused(so: ScaledObject, patch: dict | None) -> ScaledObject:
    if patch is None:
        return so
    notes = {**so.annotations, **patch["metadata"]["annotations"]}
    return ScaledObject(so.name, {k: v for k, v in notes.items() if v is not None}, so.resource_version)


def test_a_keda_scaled_object_is_paused_step_by_step_and_given_back_as_it_was() -> None:
    before = ScaledObject("chat", {"team": "inference"}, "9")
    down = _paused(before, pause_patch(before, 2, "site"))
    assert down.annotations[ann.KEDA_PAUSED_REPLICAS] == "2" and down.annotations[ann.ORIGINAL_PAUSE] == ""
    assert pause_patch(down, 2, "site") is None  # paused there already
    lower = _paused(down, pause_patch(down, 1, "site"))
    assert lower.annotations[ann.ORIGINAL_PAUSE] == ""  # the owner had no pause: still recorded as none
    step = _paused(lower, unpause_patch(lower, 3, restored=False, policy="site"))
    assert step.annotations[ann.KEDA_PAUSED_REPLICAS] == "3"
    assert _paused(step, unpause_patch(step, 4, restored=True, policy="site")).annotations == before.annotations


def test_an_owners_own_pause_comes_back_after_a_scale_down() -> None:
    owned = ScaledObject("chat", {ann.KEDA_PAUSED_REPLICAS: "5"})
    down = _paused(owned, pause_patch(owned, 2, "site"))
    assert down.annotations[ann.ORIGINAL_PAUSE] == "5"
    assert _paused(down, unpause_patch(down, 5, restored=True, policy="site")).annotations == owned.annotations
    assert unpause_patch(owned, 5, restored=True, policy="site") is None  # not this policy's pause


def test_the_scaled_object_of_a_workload_defaults_its_target_kind_to_deployment() -> None:
    objs = [{"metadata": {"name": "a"}, "spec": {"scaleTargetRef": {"name": "web", "kind": "StatefulSet"}}},
            {"metadata": {"name": "b", "resourceVersion": "3"}, "spec": {"scaleTargetRef": {"name": "web"}}}]
    found = scaled_object_of(objs, "Deployment", "web")
    assert found is not None and (found.name, found.resource_version) == ("b", "3")
    assert scaled_object_of(objs, "StatefulSet", "web") is not None and scaled_object_of(objs, "Job", "x") is None
