"""Every threshold of the detection rules is a setting, documented in ``docs/forensics.md``
with its environment variable and its default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dstrail.domain.forensics.rules import Thresholds
from dstrail.services.findings import thresholds_of
from dstrail.settings import Settings

DOCS = Path(__file__).parents[2] / "docs" / "forensics.md"
SETTINGS = [f"forensics_{field.name}" for field in dataclasses.fields(Thresholds)]


def test_each_threshold_is_a_setting_the_rules_read(tmp_path: Path) -> None:
    assert set(SETTINGS) <= set(Settings.model_fields)
    defaults = Settings(data_dir=tmp_path)
    thresholds = thresholds_of(defaults)
    for field in dataclasses.fields(Thresholds):
        value = getattr(thresholds, field.name)
        setting = getattr(defaults, f"forensics_{field.name}")
        if isinstance(value, frozenset):
            assert value == {"" if n.strip() == "none" else n.strip() for n in setting.split(",")}
        else:
            assert value == setting, field.name


@pytest.mark.parametrize("name", SETTINGS)
def test_each_threshold_is_documented_with_its_default(name: str) -> None:
    text = DOCS.read_text()
    variable = f"DSTRAIL_{name.upper()}"
    rows = [line for line in text.splitlines() if variable in line]
    assert rows, f"{variable} is not in {DOCS.name}"
    default = Settings.model_fields[name].default
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    assert any(re.search(rf"\b{re.escape(shown)}\b", row) for row in rows), (variable, shown)
