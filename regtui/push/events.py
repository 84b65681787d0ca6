"""What a push reports while it runs: plain event objects, so the CLI (rich) and the TUI render the same stream."""

from __future__ import annotations

from dataclasses import dataclass, field

from regtui.oci.units import human_size


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
    action: str  # "uploaded", "mounted", "present" (the registry had it), "missing" (dry run: would upload)
    sent: int = 0  # bytes actually sent, retries included
    source: str = ""  # the repository a mount came from


@dataclass(frozen=True)
class ManifestDone:
    repo: str
    ref: str  # tag or digest
    digest: str
    media_type: str
    action: str  # "pushed", "present", "missing" (dry run)


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
            return (f"dry run: {len(self.missing)} blobs to upload ({human_size(self.bytes_total)}), "
                    f"{len(self.present)} already there, "
                    f"{len(self.manifests_pushed)} manifests and tags to push, "
                    f"{len(self.manifests_present)} up to date")
        return (f"pushed {len(self.uploaded)} blobs ({human_size(self.bytes_sent)} sent), "
                f"mounted {len(self.mounted)}, "
                f"{len(self.present)} already there; {len(self.manifests_pushed)} manifests and tags pushed, "
                f"{len(self.manifests_present)} up to date, in {self.elapsed:.1f}s")


@dataclass(frozen=True)
class Finished:
    summary: Summary
