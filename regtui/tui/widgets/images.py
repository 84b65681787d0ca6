"""The Images tree: archives → images (or indexes) → platforms. Moving the cursor drives every other view."""

from __future__ import annotations

import os
from collections.abc import Sequence

from rich.text import Text

from regtui.oci.model import Archive, Image, ImageIndex, Root
from regtui.tui.facts import Selection, human_size, root_image
from regtui.tui.messages import SelectionChanged
from regtui.tui.widgets.common import VimTree


def _root_label(root: Root) -> Text:
    tags = ", ".join(root.tags) or "untagged"
    t = Text(f"{root.repository}", style="bold")
    t.append(f":{tags}" if root.tags else f" ({tags})")
    if isinstance(root, ImageIndex):
        t.append(f"  index · {len(root.images())} platforms", style="dim")
    elif root.platform or root.config.json.get("architecture"):
        plat = root.platform or f"{root.config.json.get('os', '')}/{root.config.json.get('architecture', '')}"
        t.append(f"  {plat}", style="dim")
    return t


class ImagesTree(VimTree):
    def __init__(self, **kwargs):
        super().__init__("archives", **kwargs)
        self.show_root = False
        self.guide_depth = 3

    def load(self, archives: list[Archive], failures: Sequence[str] = ()) -> None:
        self.clear()
        for archive in archives:
            label = Text(os.path.basename(archive.path.rstrip("/")), style="bold cyan")
            label.append(f"  {human_size(archive.total_size())}", style="dim")
            first = archive.roots[0] if archive.roots else None
            sel = Selection(archive, first, root_image(first) if first else None)
            if archive.package is not None:
                label.append(f"  {archive.package.title}", style="bold")
            anode = self.root.add(label, data=sel, expand=True)
            if archive.package is not None:
                self._add_package(anode, archive)
                continue
            for root in archive.roots:
                self._add_root(anode, archive, root)
        for line in failures:
            self.root.add_leaf(Text(f"✗ {line}", style="red"), data=None)
        # Start on the first image, so every view has something to show.
        first = next((n for n in self._walk() if n.data and n.data.image), None)
        if first is not None:
            self.move_cursor(first)

    def _add_root(self, parent, archive: Archive, root: Root) -> None:
        if isinstance(root, ImageIndex):
            node = parent.add(_root_label(root), data=Selection(archive, root, root_image(root)), expand=True)
            for child in root.children:
                if isinstance(child, Image):
                    label = Text(str(child.platform or "unknown platform"))
                    label.append(f"  {human_size(child.total_size())}", style="dim")
                    node.add_leaf(label, data=Selection(archive, root, child))
                else:
                    self._add_root(node, archive, child)
        else:
            parent.add_leaf(_root_label(root), data=Selection(archive, root, root))

    def fitting_width(self, screen_width: int) -> int:
        """Wide enough for the longest label (archive names are not cut), within 30% of the screen
        (`<`, `>` or dragging the bar beside it resize it)."""
        widest = max((n.label.cell_len + 4 * (1 + self._depth(n)) for n in self._walk()), default=24)
        return max(24, min(widest + 2, screen_width * 3 // 10))

    @staticmethod
    def _depth(node) -> int:
        depth = 0
        while node.parent is not None and node.parent.parent is not None:
            depth, node = depth + 1, node.parent
        return depth

    def _add_package(self, parent, archive: Archive) -> None:
        """Package → components → the images each needs (an image two components need is under both)."""
        pkg = archive.package
        groups = [(c.name, pkg.component_images(c)) for c in pkg.config.components]
        unlisted = [i for i in pkg.images if not i.components]
        if unlisted:
            groups.append(("(no component)", unlisted))
        for name, images in groups:
            first = next((i.root for i in images if i.root is not None), None)
            label = Text(name, style="bold magenta")
            label.append(f"  {len(images)} image{'s' * (len(images) != 1)}", style="dim")
            cnode = parent.add(label, data=Selection(archive, first, root_image(first) if first else None), expand=True)
            for img in images:
                if img.root is None:
                    cnode.add_leaf(Text(f"✗ {img.name.original} (not in the package)", style="red"), data=None)
                else:
                    self._add_root(cnode, archive, img.root)

    def _walk(self):
        stack = list(reversed(self.root.children))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def on_tree_node_highlighted(self, event: VimTree.NodeHighlighted) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(SelectionChanged(event.node.data))
