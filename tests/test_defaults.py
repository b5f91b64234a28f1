"""Defaults live in one place: the YAML under ticketml/configs/ (the schema in ticketml/settings.py
gives types only), except the data group, whose schema defaults let a new dataset's file name
only what differs."""

from dataclasses import MISSING as NO_DEFAULT
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
from omegaconf import MISSING, OmegaConf

from ticketml import settings
from ticketml.config import config_dir, load_config

DATA_GROUP = {"Data", "Columns", "Synthetic"}


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "overrides",
    [[f"data={d}"] for d in choices("data")] + [[f"model={m}"] for m in choices("model")],
    ids=lambda o: o[0],
)
def test_every_key_gets_its_value_from_the_yaml(overrides):
    cfg = load_config(overrides)
    missing = sorted(OmegaConf.missing_keys(cfg))
    assert not missing, f"keys without a value in ticketml/configs/ ({overrides}): {missing}"


def test_the_schema_holds_no_default_of_its_own_outside_the_data_group():
    doubled = []
    for name in dir(settings):
        cls = getattr(settings, name)
        if not (isinstance(cls, type) and is_dataclass(cls)) or name in DATA_GROUP:
            continue
        for f in fields(cls):
            nested = f.default_factory is not NO_DEFAULT and is_dataclass(f.default_factory)
            if not nested and f.default != MISSING:
                doubled.append(f"{name}.{f.name}")
    assert not doubled, f"defaults written in ticketml/settings.py as well as the YAML: {doubled}"
