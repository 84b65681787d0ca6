"""The Zarf package domain on the real Zarf-built package: model, names, verification, hostile variants."""

from __future__ import annotations

import zlib

import pytest

from regtui.oci import open_archive
from regtui.oci.errors import ArchiveError
from regtui.oci.verify import verify_archive
from regtui.oci.zarf.names import zarf_name
from tests.helpers.zarf_support import ZARF_FIXTURE, fixture_members, sha, variant

FIXTURE = str(ZARF_FIXTURE)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_zarf_names_match_zarfs_own_vectors():
    # From Zarf's src/pkg/transform/image_test.go (target host left out).
    vectors = {
        "nginx": "library/nginx:latest-zarf-3793515731",
        "nginx:1.23.3": "library/nginx:1.23.3-zarf-3793515731",
        "defenseunicorns/zarf-agent:v0.22.1": "defenseunicorns/zarf-agent:v0.22.1-zarf-4283503412",
        "busybox:latest@sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79": "library/busybox@sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79",  # noqa: E501 - Zarf's test vectors, whole
        "ghcr.io/stefanprodan/podinfo:6.3.3": "stefanprodan/podinfo:6.3.3-zarf-2985051089",
        "registry1.dso.mil/ironbank/opensource/defenseunicorns/zarf/zarf-agent:v0.25.0": "ironbank/opensource/defenseunicorns/zarf/zarf-agent:v0.25.0-zarf-2003217571",  # noqa: E501 - Zarf's test vectors, whole
    }
    for ref, want in vectors.items():
        assert zarf_name(ref).rewritten == want, ref


def test_real_package_model():
    a = open_archive(FIXTURE)
    pkg = a.package
    assert a.format == "zarf-package" and pkg.form == "tar"
    assert pkg.config.kind == "ZarfPackageConfig"
    m, b = pkg.config.metadata, pkg.config.build
    assert (m.name, m.version, m.architecture, m.uncompressed) == ("test-uncompressed", "0.0.1", "amd64", True)
    assert (b.version, b.user, b.terminal) == ("v0.48.0", "ascii", "puck")
    assert b.migrations == ("scripts-to-actions", "pluralize-set-variable")
    assert [c.name for c in pkg.config.components] == ["test"]
    assert pkg.config.components[0].images == ("docker.io/library/alpine:3.20",)
    assert len(pkg.checksums) == 7 and pkg.signatures == []
    assert pkg.config.aggregate_checksum == (
        sha((ZARF_FIXTURE_MEMBERS := fixture_members())["checksums.txt"]),
        "metadata.aggregateChecksum",
    )
    assert ZARF_FIXTURE_MEMBERS
    # The image, named by base.name, tagged with its Zarf-rewritten tag too; read in place from the tar.
    [root] = a.roots
    crc = zlib.crc32(b"docker.io/library/alpine")
    assert root.repository == "alpine" and root.tags == ["3.20", f"3.20-zarf-{crc}"]
    assert all(loc.path == FIXTURE for loc in a.blobs.values())
    [img] = pkg.images
    assert img.root is root and img.components == ["test"]
    assert pkg.rewritten_names(root) == [f"library/alpine:3.20-zarf-{crc}"]


def test_real_package_verifies():
    report = verify_archive(open_archive(FIXTURE))
    assert report.ok, [p.line() for p in report.problems]
    kinds = {c.check for c in report.checks}
    assert {"blob", "diff_id", "aggregate", "checksums", "components", "signature"} <= kinds
    listed = {c.subject for c in report.checks if c.check == "checksums" and c.ok}
    assert {"sboms.tar", "components/test.tar", "images/index.json"} <= listed and len(listed) == 7


def _errors(path) -> list[str]:
    return [p.line() for p in verify_archive(open_archive(str(path))).errors()]


def test_tampered_component_is_named(tmp_path):
    data = bytearray(fixture_members()["components/test.tar"])
    data[600] ^= 1
    errs = _errors(variant(tmp_path / "t.tar", {"components/test.tar": bytes(data)}))
    assert len(errs) == 1 and "components/test.tar" in errs[0] and "changed" in errs[0]


def test_tampered_blob_fails_both_checks(tmp_path):
    name = "images/blobs/sha256/66a3d608f3fa52124f8463e9467f170c784abd549e8216aa45c6960b00b4b79b"
    data = bytearray(fixture_members()[name])
    data[-100] ^= 1
    errs = _errors(variant(tmp_path / "t.tar", {name: bytes(data)}))
    assert any("checksums" in e and name in e for e in errs)
    assert any(e.startswith("digest sha256:66a3d6") for e in errs)


def test_missing_and_added_files_and_aggregate(tmp_path):
    members = fixture_members()
    errs = _errors(variant(tmp_path / "a.tar", {"sboms.tar": None, "extra/file": b"x"}))
    assert any("sboms.tar" in e and "missing" in e for e in errs)
    assert any("extra/file" in e and "does not list" in e for e in errs)
    sums = members["checksums.txt"] + b"0" * 64 + b" extra/file\n"
    errs = _errors(variant(tmp_path / "b.tar", {"checksums.txt": sums, "extra/file": b"x"}))
    assert any(e.startswith("aggregate") and "metadata.aggregateChecksum" in e for e in errs)


def test_component_image_missing_from_images(tmp_path):
    y = fixture_members()["zarf.yaml"].replace(
        b"  - docker.io/library/alpine:3.20", b"  - docker.io/library/alpine:3.20\n  - ghcr.io/org/app:1"
    )
    errs = _errors(variant(tmp_path / "c.tar", {"zarf.yaml": y}))
    assert errs == [e for e in errs if "ghcr.io/org/app:1" in e] and len(errs) == 1


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        (b"kind: [unclosed", "is not valid YAML"),
        (b"- a list\n", "zarf.yaml must be a mapping, found a list"),
        (b"kind: Deployment\nmetadata: {name: x}\n", "kind must be ZarfPackageConfig or ZarfInitConfig"),
        (b"kind: ZarfPackageConfig\nmetadata: {name: 7}\n", "metadata.name must be a non-empty string, found a number"),
        (b"kind: ZarfPackageConfig\nmetadata: {name: x}\ncomponents: {a: 1}\n", "components must be a list"),
        (
            b"kind: ZarfPackageConfig\nmetadata: {name: x}\ncomponents:\n- name: a\n  images: nginx\n",
            "components[0].images must be a list of strings",
        ),
        (
            b"kind: ZarfPackageConfig\nmetadata: {name: x}\ncomponents:\n- name: a\n  required: 'yes'\n",
            "components[0].required must be true or false",
        ),
        (b"kind: ZarfPackageConfig\nmetadata: {name: x, aggregateChecksum: abc}\n", "64 lowercase hex digits"),
        (b"a: &x [1]\nb: *x\n", "YAML aliases"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_zarf_yaml_is_one_line(tmp_path, yaml_text, message):
    with pytest.raises(ArchiveError) as e:
        open_archive(str(variant(tmp_path / "y.tar", {"zarf.yaml": yaml_text})))
    line = e.value.line()
    assert message in line and "\n" not in line and "zarf.yaml" in line


@pytest.mark.parametrize(
    "line, message",
    [
        (b"0" * 64 + b" ../../etc/passwd\n", "a path outside the package"),
        (b"0" * 64 + b" /etc/passwd\n", "a path outside the package"),
        (b"nothex images/index.json\n", "is not '<sha256> <path>'"),
    ],
)
def test_hostile_checksums_refused(tmp_path, line, message):
    sums = fixture_members()["checksums.txt"] + line
    with pytest.raises(ArchiveError) as e:
        open_archive(str(variant(tmp_path / "h.tar", {"checksums.txt": sums})))
    assert message in e.value.line() and "checksums.txt" in e.value.line()


def test_signature_presence_and_format(tmp_path):
    bundle = b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'
    a = open_archive(str(variant(tmp_path / "s.tar", {"zarf.bundle.sig": bundle})))
    [sig] = a.package.signatures
    assert sig.file == "zarf.bundle.sig" and sig.format == "Sigstore bundle" and "v0.3" in sig.detail
    report = verify_archive(a)
    assert report.ok and any(c.check == "signature" and "not verified" in c.detail for c in report.checks)
    a = open_archive(str(variant(tmp_path / "l.tar", {"zarf.yaml.sig": b"MEUCIQ..."})))
    assert [s.file for s in a.package.signatures] == ["zarf.yaml.sig"]
