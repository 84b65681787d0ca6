"""The TUI's widget-free parts: the live request ring, request filters, pull commands, manifest forms."""

from __future__ import annotations

from regtui.oci import mediatypes as mt
from regtui.oci import open_archive
from regtui.registry.events import (
    PullProgress,
    RequestFinished,
    RequestProgress,
    RequestStarted,
    ServerState,
)
from regtui.tui.facts import (
    client_choices,
    config_summary,
    human_size,
    layer_history,
    manifest_forms,
    pull_commands,
    root_image,
)
from regtui.tui.live import LiveState, row_matches


def _start(i: int, path: str = "/v2/", ua: str = "skopeo/1.9.3") -> RequestStarted:
    return RequestStarted(i, 1000.0 + i, "127.0.0.1:4000", "GET", path, "registry", None, "blob", ua)


def test_ring_keeps_the_last_n_requests_and_counts_all():
    live = LiveState(capacity=3)
    for i in range(5):
        live.apply(_start(i))
    assert list(live.rows) == [2, 3, 4]
    assert live.requests_total == 5
    ch = live.take_changes()
    assert ch.evicted == {0, 1} and ch.rows == {2, 3, 4}
    assert not live.take_changes()


def test_bytes_counted_once_from_progress_and_finish():
    live = LiveState()
    live.apply(_start(1, "/v2/registry/blobs/sha256:aa"))
    live.apply(RequestProgress(1, 600, 1000))
    live.apply(RequestFinished(1, 1001.0, 200, 1000, 0.5))
    live.apply(_start(2))
    live.apply(RequestFinished(2, 1002.0, 404, 120, 0.01, "MANIFEST_UNKNOWN"))
    assert live.bytes_total == 1120
    assert live.rows[1].status == 200 and live.rows[2].error_code == "MANIFEST_UNKNOWN"


def test_filters_by_status_class_code_words_and_errors():
    live = LiveState()
    for i, (path, status) in enumerate(
        [("/v2/", 200), ("/v2/x/manifests/latest", 404), ("/v2/registry/blobs/sha256:aa", 500)]
    ):
        live.apply(_start(i, path))
        live.apply(RequestFinished(i, 0, status, 0, 0.0))
    live.apply(_start(9, "/v2/registry/blobs/sha256:bb"))
    rows = list(live.rows.values())
    pick = lambda q: [r.id for r in rows if row_matches(r, q)]
    assert pick("4xx") == [1]
    assert pick("status:5xx") == [2]
    assert pick("err") == [1, 2]
    assert pick("blobs") == [2, 9]
    assert pick("blobs active") == [9]
    assert pick("404 manifests") == [1]
    assert pick("skopeo") == [0, 1, 2, 9]
    assert pick("crane") == []


def test_pulls_are_bounded_forgetting_finished_ones_first():
    live = LiveState()
    live.pull_capacity = 2
    mk = lambda k, fin: PullProgress(
        k, "c", "ua", "registry", "2.8.1", "sha256:x", 5, 5 if fin else 1, 100, 100 if fin else 10, 0.0, 1.0, fin
    )
    live.apply(mk("a", True))
    live.apply(mk("b", False))
    live.apply(mk("c", False))
    assert set(live.pulls) == {"b", "c"}
    live.apply(ServerState("serving", url="http://127.0.0.1:1"))
    assert live.take_changes().server and live.server.url == "http://127.0.0.1:1"


def test_pull_commands_use_the_server_address():
    cmds = dict(pull_commands("127.0.0.1:5123", "registry:2.8.1"))
    assert cmds["docker"] == "docker pull 127.0.0.1:5123/registry:2.8.1"
    assert cmds["skopeo"] == "skopeo copy --src-tls-verify=false docker://127.0.0.1:5123/registry:2.8.1 oci:registry"
    assert cmds["crane"] == "crane pull --insecure 127.0.0.1:5123/registry:2.8.1 registry.tar"
    assert cmds["ctr"] == "ctr image pull --plain-http 127.0.0.1:5123/registry:2.8.1"


def test_forms_and_client_choices_of_the_seed_image(seed_tar):
    archive = open_archive(str(seed_tar))
    root = archive.roots[0]
    forms = manifest_forms(root, root_image(root))
    assert [f.manifest.media_type for f in forms] == [mt.DOCKER_MANIFEST, mt.OCI_MANIFEST]
    assert [f.default for f in forms] == [True, False]
    got = {name: digest for name, digest, _ in client_choices(root)}
    assert got["docker / containerd"] == forms[0].manifest.digest
    assert got["OCI only"] == forms[1].manifest.digest


def test_index_forms_show_the_index_and_the_platform_child(multiarch_dir):
    archive = open_archive(str(multiarch_dir))
    root = archive.roots[0]
    image = root_image(root)
    assert str(image.platform) == "linux/amd64"
    forms = manifest_forms(root, image)
    assert forms[0].manifest.media_type == mt.OCI_INDEX and forms[0].default
    assert "linux/amd64" in forms[1].label
    assert {name: d for name, d, _ in client_choices(root)}["Docker v2 only"] == "—"


def test_config_summary_and_history(seed_tar):
    image = open_archive(str(seed_tar)).images()[0]
    summary = dict(config_summary(image))
    assert summary["platform"] == "linux/amd64"
    assert summary["config digest"] == image.config.descriptor.digest
    history = layer_history(image)
    assert len(history) == len(image.layers) and all(history)


def test_human_size():
    assert human_size(None) == "—"
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(3 * 1024**3) == "3.0 GiB"


def test_config_summary_survives_mistyped_config_fields(seed_tar):
    """Configs come from untrusted archives: wrong JSON types must render, not crash the Config view."""
    from regtui.oci import open_archive
    from regtui.tui.facts import config_summary

    [img] = open_archive(str(seed_tar)).images()
    img.config.json = {
        "os": ["linux"],
        "architecture": 7,
        "config": {"Volumes": 3, "Labels": ["a"], "Env": "X=1", "ExposedPorts": None, "Cmd": {"a": 1}},
    }
    rows = dict(config_summary(img))
    assert rows["platform"] == "['linux']/7"
    assert rows["volumes"] == rows["exposed ports"] == rows["env"] == rows["labels"] == "—"
