"""A YAML loader for config files that refuses what YAML allows but a config must not hold.

Anchors and aliases (&a / *a): a few lines of them expand to billions of values in whatever
walks the loaded result later (the "billion laughs"), so they are refused as they are met, in
about a millisecond, instead of bounded. Repeated keys: the last one would win silently. Each
refusal is one line naming the dotted key and the line.
"""

from __future__ import annotations

import yaml


class RefusedYaml(ValueError):
    """The YAML holds an anchor, an alias or a repeated key; the message names where."""


def _dotted(parts: list) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p is not None:
            out = f"{out}.{p}" if out else str(p)
    return out or "config"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (&a / *a: a few lines of aliases expand to
    billions of values in whatever walks the result later) and repeated keys (the last one
    would win silently). Errors name the dotted key and the line."""

    def __init__(self, stream):
        super().__init__(stream)
        self._path: list = []

    def compose_node(self, parent, index):
        event = self.peek_event()
        # mapping values are composed with their key node as index, list items with their position
        name = index.value if isinstance(index, yaml.ScalarNode) else index
        parts = self._path + [name if isinstance(name, (str, int)) else None]
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            raise RefusedYaml(f"{_dotted(parts)}: YAML anchors and aliases (&name, *name) are not allowed "
                              f"(line {event.start_mark.line + 1}); write the value out")
        self._path.append(parts[-1])
        try:
            node = super().compose_node(parent, index)
        finally:
            self._path.pop()
        if isinstance(node, yaml.MappingNode):
            _refuse_repeated_keys(node, parts)
        return node


def _refuse_repeated_keys(node: yaml.MappingNode, parts: list) -> None:
    seen: dict = {}
    for k, _ in node.value:
        if isinstance(k, yaml.ScalarNode):
            if k.value in seen:
                raise RefusedYaml(f"{_dotted(parts + [k.value])}: set twice "
                                  f"(lines {seen[k.value] + 1} and {k.start_mark.line + 1})")
            seen[k.value] = k.start_mark.line
