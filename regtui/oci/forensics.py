"""Digest forensics: make an archive serve the manifest digests users expect, or say precisely why it cannot.

A crane tarball or a `docker save` never stores the registry manifest; we synthesize one, and its digest may
differ from the upstream one a node asks for (`registry:2.8.1@sha256:<upstream>`). The work is in three parts:

- `regtui.oci.expect`: the expectations (`--expect`, `--expect-file`, `--expect-manifest`), parsed and checked;
- `regtui.oci.diff`: the field-by-field diff of our manifest and an upstream one, with a verdict;
- `regtui.oci.apply`: searching the serializations a registry may have stored (`regtui.oci.serializations`),
  serving the one that hashes to the expected digest (`Archive.serve_manifest`), explaining the rest.

This module gathers their public names for callers that use all three (the CLI, the TUI).
"""

from __future__ import annotations

from regtui.oci.apply import ExpectResult, apply_expectations, apply_to_archives, image_label
from regtui.oci.diff import (
    DIFFERENT,
    IDENTICAL,
    RECOMPRESSED,
    SERIALIZATION,
    UNCOMPRESSED,
    DiffRow,
    ManifestDiff,
    Verdict,
    diff_manifests,
    index_child,
)
from regtui.oci.expect import (
    MATCHED_SERVED,
    MATCHED_VARIANT,
    NO_MATCH,
    Expectation,
    ExpectError,
    Status,
    attach_manifest,
    parse_expect_list,
    parse_expectation,
    parse_manifest_bytes,
    read_expect_file,
    read_manifest_file,
)

__all__ = [
    "DIFFERENT",
    "IDENTICAL",
    "MATCHED_SERVED",
    "MATCHED_VARIANT",
    "NO_MATCH",
    "RECOMPRESSED",
    "SERIALIZATION",
    "UNCOMPRESSED",
    "DiffRow",
    "ExpectError",
    "ExpectResult",
    "Expectation",
    "ManifestDiff",
    "Status",
    "Verdict",
    "apply_expectations",
    "apply_to_archives",
    "attach_manifest",
    "diff_manifests",
    "image_label",
    "index_child",
    "parse_expect_list",
    "parse_expectation",
    "parse_manifest_bytes",
    "read_expect_file",
    "read_manifest_file",
]
