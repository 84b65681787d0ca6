"""What `regtui inspect` shows, as plain data: the dict behind --json and the CLI's and TUI's rendering."""

from __future__ import annotations

from typing import Any, TypeVar

from regtui.oci.model import Archive, Image, ImageIndex, Root

T = TypeVar("T")


def config_summary(img: Image) -> dict[str, Any]:
    j = img.config.json
    c = _typed(j.get("config"), dict)
    return {
        "digest": img.config.descriptor.digest,
        "media_type": img.config.descriptor.media_type,
        "size": img.config.descriptor.size,
        "os": j.get("os", ""),
        "architecture": j.get("architecture", ""),
        "variant": j.get("variant", ""),
        "created": j.get("created", ""),
        "author": j.get("author", ""),
        "user": c.get("User", ""),
        "entrypoint": c.get("Entrypoint"),
        "cmd": c.get("Cmd"),
        "working_dir": c.get("WorkingDir", ""),
        "env": [str(e) for e in _typed(c.get("Env"), list)],
        "labels": {k: str(v) for k, v in _typed(c.get("Labels"), dict).items()},
        "exposed_ports": sorted(_typed(c.get("ExposedPorts"), dict)),
        "volumes": sorted(_typed(c.get("Volumes"), dict)),
    }


def _typed(value: Any, kind: type[T]) -> T:
    """A config field of the type the spec gives it, else empty: configs come from untrusted archives."""
    return value if isinstance(value, kind) else kind()


def image_dict(img: Image) -> dict[str, Any]:
    return {
        "repository": img.repository,
        "tags": list(img.tags),
        "platform": str(img.platform) if img.platform else None,
        "source": img.source,
        "manifests": [
            {"media_type": m.media_type, "digest": m.digest, "size": m.size, "origin": m.origin, "default": i == 0}
            for i, m in enumerate(img.manifests)
        ],
        "config": config_summary(img),
        "layers": [
            {
                "index": i,
                "digest": l.digest,
                "media_type": l.descriptor.media_type,
                "size": l.descriptor.size,
                "compression": l.compression,
                "diff_id": l.diff_id,
                "created_by": l.history.created_by if l.history else None,
                "member": l.location.member if l.location else None,
            }
            for i, l in enumerate(img.layers)
        ],
        "history": [
            {"created": h.created, "created_by": h.created_by, "comment": h.comment, "empty_layer": h.empty_layer}
            for h in img.history
        ],
    }


def root_dict(root: Root) -> dict[str, Any]:
    if isinstance(root, ImageIndex):
        return {
            "kind": "index",
            "repository": root.repository,
            "tags": list(root.tags),
            "manifest": {
                "media_type": root.manifest.media_type,
                "digest": root.manifest.digest,
                "size": root.manifest.size,
                "origin": root.manifest.origin,
            },
            "children": [root_dict(c) for c in root.children],
        }
    return {"kind": "image", **image_dict(root)}


def inspect_dict(archive: Archive) -> dict[str, Any]:
    from regtui.oci.zarf.summary import package_dict

    return {
        "path": archive.path,
        "format": archive.format,
        "format_name": archive.format_name,
        **({"package": package_dict(archive.package)} if archive.package is not None else {}),
        "blob_bytes": archive.total_size(),
        "roots": [root_dict(r) for r in archive.roots],
        "warnings": [p.__dict__ for p in archive.warnings],
    }
