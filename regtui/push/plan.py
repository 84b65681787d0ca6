"""What a push sends where: per target repository, the blobs, the manifests (children before indexes) and the
tags, all taken from the model as regtui serves them."""

from __future__ import annotations

from dataclasses import dataclass, field

from regtui.oci.digests import short
from regtui.oci.model import Archive, Image, ImageIndex, Location, Manifest, Root
from regtui.oci.refs import MAX_NAME, is_name
from regtui.push.errors import PushError
from regtui.push.names import TagRule, Target, map_tag, unused_rules


@dataclass
class BlobItem:
    digest: str
    size: int
    media_type: str
    location: Location | None  # None: not in the archive (the registry must already have it)
    what: str  # "config of registry:2.8.1", "layer 3 of ...", for messages


@dataclass
class RepoPlan:
    repo: str  # full repository path in the target registry (prefix included)
    blobs: dict[str, BlobItem] = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)  # pushed by digest, in this order
    tags: dict[str, Manifest] = field(default_factory=dict)  # pushed last


@dataclass
class Plan:
    target: Target
    repos: list[RepoPlan]
    notes: list[str] = field(default_factory=list)

    def blob_groups(self) -> dict[str, tuple[BlobItem, list[RepoPlan]]]:
        """Each distinct blob with every repository that needs it (one upload, then mounts)."""
        out: dict[str, tuple[BlobItem, list[RepoPlan]]] = {}
        for rp in self.repos:
            for d, item in rp.blobs.items():
                if d not in out:
                    out[d] = (item, [])
                out[d][1].append(rp)
        return out

    def total_bytes(self) -> int:
        return sum(item.size * len(rps) for item, rps in self.blob_groups().values())


def _name_of(root: Root, tag: str | None) -> str:
    return f"{root.repository}:{tag}" if tag else f"{root.repository}@{short(root.manifests[0].digest)}"


def _add(rp: RepoPlan, node: Root, archive: Archive, label: str, notes: list[str]) -> None:
    if isinstance(node, ImageIndex):
        for child in node.children:
            _add(rp, child, archive, label, notes)
    else:
        _add_image(rp, node, archive, label, notes)
    m = node.manifests[0]
    if all(x.digest != m.digest for x in rp.manifests):
        rp.manifests.append(m)


def _add_image(rp: RepoPlan, img: Image, archive: Archive, label: str, notes: list[str]) -> None:
    where = f"{label} ({img.platform})" if img.platform and img.platform.os else label
    c = img.config.descriptor
    rp.blobs.setdefault(
        c.digest,
        BlobItem(
            c.digest, c.size, c.media_type, img.config.location or archive.blobs.get(c.digest), f"config of {where}"
        ),
    )
    for i, layer in enumerate(img.layers):
        d = layer.descriptor
        loc = layer.location or archive.blobs.get(d.digest)
        if loc is None and d.urls:
            note = f"foreign layer {short(d.digest)} of {where} is not pushed (clients fetch it from {d.urls[0]})"
            if note not in notes:
                notes.append(note)
            continue
        rp.blobs.setdefault(d.digest, BlobItem(d.digest, d.size, d.media_type, loc, f"layer {i} of {where}"))


def build_plan(archive: Archive, target: Target, rules: list[TagRule] | None = None) -> Plan:
    rules = rules or []
    repos: dict[str, RepoPlan] = {}
    seen: set[tuple[str, str | None]] = set()
    landed: dict[tuple[str, str], str] = {}  # (repo, tag) -> source name, to catch two images on one tag
    notes: list[str] = []
    for root in archive.roots:
        dests: dict[str, list[str]] = {}
        source_tags: list[str | None] = [*root.tags] or [None]
        for tag in source_tags:
            seen.add((root.repository, tag))
            repo, new_tag = map_tag(rules, root.repository, tag)
            dests.setdefault(repo, [])
            if new_tag:
                dests[repo].append(new_tag)
        for repo, tags in dests.items():
            full = target.repository(repo)
            if not is_name(full) or len(target.host) + 1 + len(full) > MAX_NAME:
                raise PushError(
                    f"{full!r} is not a valid repository name in the registry",
                    where=_name_of(root, root.tags[0] if root.tags else None),
                    hint="use --tag-map OLD=NEW to give it a valid name",
                )
            rp = repos.setdefault(full, RepoPlan(full))
            _add(rp, root, archive, _name_of(root, tags[0] if tags else None), notes)
            for t in tags:
                src = _name_of(root, t)
                if (full, t) in landed and landed[(full, t)] != src:
                    raise PushError(
                        f"{landed[(full, t)]} and {src} would both land at {full}:{t}",
                        hint="use --tag-map to give one of them another name",
                    )
                landed[(full, t)] = src
                rp.tags[t] = root.manifests[0]
    for r in unused_rules(rules, seen):
        old = f"{r.old_repo}:{r.old_tag}" if r.old_tag else r.old_repo
        have = ", ".join(sorted({f"{a}:{b}" if b else a for a, b in seen if a}))
        raise PushError(f"--tag-map {old}=...: the archive has no {old}", hint=f"it holds {have}")
    return Plan(target, list(repos.values()), notes)
