"""The bundled demo image: built deterministically in memory, written once to the user cache as a crane
tarball (the seed-image.tar format), so `regtui` with no archive has something real to show and serve."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

from regtui.oci.cache import cache_dir, write_atomic

EPOCH = 1700000000  # fixed times keep every digest stable across runs and machines
CREATED = "2023-11-14T22:13:20Z"

_FILES = [
    (
        "base",
        "/bin/sh -c #(nop) ADD file:os-release in /",
        {
            "etc/os-release": 'NAME="regtui demo"\nID=regtui-demo\nVERSION_ID=1.0\n',
            "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww:x:101:101:www:/srv/www:/bin/false\n",
            "bin/hello": "#!/bin/sh\necho 'hello from the regtui demo image'\n",
        },
    ),
    (
        "site",
        "COPY site/ /srv/www/ # buildkit",
        {
            "srv/www/index.html": "<!doctype html><title>regtui demo</title>\n"
            + "".join(f"<p>line {i}: a seed registry serves this page</p>\n" for i in range(200)),
            "srv/www/robots.txt": "User-agent: *\nDisallow: /\n",
        },
    ),
    (
        "config",
        "RUN /bin/sh -c mkdir -p /etc/demo && printf 'port: 8080\\n' > /etc/demo/config.yml # buildkit",
        {"etc/demo/config.yml": "port: 8080\nlog_level: info\n"},
    ),
]


def _layer(files: dict[str, str]) -> tuple[bytes, bytes]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        dirs = sorted({os.path.dirname(n) for n in files if os.path.dirname(n)})
        for d in dirs:
            info = tarfile.TarInfo(d + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tf.addfile(info)
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), EPOCH
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tf.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(tar_bytes)
    return tar_bytes, out.getvalue()


def build_demo() -> bytes:
    """The demo archive's bytes (a crane tarball with one image, tags demo/hello:1.0 and :latest)."""
    layers = [(_layer(files), created_by) for _name, created_by, files in _FILES]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "author": "regtui",
        "config": {
            "User": "www",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEMO_MODE=1"],
            "Entrypoint": ["/bin/hello"],
            "Cmd": ["--serve", "/srv/www"],
            "WorkingDir": "/srv/www",
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/var/cache/demo": {}},
            "Labels": {
                "org.opencontainers.image.title": "regtui demo",
                "org.opencontainers.image.description": "A tiny image bundled with regtui",
                "org.opencontainers.image.version": "1.0",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for (t, _g), _c in layers]},
        "history": [
            {"created": CREATED, "created_by": layers[0][1]},
            {"created": CREATED, "created_by": "/bin/sh -c #(nop)  ENV DEMO_MODE=1", "empty_layer": True},
            {"created": CREATED, "created_by": layers[1][1], "comment": "buildkit.dockerfile.v0"},
            {"created": CREATED, "created_by": layers[2][1], "comment": "buildkit.dockerfile.v0"},
            {"created": CREATED, "created_by": 'CMD ["--serve" "/srv/www"]', "empty_layer": True},
        ],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_name = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    members: list[tuple[str, bytes]] = [(config_name, config_bytes)]
    layer_names = []
    for (_tar, gz), _c in layers:
        name = hashlib.sha256(gz).hexdigest() + ".tar.gz"
        layer_names.append(name)
        members.append((name, gz))
    manifest = [{"Config": config_name, "RepoTags": ["demo/hello:1.0", "demo/hello:latest"], "Layers": layer_names}]
    members.append(("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def demo_archive_path() -> str:
    """Path of the demo archive in the cache, written on first use (and again if it was damaged)."""
    data = build_demo()
    path = os.path.join(cache_dir("demo"), f"regtui-demo-{hashlib.sha256(data).hexdigest()[:12]}.tar")
    try:
        if os.path.getsize(path) == len(data):
            return path
    except OSError:
        pass
    write_atomic(path, data)
    return path
