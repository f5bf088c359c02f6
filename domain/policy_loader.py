"""Parse policy YAML keeping line numbers, so validation errors point at the line."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from domain.policy import Policy, PolicyError, PolicyProblem, validate_policy


def _line_finder(root: Any) -> Any:
    def line_of(loc: tuple[Any, ...]) -> int | None:
        node = root
        line: int | None = 1
        for part in loc:
            key = part.value if hasattr(part, "value") else part
            if isinstance(node, CommentedMap):
                match = next((k for k in node if str(k) == str(key)), None)
                if match is None:
                    break
                line = node.lc.key(match)[0] + 1
                node = node[match]
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
                line = node.lc.item(key)[0] + 1
                node = node[key]
            else:
                break
        return line

    return line_of


def parse_policy(text: str, *, source: str = "policy.yml") -> Policy:
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(source, [PolicyProblem("(yaml)", line, str(exc.problem or exc.context))]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (duplicate keys, tabs)
        raise PolicyError(source, [PolicyProblem("(yaml)", None, str(exc))]) from None
    return validate_policy(_plain(data), source=source, line_of=_line_finder(data))


def _plain(node: Any) -> Any:
    """ruamel's round-trip types into plain dicts/lists for pydantic."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
