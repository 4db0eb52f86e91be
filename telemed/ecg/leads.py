"""Lead names and the limb leads that follow from two others.

Files name leads in many ways ("MDC_ECG_LEAD_AVR", "Lead aVR (Goldberger)", "MLII",
"DII"); everything downstream speaks the twelve standard names below.
"""

from __future__ import annotations

import re

import numpy as np

LIMB_LEADS = ("I", "II", "III")
AUGMENTED_LEADS = ("aVR", "aVL", "aVF")
CHEST_LEADS = ("V1", "V2", "V3", "V4", "V5", "V6")
STANDARD_LEADS = LIMB_LEADS + AUGMENTED_LEADS + CHEST_LEADS

_CANONICAL = {name.upper(): name for name in STANDARD_LEADS}
# Holter and European spellings of the same limb leads; "ML" leads are the modified
# (torso-placed) limb leads that Holter records carry and readers treat as such.
_ALIASES = {
    "MLI": "I",
    "MLII": "II",
    "MLIII": "III",
    "DI": "I",
    "DII": "II",
    "DIII": "III",
    "D1": "I",
    "D2": "II",
    "D3": "III",
    "1": "I",
    "2": "II",
    "3": "III",
}
_NOISE = re.compile(r"\(.*?\)|[\s_\-]+")


def _key(raw: str) -> str:
    key = raw.strip().upper()
    if key.startswith("MDC_ECG_LEAD_"):
        key = key[len("MDC_ECG_LEAD_") :]
    key = _NOISE.sub("", key)
    return key[4:] if key.startswith("LEAD") else key


def is_alias_label(raw: str, name: str) -> bool:
    """Whether a file's label names lead ``name`` by another name (MLII for II),
    rather than by a spelling of the same name ("Lead II", "MDC_ECG_LEAD_II")."""
    return _key(raw) != name.upper()


def canonical_lead_name(raw: str) -> str:
    """The standard name of a lead label, or the label itself (stripped) when unknown."""
    label = raw.strip()
    key = _key(label)
    if key in _CANONICAL:
        return _CANONICAL[key]
    if key in _ALIASES:
        return _ALIASES[key]
    return label


def order_leads(names: list[str]) -> list[int]:
    """Indexes that put standard leads first, in standard order, then the rest as given."""
    rank = {name: i for i, name in enumerate(STANDARD_LEADS)}
    return sorted(range(len(names)), key=lambda i: (rank.get(names[i], len(rank)), i))


def derive_limb_leads(leads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The frontal-plane leads missing from ``leads`` that two stored limb leads determine.

    Einthoven: II = I + III. Goldberger: aVR = -(I + II) / 2, aVL = I - II / 2,
    aVF = II - I / 2. Returns only the leads it computed.
    """
    derived: dict[str, np.ndarray] = {}
    have = {name: leads[name] for name in LIMB_LEADS if name in leads}
    if len(have) == 2:
        if "III" not in have:
            derived["III"] = have["II"] - have["I"]
        elif "II" not in have:
            derived["II"] = have["I"] + have["III"]
        else:
            derived["I"] = have["II"] - have["III"]
    full = {**have, **derived}
    if "I" in full and "II" in full:
        lead_i, lead_ii = full["I"], full["II"]
        formulas = {
            "aVR": lambda: -(lead_i + lead_ii) / 2,
            "aVL": lambda: lead_i - lead_ii / 2,
            "aVF": lambda: lead_ii - lead_i / 2,
        }
        for name, formula in formulas.items():
            if name not in leads:
                derived[name] = formula()
    return {name: values.astype(np.float32, copy=False) for name, values in derived.items()}
