"""The deliberately broken fixtures: each check has a folder under fixtures/ of YAML files that each break one thing
in a real artifact (a JSON patch of it, or a text replacement) and say which problem the check must report."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from knative import jsonpatch

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class Broken:
    name: str
    expect: str
    patch: list[dict] = field(default_factory=list)
    replace: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def applied_to(self, document):
        return jsonpatch.apply(document, self.patch)

    def applied_to_text(self, text: str) -> str:
        for old, new in self.replace.items():
            assert old in text, f"fixture {self.name}: {old!r} is no longer in the artifact it breaks"
            text = text.replace(old, new)
        return text


def cases(check: str) -> list:
    """pytest params, one per fixture of the check, named after the file."""
    params = []
    for path in sorted((FIXTURES / check).glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        broken = Broken(
            name=path.stem,
            expect=raw.pop("expect"),
            patch=raw.pop("patch", []),
            replace=raw.pop("replace", {}),
            options=raw,
        )
        params.append(pytest.param(broken, id=path.stem))
    assert params, f"no broken fixtures for {check}"
    return params
