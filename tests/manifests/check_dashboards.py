#!/usr/bin/python3
"""Checks grafana/ and the alert rules against the metric names that metrics/README.md documents.

- every dashboard parses, has schemaVersion 39, the ${datasource} variable (type prometheus) and the
  namespace/pod variables (the certificate dashboard also secret_namespace/secret_name);
- no hard-coded data source UID anywhere: every panel and query uses ${datasource};
- every metric and label a query uses is documented in metrics/README.md (target labels namespace,
  pod, job, instance, container and the histogram's le aside), the same for the alert rules;
- every query parses as PromQL (promtool check rules on a generated rules file, variables filled in);
- the dashboards are what grafana/generate-dashboards writes; grafana/kustomization.yaml renders
  ConfigMaps labelled grafana_dashboard: "1" with exactly these files; the provisioning file parses.
With --print-queries [var=value ...] it prints every dashboard query instead, variables filled in,
one JSON object per line, for the end-to-end test that evaluates them against a real Prometheus.
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana/dashboards"
TARGET_LABELS = {"namespace", "pod", "job", "instance", "container", "le", "__name__"}
OTHER_METRICS = {"up"}  # Prometheus' own per-target series
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset", "vector", "time", "inf", "nan"}


class Checker:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   - {what}")
        else:
            self.failed += 1
            print(f"FAIL - {what}" + (f"\n       {detail}" if detail else ""))


def documented():
    """metric name -> set of labels, from the table in metrics/README.md."""
    text = (ROOT / "metrics/README.md").read_text()
    metrics = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`(acme_sidecar_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|\s*([^|]*)\|", line)
        if m:
            labels = {l.strip() for l in m.group(3).split(",") if l.strip() not in ("", "-")}
            metrics[m.group(1)] = (m.group(2), labels)
    return metrics


def base_metric(name, docs):
    if name in docs:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and docs.get(name[: -len(suffix)], ("",))[0] == "histogram":
            return name[: -len(suffix)]
    return None


def fill_variables(expr, values=None, default="x"):
    """Grafana variables replaced: the interval ones by durations, the others from values or default."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    values = values or {}
    return re.sub(r"\$\{?(\w+)(:\w+)?\}?", lambda m: values.get(m.group(1), default), expr)


def print_queries(argv):
    """--print-queries [name=value ...]: one JSON line per query (dashboard, panel, expr) with the
    variables filled in (default .* so regex matchers match everything), for evaluating every panel
    against a real Prometheus in the end-to-end test."""
    values = dict(a.split("=", 1) for a in argv if "=" in a)
    for name in ("acme-sidecar-fleet.json", "acme-sidecar-certificate.json"):
        d = json.loads((DASHBOARDS / name).read_text())
        for title, expr in queries_of(d):
            print(json.dumps({"dashboard": name, "panel": title, "expr": fill_variables(expr, values, ".*")}))
    return 0


def queries_of(dashboard):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t.get("expr", "")))
            walk(p.get("panels", []))
    walk(dashboard.get("panels", []))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.match(r"label_values\((.*),\s*(\w+)\)$", q)
            out.append((f"variable {v['name']}", m.group(1) if m else q))
    return out


def names_used(expr):
    """(metrics, labels) an expression uses, by a small tokenizer good enough for our queries."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop string literals
    labels = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        labels |= {l.strip() for l in m.group(1).split(",") if l.strip()}
    for m in re.finditer(r"\{([^}]*)\}", e):
        labels |= {mm.group(1) for mm in re.finditer(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(1))}
    e2 = re.sub(r"\{[^}]*\}", "", e)
    e2 = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e2)
    e2 = re.sub(r"\[[^\]]*\]", "", e2)
    metrics = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e2):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d+(e\d+)?|[smhdwy]", word):
            continue
        metrics.add(word)
    return metrics, labels


def check_names(c, where, expr, docs):
    metrics, labels = names_used(expr)
    allowed_labels = set(TARGET_LABELS)
    unknown = []
    for m in metrics:
        base = base_metric(m, docs)
        if base:
            allowed_labels |= docs[base][1]
        elif m not in OTHER_METRICS:
            unknown.append(m)
    c.check(f"{where}: only documented metrics", not unknown and metrics, f"undocumented: {unknown} in {expr}")
    bad = sorted(l for l in labels if l not in allowed_labels)
    c.check(f"{where}: only documented labels", not bad, f"labels {bad} not documented for {sorted(metrics)}")


def check_datasources(c, name, dashboard):
    bad = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "datasource" and not (path.endswith("templating.list[0]")):
                    ok = (isinstance(v, dict) and v.get("uid") == "${datasource}" and v.get("type") == "prometheus") \
                        or v == "${datasource}"
                    if not ok:
                        bad.append(f"{path}.{k}={v!r}")
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
    walk(dashboard, name)
    c.check(f"{name}: every data source is the ${{datasource}} variable (no hard-coded UID)", not bad, "; ".join(bad[:5]))


def promtool_parse(c, exprs):
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{i}", "expr": fill_variables(e)} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f)
    try:
        out = subprocess.run([os.environ.get("PROMTOOL", "promtool"), "check", "rules", f.name],
                             capture_output=True, text=True)
        c.check(f"all {len(exprs)} dashboard queries parse as PromQL (promtool)", out.returncode == 0,
                out.stdout[-2000:] + out.stderr[-2000:])
    finally:
        os.unlink(f.name)


def main():
    c = Checker()
    docs = documented()
    c.check("metrics/README.md documents the metric families", len(docs) >= 15, f"found {sorted(docs)}")
    all_exprs = []
    expected_vars = {"acme-sidecar-fleet.json": {"datasource", "namespace", "pod"},
                     "acme-sidecar-certificate.json": {"datasource", "namespace", "pod", "secret_namespace", "secret_name"}}
    for name, want in expected_vars.items():
        path = DASHBOARDS / name
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            c.check(f"{name} parses as JSON", False, str(e))
            continue
        c.check(f"{name} parses as JSON", True)
        c.check(f"{name}: schemaVersion 39", d.get("schemaVersion") == 39)
        c.check(f"{name}: stable dashboard uid", bool(d.get("uid")))
        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        c.check(f"{name}: variables {sorted(want)}", want <= set(variables), f"has {sorted(variables)}")
        ds = variables.get("datasource", {})
        c.check(f"{name}: datasource variable of type prometheus",
                ds.get("type") == "datasource" and ds.get("query") == "prometheus")
        check_datasources(c, name, d)
        exprs = queries_of(d)
        c.check(f"{name}: has queries", len(exprs) >= 8)
        for title, expr in exprs:
            check_names(c, f"{name} / {title}", expr, docs)
        all_exprs += exprs
        panels = [p for p in d["panels"] if p.get("type") != "row"]
        c.check(f"{name}: panel ids unique", len({p["id"] for p in d["panels"]}) == len(d["panels"]))
        c.check(f"{name}: every panel has a description", all(p.get("description") for p in panels))
    promtool_parse(c, all_exprs)

    rules = yaml.safe_load((ROOT / "manifests/prometheus/acme-sidecar.rules.yml").read_text())
    for g in rules["groups"]:
        for r in g["rules"]:
            check_names(c, f"alert {r.get('alert', r.get('record'))}", r["expr"], docs)

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(ROOT / "grafana/generate-dashboards"), tmp], check=True)
        for name in expected_vars:
            c.check(f"{name} is up to date with grafana/generate-dashboards",
                    (pathlib.Path(tmp) / name).read_text() == (DASHBOARDS / name).read_text(),
                    "run grafana/generate-dashboards and commit")

    rendered = subprocess.run([os.environ.get("KUBECTL", "kubectl"), "kustomize", str(ROOT / "grafana")],
                              capture_output=True, text=True)
    c.check("kubectl kustomize grafana/ renders", rendered.returncode == 0, rendered.stderr)
    if rendered.returncode == 0:
        cms = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "ConfigMap"]
        files = {k: v for cm in cms for k, v in cm.get("data", {}).items()}
        c.check("ConfigMaps labelled grafana_dashboard: \"1\"",
                cms and all(cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1" for cm in cms))
        for name in expected_vars:
            c.check(f"ConfigMap carries {name} unchanged", files.get(name) == (DASHBOARDS / name).read_text())
    prov = yaml.safe_load((ROOT / "grafana/provisioning/dashboards.yaml").read_text())
    c.check("provisioning file: apiVersion 1 with a file provider",
            prov.get("apiVersion") == 1 and any(p.get("type") == "file" for p in prov.get("providers", [])))
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--print-queries"]:
        sys.exit(print_queries(sys.argv[2:]))
    sys.exit(main())
