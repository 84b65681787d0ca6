"""The package summary `regtui inspect` shows first (and `--json` carries), and the TUI's Package view."""

from __future__ import annotations

from typing import Any

from regtui.oci.zarf.package import FORMS, ZarfImage, ZarfPackage


def _image(img: ZarfImage) -> dict[str, Any]:
    return {
        "reference": img.name.original,
        "zarf_reference": img.name.rewritten,
        "digest": img.root.manifests[0].digest if img.root is not None else None,
        "in_package": img.root is not None,
        "components": list(img.components),
    }


def package_dict(pkg: ZarfPackage) -> dict[str, Any]:
    cfg = pkg.config
    m, b = cfg.metadata, cfg.build
    want, where = cfg.aggregate_checksum
    return {
        "kind": cfg.kind,
        "name": m.name,
        "version": m.version,
        "description": m.description,
        "architecture": pkg.architecture,
        "form": pkg.form,
        "form_name": FORMS.get(pkg.form, pkg.form),
        "cache_path": pkg.cache_path,
        "build": {
            "version": b.version,
            "timestamp": b.timestamp,
            "architecture": b.architecture,
            "user": b.user,
            "terminal": b.terminal,
            "flavor": b.flavor,
            "migrations": list(b.migrations),
        },
        "aggregate_checksum": {
            "expected": want or None,
            "field": where or None,
            "found": pkg.checksums_sha256,
            "ok": (want == pkg.checksums_sha256) if want else None,
        },
        "checksummed_files": len(pkg.checksums),
        "signed": bool(pkg.signatures),
        "signatures": [{"file": s.file, "format": s.format, "detail": s.detail} for s in pkg.signatures],
        "components": [
            {
                "name": c.name,
                "description": c.description,
                "required": c.required,
                "images": [_image(i) for i in pkg.component_images(c)],
            }
            for c in cfg.components
        ],
        "images": [_image(i) for i in pkg.images],
    }
