"""The JSON nesting bound read before json.loads: the same answers as a plain bracket walk, and fast on 16 MiB."""

from __future__ import annotations

import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from regtui.oci.store import MAX_JSON, depth_exceeds


def walk(text: str, limit: int) -> bool:
    """The reference: one character at a time, brackets inside strings ignored."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='[]{}"\\ax:,', max_size=200), st.integers(0, 6))
def test_same_answers_as_the_walk(text, limit):
    assert depth_exceeds(text, limit) == walk(text, limit)


def test_edges():
    assert depth_exceeds("[" * 65, 64) and not depth_exceeds("[" * 64, 64)
    assert not depth_exceeds("]" + "[" * 65, 64) and depth_exceeds("]" + "[" * 66, 64)  # the walk goes below 0
    assert not depth_exceeds(json.dumps({"s": "[" * 1000}), 64)  # inside a string
    assert not depth_exceeds('"\\"' + "[" * 100, 64)  # an unterminated string runs to the end
    assert depth_exceeds('"a\\\\"' + "[" * 100, 64)  # an escaped backslash ends before the quote
    assert not depth_exceeds("[]" * 1000, 1)  # many brackets, shallow


def test_sixteen_mib_is_fast():
    """Worst cases at the size limit: all brackets (shallow), all string, a deep one at the end."""
    half = MAX_JSON // 4  # of a 4-character unit
    cases = [
        "[]" * (MAX_JSON // 2),
        json.dumps(["x" * (MAX_JSON - 10)]),
        ("[1]," * half)[:-1] + "[" * 65,
        "[" * MAX_JSON,
        "[" * 64 + '{"a":[' * (half // 6) + "]}" * (half // 6),
        "[[]]," * (MAX_JSON // 5),
        "]" * (MAX_JSON // 2) + "[" * (MAX_JSON // 2),
        "[[]" * (MAX_JSON // 3),
    ]
    for text in cases:
        t0 = time.perf_counter()
        got = depth_exceeds(text, 64)
        seconds = time.perf_counter() - t0
        assert got == walk(text, 64)
        assert seconds < 1.5, f"{seconds:.2f} s for {len(text) >> 20} MiB"  # a loop per character: 2-2.5 s
        print(f"depth_exceeds on {len(text) / (1 << 20):.0f} MiB: {seconds * 1000:.0f} ms")
