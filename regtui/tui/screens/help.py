"""The `?` help screen: what each view shows and every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# regtui

*Esc, `q` or `?` closes this help.*

regtui opens container image archives **without extracting them**, shows what is inside, verifies every
digest and serves the archives **read-only** as an OCI registry so real clients (docker, containerd, skopeo,
crane) can pull from it.

## Views (keys 1–9, or click the tab)

| key | view | what it shows |
| --- | --- | --- |
| 1 | **Layers** | every layer of the image selected in the tree: digest, media type, sizes, diff_id, the command that created it; `/` filters, `o` sorts by size |
| 2 | **Config** | the image config: platform, entrypoint, cmd, env, labels, ports, volumes; then its JSON, pretty-printed |
| 3 | **Manifests** | each manifest form the registry serves, which one each client gets, its exact bytes, pull commands |
| 4 | **Verify** | re-hash every blob (digest, size, diff_id, order); mismatches in red with the likely cause |
| 5 | **Server** | start/stop the embedded registry, its address, request count, served images and log |
| 6 | **Requests** | live graphs (bytes/s, requests/s, errors/s) and every HTTP request as it happens; `enter` shows one in full (with "did you mean" for a mistyped digest); `/` filters (`404`, `4xx`, `err`, words), `f` toggles follow |
| 7 | **Pulls** | one row per client pulling an image: progress and state (pulling, done, manifest only, incomplete, failed); the selected pull's bytes/s and timeline below |
| 8 | **Package** | a Zarf package (only then): metadata, build, components with their images and Zarf names, checksums, signature |
| 9 | **Files** | the image's files without extracting: the merged tree, or the image as of a layer (`[` `]`, or enter in Layers) with its changes in colour (added green, modified yellow, removed red); `c` only this layer's changes, `o` by size, `/` filter, `a` whole image, enter opens a file; the detail pane lists each file's versions across layers and dive's waste |

## Keys

| key | action |
| --- | --- |
| `s` | start or stop the registry server |
| `v` | verify the selected archive |
| `u` | copy the server URL |
| `P` | push the selected archive into a registry |
| `y` | copy the selected manifest digest (Manifests) |
| `enter` | copy the highlighted pull command (Manifests); open or close a request's details (Requests) |
| `<` `>` | narrower or wider Images tree (or drag the bar beside it) |
| `tab` / `shift+tab` | move focus between the tree and the views |
| `j` `k` `g` `G` / arrows | move in lists and tables; `h` `l` collapse/expand in the tree |
| `ctrl+p` | command palette |
| `?` | this help |
| `q` | quit (stops the server, giving running pulls a moment to finish) |

The mouse works everywhere: click tabs, rows, buttons; scroll with the wheel.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
