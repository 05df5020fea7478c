"""The README's settings table lists every setting, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from redis_persist.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _env_name(name: str) -> str:
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else f"REDIS_PERSIST_{name.upper()}"


def test_every_setting_is_in_the_readme_table() -> None:
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", README.read_text(), flags=re.MULTILINE))
    missing = [_env_name(name) for name in Settings.model_fields if _env_name(name) not in rows]
    assert missing == []
    for name, field in Settings.model_fields.items():
        if isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
            shown = str(field.default).removesuffix(".0")
            assert rows[_env_name(name)].strip() == f"`{shown}`", name
