"""Where images land: the target registry (host, scheme, prefix) and each image's repository and tags there."""

from __future__ import annotations

from dataclasses import dataclass

from regtui.oci.refs import familiar, host_name, is_loopback_host, is_name, is_tag, registry_host, split_scheme
from regtui.push.errors import PushError


@dataclass(frozen=True)
class Target:
    """`REGISTRY[/PREFIX]` as given: host[:port], an optional path prefix, and an explicit scheme if any."""

    host: str  # host[:port], as written (lowercased)
    prefix: str = ""
    scheme: str | None = None  # "http" / "https" when the user wrote one

    @property
    def hostname(self) -> str:
        return host_name(self.host)

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def repository(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


def parse_target(text: str) -> Target:
    """Parse `[http(s)://]host[:port][/prefix]`: the first component is always the host (see oci.refs)."""
    scheme, raw = split_scheme(text.strip())
    raw = raw.rstrip("/")
    if not raw:
        raise PushError(f"registry {text!r} is empty (expected HOST[:PORT][/PREFIX], e.g. registry.local:5000/team)")
    host, _, prefix = raw.partition("/")
    if host.startswith("[") and "]" not in host:
        raise PushError(f"registry {text!r}: unterminated IPv6 address (write [::1]:5000)")
    host = registry_host(host)  # Docker Hub's names: its API host, as docker uses
    if prefix and not is_name(prefix):
        raise PushError(
            f"registry prefix {prefix!r} is not a valid repository path (lowercase letters, digits, . _ - and /)"
        )
    return Target(host, prefix, scheme)


@dataclass(frozen=True)
class TagRule:
    old_repo: str
    old_tag: str | None
    new_repo: str
    new_tag: str | None


def _split(ref: str, where: str) -> tuple[str, str | None]:
    slash, colon = ref.rfind("/"), ref.rfind(":")
    name, tag = (ref[:colon], ref[colon + 1 :]) if colon > slash else (ref, None)
    if tag is not None and not is_tag(tag):
        raise PushError(f"--tag-map {where}: invalid tag {tag!r}")
    if name and not is_name(name):
        raise PushError(f"--tag-map {where}: invalid repository name {name!r} (lowercase letters, digits, . _ - /)")
    return name, tag


def parse_tag_map(entries: list[str] | tuple[str, ...]) -> list[TagRule]:
    """`OLD=NEW` entries: `repo:tag=newrepo:newtag`, `repo=newrepo` (all tags), `repo:tag=:newtag`."""
    rules = []
    for e in entries:
        old, sep, new = e.partition("=")
        if not sep or not old or not new:
            raise PushError(f"--tag-map {e!r}: expected OLD=NEW, e.g. registry:2.8.1=mirror/registry:stable")
        old_repo, old_tag = _split(old, repr(e))
        new_repo, new_tag = _split(new, repr(e))
        if not old_repo:
            raise PushError(f"--tag-map {e!r}: OLD needs a repository name")
        if new_tag is not None and old_tag is None:
            raise PushError(f"--tag-map {e!r}: NEW has a tag, so OLD must name one tag (repo:tag)")
        rules.append(TagRule(familiar(old_repo), old_tag, familiar(new_repo) if new_repo else "", new_tag))
    return rules


def map_tag(rules: list[TagRule], repo: str, tag: str | None) -> tuple[str, str | None]:
    """The (repository, tag) an archive (repo, tag) becomes; an exact tag rule wins over a repository rule."""
    for exact in (True, False):
        for r in rules:
            if r.old_repo != repo or (r.old_tag is not None) != exact or (exact and r.old_tag != tag):
                continue
            return (r.new_repo or repo), (r.new_tag if r.new_tag is not None else tag)
    return repo, tag


def unused_rules(rules: list[TagRule], pairs: set[tuple[str, str | None]]) -> list[TagRule]:
    """Rules that matched nothing in the archive (almost always a typo worth reporting)."""
    out = []
    for r in rules:
        if not any(repo == r.old_repo and (r.old_tag is None or r.old_tag == tag) for repo, tag in pairs):
            out.append(r)
    return out
