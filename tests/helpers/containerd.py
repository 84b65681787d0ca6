"""A containerd of the test's own (temp root, state and socket), for pulls with a real `ctr`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.support import require_tool, stop_process


@contextmanager
def running_containerd(base: Path) -> Iterator[str]:
    """Start containerd under `base`, yield its socket path, stop it by PID."""
    binary = require_tool("containerd")
    ctr = require_tool("ctr")
    sock = base / "c.sock"
    config = base / "config.toml"
    # Isolated content: each test's namespace has to fetch every blob itself, so re-hashing proves the pull.
    config.write_text(f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
""")
    with open(base / "containerd.log", "wb") as log:
        proc = subprocess.Popen([binary, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                if (
                    sock.exists()
                    and subprocess.run(
                        [ctr, "--address", str(sock), "version"], capture_output=True, timeout=10, check=False
                    ).returncode
                    == 0
                ):
                    break
                assert proc.poll() is None, (base / "containerd.log").read_text()
                time.sleep(0.2)
            else:
                pytest.fail("containerd did not start: " + (base / "containerd.log").read_text()[-2000:])
            yield str(sock)
        finally:
            stop_process(proc, 15)
