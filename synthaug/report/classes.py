"""Warnings about classes the synthetic set does not hold: left out of generation (below the generator's minimum,
or emptied by cleaning) or with every candidate rejected, so arm (c) adds nothing of them and the gain (c) − (b)
is not theirs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch


def missing_class_warnings(
    classes: Sequence[str],
    synthetic_labels: torch.Tensor,
    manifest: pd.DataFrame | None,
    excluded: Mapping[str, int],
) -> list[str]:
    """One warning for the `excluded` classes (name -> train images) and one for classes whose candidates the
    filters all rejected; each names the classes, their counts and what to do."""
    warnings = []
    if excluded:
        named = ", ".join(f"'{name}' ({n} train image{'s' if n != 1 else ''})" for name, n in excluded.items())
        warnings.append(
            f"classes {named} were left out of generation (below the generator's minimum of train images, or "
            "emptied by cleaning): arm (c) holds no synthetic images of them, so any change of their accuracy "
            "comes from the other classes' synthetic images, not theirs. Land more images of them and "
            "rematerialize from training_tensors (or lower gan_checkpoint's min_class_images)."
        )
    if manifest is None or not len(manifest):
        return warnings
    held = set(synthetic_labels.tolist())
    drawn = manifest.groupby("label").size()
    rejected = {
        classes[label]: int(n)
        for label, n in drawn.items()
        if 0 <= label < len(classes) and label not in held and classes[label] not in excluded
    }
    if rejected:
        named = ", ".join(f"'{name}' (0 of {n} candidates)" for name, n in rejected.items())
        warnings.append(
            f"classes {named} have no accepted synthetic images: the filters rejected every candidate, so arm (c) "
            "adds nothing of them. Train the generator longer or relax synthetic_images' filters for them."
        )
    return warnings
