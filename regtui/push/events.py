"""What a push reports while it runs: plain event objects, so the CLI (rich) and the TUI render the same stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from regtui.oci.digests import short
from regtui.oci.units import human_size

# "present": the registry had it; "missing": a dry run's would-upload / would-push
BlobAction = Literal["uploaded", "mounted", "present", "missing"]
ManifestAction = Literal["pushed", "present", "missing"]
_DRY = {"missing": "would upload", "present": "already there"}
_DRY_MANIFEST = {"missing": "would push", "present": "up to date"}


@dataclass(frozen=True)
class BlobStarted:
    repo: str
    digest: str
    size: int


@dataclass(frozen=True)
class BlobProgress:
    repo: str
    digest: str
    done: int  # bytes of this blob the registry has so far (drops back to 0 when an upload restarts)
    size: int


@dataclass(frozen=True)
class BlobDone:
    repo: str
    digest: str
    size: int
    action: BlobAction
    sent: int = 0  # bytes actually sent, retries included
    source: str = ""  # the repository a mount came from

    def line(self, dry_run: bool = False) -> str:
        """One line for people: `uploaded      blob     repo@sha256:…  1.2 MiB`."""
        what = _DRY.get(self.action, self.action) if dry_run else self.action
        if dry_run and self.action == "missing" and self.source:
            what = "would mount"
        src = f" from {self.source}" if (self.source and self.action == "mounted") or (dry_run and self.source) else ""
        return f"{what:<13} blob     {self.repo}@{short(self.digest)}  {human_size(self.size)}{src}"


@dataclass(frozen=True)
class ManifestDone:
    repo: str
    ref: str  # tag or digest
    digest: str
    media_type: str
    action: ManifestAction

    def line(self, dry_run: bool = False) -> str:
        """One line for people: `pushed        tag      repo:1.0  sha256:…  <media type>`."""
        what = _DRY_MANIFEST.get(self.action, self.action) if dry_run else self.action
        tagged = not self.ref.startswith("sha256:")
        ref = f"{self.repo}:{self.ref}" if tagged else f"{self.repo}@{short(self.ref)}"
        kind = "tag" if tagged else "manifest"
        return f"{what:<13} {kind:<8} {ref}  {short(self.digest)}  {self.media_type}"


@dataclass(frozen=True)
class Retry:
    what: str
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True)
class Note:
    """Something the user should know that is not an error (a foreign layer left out, an unused --tag-map)."""

    text: str


@dataclass
class Summary:
    uploaded: list[str] = field(default_factory=list)  # "repo@digest" of blobs sent
    mounted: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # dry run: what would be uploaded
    bytes_sent: int = 0
    bytes_total: int = 0  # sum of the sizes of all blobs that had to be uploaded
    manifests_pushed: list[str] = field(default_factory=list)  # "repo@digest" / "repo:tag"
    manifests_present: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    dry_run: bool = False

    def line(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {len(self.missing)} blobs to upload ({human_size(self.bytes_total)}), "
                f"{len(self.present)} already there, "
                f"{len(self.manifests_pushed)} manifests and tags to push, "
                f"{len(self.manifests_present)} up to date"
            )
        return (
            f"pushed {len(self.uploaded)} blobs ({human_size(self.bytes_sent)} sent), "
            f"mounted {len(self.mounted)}, "
            f"{len(self.present)} already there; {len(self.manifests_pushed)} manifests and tags pushed, "
            f"{len(self.manifests_present)} up to date, in {self.elapsed:.1f}s"
        )


@dataclass(frozen=True)
class Finished:
    summary: Summary
