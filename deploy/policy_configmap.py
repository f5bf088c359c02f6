"""Write a policy file as the `changebot-policy` ConfigMap (key `policy.yml`), text unchanged.

    python deploy/policy_configmap.py                      # policy.example.yml -> deploy/kubernetes/
    python deploy/policy_configmap.py policy.yml -o -      # your policy, to standard output

The file is validated first (the same check as `changebot policy check`) when changebot is
importable, so a broken policy never reaches the cluster. Standard library only otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "policy.example.yml"
DEFAULT_OUT = ROOT / "deploy" / "kubernetes" / "configmap-policy.yaml"

HEADER = """\
# The policy changebot reads, mounted read-only at /etc/changebot/policy.yml
# (CHANGEBOT_POLICY). Generated from {source} by deploy/policy_configmap.py;
# regenerate it rather than editing the text below by hand. changebot reads the policy
# at start-up: after changing it, `kubectl -n changebot rollout restart deployment/changebot`.
apiVersion: v1
kind: ConfigMap
metadata:
  name: changebot-policy
  namespace: changebot
  labels:
    app.kubernetes.io/name: changebot
    app.kubernetes.io/part-of: changebot
    app.kubernetes.io/component: policy
data:
  policy.yml: {indicator}
"""


def render(text: str, *, source: str) -> str:
    """The ConfigMap manifest holding `text` verbatim as a YAML literal block."""
    if text[:1] in (" ", "\t", "\n"):
        raise ValueError(f"{source}: a policy starting with blank space cannot be embedded as is")
    stripped = text.rstrip("\n")
    trailing = len(text) - len(stripped)
    indicator = {0: "|-", 1: "|"}.get(trailing, "|+")
    body = "".join(f"    {line}\n" if line else "\n" for line in stripped.split("\n"))
    if trailing > 1:
        body += "\n" * (trailing - 1)
    return HEADER.format(source=source, indicator=indicator) + body


def validate(text: str, *, source: str) -> None:
    try:
        from domain.policy_loader import parse_policy
    except ImportError:  # changebot not installed here: embed without checking
        return
    parse_policy(text, source=source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument(
        "-o", "--out", default=str(DEFAULT_OUT), help="file to write ('-' for standard output)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    text = args.policy.read_text(encoding="utf-8")
    source = args.policy.name
    try:
        validate(text, source=source)
    except Exception as exc:
        render_problems = getattr(exc, "render", None)
        print(render_problems() if callable(render_problems) else exc, file=sys.stderr)
        return 1
    manifest = render(text, source=source)
    if args.out == "-":
        sys.stdout.write(manifest)
    else:
        Path(args.out).write_text(manifest, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
