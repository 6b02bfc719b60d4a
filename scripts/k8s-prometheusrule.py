#!/usr/bin/env python3
"""Write deploy/k8s/prometheusrule.yaml from docs/alerts/leakhound.rules.yml.

The rules file stays the one source (promtool checks and unit-tests it);
the PrometheusRule embeds its `groups:` text unchanged (comments included)
under `spec:`. With --check, exit 1 when the manifest is out of date.
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = ROOT / "docs/alerts/leakhound.rules.yml"
OUT = ROOT / "deploy/k8s/prometheusrule.yaml"

HEADER = """\
# Generated from docs/alerts/leakhound.rules.yml by
# scripts/k8s-prometheusrule.py: edit the rules there, then run it.
# The Prometheus Operator loads it when its ruleSelector matches these
# labels (e.g. add `release: <your kube-prometheus-stack release>`).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: leakhound
  labels:
    app.kubernetes.io/name: leakhound
spec:
"""


def render() -> str:
    lines = RULES.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("groups:"))
    body = "\n".join(("  " + l) if l.strip() else "" for l in lines[start:])
    return HEADER + body + "\n"


def main() -> int:
    text = render()
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run scripts/k8s-prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
