"""The scales of a study preset: ``full`` (the paper's protocol, for a GPU machine or a cluster) and ``smoke``
(the same protocol shrunk to minutes on a CPU).

A preset's ``smoke:`` mapping holds the smoke scale's overrides, merged into the preset (mappings key by key,
anything else replaced) by ``study run --smoke`` / ``study plan --smoke`` or ``scale: smoke`` in the file. The
smoke scale may change only the size of the work, never the design: the keys it may set are
:data:`SMOKE_KEYS` (epochs and steps, repeats and folds, image and patch sizes, patients and the synthetic
cohort, the backbone's size and its weights file, the workers); anything else is refused, so a smoke run tests
the published design, only smaller.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from sarcomri.errors import SarcomriError

#: The top-level key of a study file that holds its smoke scale.
SMOKE = "smoke"
#: The keys (at any depth) whose value the smoke scale may override. A mapping under any other key is looked
#: into key by key; one under :data:`WHOLE_MAPPINGS` counts as one value.
SMOKE_KEYS = frozenset({
    # how long training runs
    "epochs", "iterations", "slices_per_epoch", "patience", "ablation",
    # how many models: repeats, folds, training sizes
    "repeats", "folds", "fractions",
    # image, slice and patch sizes
    "size", "image_size", "slices", "plan", "max_patch_voxels", "decoder_channels",
    # how many patients: a sample of the user's, or a small synthetic cohort (when no cohort is given)
    "patients", "synth", "source_patients", "target_patients",
    # the backbone's size and its weights (no network: the papers' pretrained files are not on a fresh machine)
    "encoder", "encoder_weights", "weights", "name",
    # where the work runs
    "batch_size", "workers", "executor", "threads", "sw_batch_size",
})
#: The mappings the smoke scale may set as a whole: the synthetic cohort, the 3D plan's budget, the executor and
#: the ablation's grid.
WHOLE_MAPPINGS = frozenset({"synth", "plan", "executor", "ablation"})
#: Sections whose ``name`` is a network's (``model.name``): the only place the smoke scale may rename.
_NAMED_NETWORKS = {"model"}


class ScaleError(SarcomriError):
    """A preset's smoke scale is missing or changes more than the size of the work."""


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merged key by key, any other value replaced (a copy)."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in WHOLE_MAPPINGS:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def override_paths(overrides: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The dotted paths an overrides mapping sets (a mapping under a :data:`WHOLE_MAPPINGS` key counts as one)."""
    for key, value in overrides.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and key not in WHOLE_MAPPINGS:
            yield from override_paths(value, path)
        else:
            yield path


def check_smoke(overrides: Mapping[str, Any]) -> None:
    """Refuse a smoke scale that sets a key outside :data:`SMOKE_KEYS` (it would change the design)."""
    bad = []
    for path in override_paths(overrides):
        leaf = path[-1]
        if leaf not in SMOKE_KEYS or (leaf == "name" and (len(path) < 2 or path[-2] not in _NAMED_NETWORKS)):
            bad.append(".".join(path))
    if bad:
        raise ScaleError(f"the smoke scale may change only the size of the work, not {', '.join(bad)} "
                         f"(allowed keys: {', '.join(sorted(SMOKE_KEYS))})")


def apply_scale(raw: Mapping[str, Any], smoke: bool | None = None) -> dict[str, Any]:
    """The study mapping at its scale: ``smoke`` True forces the smoke scale, None keeps the file's ``scale``.

    At the smoke scale the ``smoke:`` overrides are merged in and ``scale`` reads ``smoke``; the ``smoke:``
    mapping stays in the result (:func:`sarcomri.study_config.load_study_config` drops it before validating)."""
    scale = "smoke" if smoke else raw.get("scale", "full")
    if scale != "smoke":
        return dict(raw)
    overrides = raw.get(SMOKE) or {}
    if not isinstance(overrides, Mapping) or not overrides:
        raise ScaleError("this config has no smoke scale (a 'smoke:' mapping of the values to shrink)")
    check_smoke(overrides)
    out = deep_merge(raw, overrides)
    out["scale"] = "smoke"
    return out


def scale_changes(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the smoke scale changes: one ``{key, full, smoke}`` per overridden path (``full`` None when unset)."""
    rows = []
    for path in override_paths(raw.get(SMOKE) or {}):
        full: Any = raw
        smoke: Any = raw[SMOKE]
        for key in path:
            full = full.get(key) if isinstance(full, Mapping) else None
            smoke = smoke[key]
        rows.append({"key": ".".join(path), "full": full, "smoke": smoke})
    return rows
