"""The instructor's release settings (``instructor/course.toml``) and README placeholders.

The student README template (``instructor/handout/README.md``) holds
placeholders such as ``{{ schedule.deadline }}``: a dotted path into the TOML
file. ``fill`` replaces each one; a placeholder the config does not define is
an error naming the template line, so no ``{{ ... }}`` ever reaches students.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

REQUIRED = {
    "assignment.version": "the assignment version stamped into the handout, e.g. \"2025.1\"",
    "assignment.folder": "the top folder inside handout.zip, e.g. \"assignment2_maml\"",
    "schedule.deadline": "the deadline as students should read it",
    "schedule.late_policy": "the late policy, one paragraph",
}
UNSET = "TBA"  # a value starting with this is reported as still to be set
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*")


class ConfigError(ValueError):
    """The config file is unreadable, incomplete, or a placeholder is unknown."""


@dataclass
class CourseConfig:
    path: Path
    values: dict[str, str]  # dotted key -> text

    @property
    def version(self) -> str:
        return self.values["assignment.version"]

    @property
    def folder(self) -> str:
        return self.values["assignment.folder"]

    def unset(self) -> list[str]:
        """Keys whose value still says TBA."""
        return [key for key, value in self.values.items() if value.strip().upper().startswith(UNSET)]


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def load_config(path: str | Path) -> CourseConfig:
    """Reads and checks the config; ConfigError says what is wrong and where."""
    path = Path(path)
    try:
        values = _flatten(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: copy the example in README.md (Instructor tools)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    missing = [f"{key} ({meaning})" for key, meaning in REQUIRED.items() if not values.get(key, "").strip()]
    if missing:
        raise ConfigError(f"{path}: set " + "; ".join(missing))
    for key in ("assignment.version", "assignment.folder"):
        if not _VERSION.fullmatch(values[key]):
            raise ConfigError(f"{path}: {key} = {values[key]!r} may hold only letters, digits, '.', '_' "
                              f"and '-' (it goes into file names and the version stamp)")
    return CourseConfig(path, values)


def fill(template: str, values: dict[str, str], name: str) -> str:
    """Replaces every ``{{ key }}`` in ``template``; ConfigError names an unknown one."""
    for number, line in enumerate(template.splitlines(), start=1):
        for match in _PLACEHOLDER.finditer(line):
            if match.group(1) not in values:
                raise ConfigError(f"{name}:{number}: placeholder {match.group(0)} is not defined in the "
                                  f"config (defined: {', '.join(sorted(values))})")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
