"""`zarf.yaml`: parsed with PyYAML's safe loader, every field regtui reads type-checked.

A field of the wrong type is one `ArchiveError` naming the field and the type found, never a traceback later.
Fields regtui does not read are kept only in `raw` (shown as-is by `inspect --json`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from regtui.oci.errors import ArchiveError

KINDS = ("ZarfPackageConfig", "ZarfInitConfig")
MAX_YAML = 4 * 1024 * 1024  # a package config with hundreds of components is well under 1 MiB
HEX64 = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str = ""
    description: str = ""
    architecture: str = ""
    uncompressed: bool = False
    aggregate_checksum: str = ""  # where packages before Zarf v0.46 keep it


@dataclass(frozen=True)
class Build:
    version: str = ""
    timestamp: str = ""
    architecture: str = ""
    user: str = ""
    terminal: str = ""
    flavor: str = ""
    aggregate_checksum: str = ""  # newer packages keep it here
    migrations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Component:
    name: str
    description: str = ""
    required: bool | None = None  # absent: Zarf's default (optional unless the package says otherwise)
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackageConfig:
    kind: str
    metadata: Metadata
    build: Build
    components: tuple[Component, ...]
    raw: dict[str, Any]

    @property
    def aggregate_checksum(self) -> tuple[str, str]:
        """(hex, field it came from), or ("", "") when the package records none."""
        if self.build.aggregate_checksum:
            return self.build.aggregate_checksum, "build.aggregateChecksum"
        if self.metadata.aggregate_checksum:
            return self.metadata.aggregate_checksum, "metadata.aggregateChecksum"
        return "", ""


class _Fields:
    """Typed access to one mapping of the YAML, naming the field path in every error."""

    def __init__(self, obj: Any, where: str, path: str):
        if not isinstance(obj, dict):
            raise ArchiveError(f"{where} must be a mapping, found {_type(obj)}", member="zarf.yaml", path=path)
        self.obj, self.where, self.path = obj, where, path

    def _fail(self, key: str, want: str, value: Any) -> ArchiveError:
        return ArchiveError(
            f"{self.where}.{key} must be {want}, found {_type(value)} {value!r:.40}",
            member="zarf.yaml",
            path=self.path,
            hint="the package config is malformed",
        )

    def text(self, key: str, required: bool = False) -> str:
        value = self.obj.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self._fail(key, "a non-empty string" if required else "a string", value)
        return value

    def flag(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings", value)
        return tuple(value)

    def checksum(self, key: str) -> str:
        value = self.text(key)
        if value and not HEX64.match(value):
            raise self._fail(key, "64 lowercase hex digits (a sha256)", value)
        return value

    def sub(self, key: str) -> _Fields | None:
        value = self.obj.get(key)
        return None if value is None else _Fields(value, f"{self.where}.{key}", self.path)


def _type(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }
    return names.get(type(value), type(value).__name__)


class _NoAliasLoader(yaml.SafeLoader):
    """Zarf writes zarf.yaml by marshalling, never with anchors; aliases would let a small file expand
    enormously in everything that walks the document (`inspect --json`), so they are refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                problem="YAML aliases (*name) are not allowed in a package config", problem_mark=mark
            )
        return super().compose_node(parent, index)


def parse_config(data: bytes, path: str) -> PackageConfig:
    if len(data) > MAX_YAML:
        raise ArchiveError(
            f"is {len(data)} bytes, more than the {MAX_YAML} allowed for a package config",
            member="zarf.yaml",
            path=path,
            hint="the package is malformed or hostile",
        )
    try:
        doc = yaml.load(data.decode("utf-8"), Loader=_NoAliasLoader)
    except UnicodeDecodeError as e:
        raise ArchiveError(f"is not UTF-8 text (byte {e.start})", member="zarf.yaml", path=path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ArchiveError(
            f"is not valid YAML: {problem}{at}", member="zarf.yaml", path=path, hint="the package config is damaged"
        ) from None
    except RecursionError:
        raise ArchiveError("YAML nests too deeply", member="zarf.yaml", path=path) from None
    top = _Fields(doc, "zarf.yaml", path)
    kind = top.text("kind", required=True)
    if kind not in KINDS:
        raise ArchiveError(
            f"kind must be {' or '.join(KINDS)}, found {kind!r:.40}",
            member="zarf.yaml",
            path=path,
            hint="not a Zarf package config",
        )
    meta = top.sub("metadata") or _Fields({}, "metadata", path)
    metadata = Metadata(
        name=meta.text("name", required=True),
        version=meta.text("version"),
        description=meta.text("description"),
        architecture=meta.text("architecture"),
        uncompressed=bool(meta.flag("uncompressed")),
        aggregate_checksum=meta.checksum("aggregateChecksum"),
    )
    b = top.sub("build") or _Fields({}, "build", path)
    build = Build(
        version=b.text("version"),
        timestamp=b.text("timestamp"),
        architecture=b.text("architecture"),
        user=b.text("user"),
        terminal=b.text("terminal"),
        flavor=b.text("flavor"),
        aggregate_checksum=b.checksum("aggregateChecksum"),
        migrations=b.strings("migrations"),
    )
    listed = top.obj.get("components")
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        raise ArchiveError(
            f"zarf.yaml.components must be a list, found {_type(listed)}",
            member="zarf.yaml",
            path=path,
            hint="the package config is malformed",
        )
    components = []
    for i, c in enumerate(listed):
        f = _Fields(c, f"components[{i}]", path)
        components.append(
            Component(
                name=f.text("name", required=True),
                description=f.text("description"),
                required=f.flag("required"),
                images=f.strings("images"),
            )
        )
    return PackageConfig(kind, metadata, build, tuple(components), doc)
