"""ui.common.literal: data text keeps its characters and never becomes Markdown."""

from __future__ import annotations

import pytest

from ui.common import literal


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<img src=x onerror=alert(1)>**bold**", r"\<img src=x onerror=alert(1)\>\*\*bold\*\*"),
        ("ev-05 · EV", "ev-05 · EV"),
        (":red[alarm] $x$ `code` a_b", r"\:red\[alarm\] \$x\$ \`code\` a\_b"),
        ("# title\n- item\n3. third", "\\# title\n\\- item\n3\\. third"),
        ("C:\\path|x", r"C\:\\path\|x"),
    ],
)
def test_literal(text, shown):
    assert literal(text) == shown
