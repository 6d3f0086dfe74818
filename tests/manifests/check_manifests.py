#!/usr/bin/python3
"""Structural checks on the rendered kustomize output of manifests/ (what `kubectl apply -k` sends).

    check_manifests.py overlay ingress-nginx|f5-nginx|traefik|haproxy
    check_manifests.py variant native-sidecar|namespaced
    check_manifests.py prometheusrule        # the PrometheusRule object carries the rules file's groups
    check_manifests.py runbook               # every alert is complete and has its docs/runbook.md section
    check_manifests.py cli PATH/acme-sidecar # the flags and ACME_SIDECAR_* settings exist in the CLI

Prints one line per check and "N passed, N failed"; exit status 1 on any failure.
"""
import os
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBECTL = os.environ.get("KUBECTL", "kubectl")

OVERLAYS = {
    "ingress-nginx": dict(namespace="ingress-nginx", deployment="ingress-nginx-controller", sa="ingress-nginx",
                          ingress_class="nginx", http="127.0.0.1:80", https="127.0.0.1:443",
                          pod_labels={"app.kubernetes.io/name": "ingress-nginx",
                                      "app.kubernetes.io/component": "controller"},
                          snippet=("ingress-nginx-controller", "server-snippet", "acme-challenge.conf"),
                          http_snippet=("http-snippet", "acme-upstream.conf")),
    "f5-nginx": dict(namespace="nginx-ingress", deployment="nginx-ingress", sa="nginx-ingress",
                     ingress_class="nginx", http="127.0.0.1:80", https="127.0.0.1:443",
                     pod_labels={"app": "nginx-ingress"},
                     snippet=("nginx-config", "server-snippets", "acme-challenge.conf"),
                     http_snippet=("http-snippets", "acme-upstream.conf")),
    "traefik": dict(namespace="traefik", deployment="traefik", sa="traefik",
                    ingress_class="traefik", http="127.0.0.1:8000", https="127.0.0.1:8443",
                    pod_labels={"app.kubernetes.io/name": "traefik"},
                    snippet=("acme-sidecar-traefik", "acme-challenge.yml", "acme-challenge.yml")),
    "haproxy": dict(namespace="haproxy-controller", deployment="haproxy-kubernetes-ingress",
                    sa="haproxy-kubernetes-ingress", ingress_class="haproxy", http="127.0.0.1:8080",
                    https="127.0.0.1:8443", pod_labels={"app.kubernetes.io/name": "kubernetes-ingress"},
                    snippet=("haproxy-kubernetes-ingress", "frontend-config-snippet", "frontend-snippet.cfg")),
}

# The documented RBAC (manifests/base/rbac.yaml): (apiGroup, resource) -> verbs. Exactly these.
CLUSTER_RULES = {
    ("networking.k8s.io", "ingresses"): {"list", "watch"},
    ("networking.k8s.io", "ingressclasses"): {"list", "watch"},
    ("", "secrets"): {"get", "list", "watch", "create", "update"},
    ("", "events"): {"create", "patch"},
}
NAMESPACE_RULES = {
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
    ("", "configmaps"): {"get", "list", "watch", "create", "delete"},
    ("", "secrets"): {"get", "list", "create", "update", "deletecollection"},
}
WATCH_RULES = {
    ("networking.k8s.io", "ingresses"): {"list", "watch"},
    ("", "secrets"): {"get", "list", "watch", "create", "update"},
    ("", "events"): {"create", "patch"},
}
SECURITY_CONTEXT = {
    "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   - {what}")
        else:
            self.failed += 1
            print(f"FAIL - {what}" + (f"\n       {detail}" if detail else ""))
        return ok

    def equal(self, what, actual, expected):
        return self.check(what, actual == expected, f"got {actual!r}, expected {expected!r}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


def render(path):
    out = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"FAIL - kubectl kustomize {path}\n{out.stderr}\n0 passed, 1 failed")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def rules_of(obj):
    rules = {}
    for r in obj.get("rules", []):
        for g in r["apiGroups"]:
            for res in r["resources"]:
                key = (g, res)
                if key in rules:
                    rules[key] = None  # a resource granted twice: flagged as not-exact
                else:
                    rules[key] = set(r["verbs"])
    return rules


def sidecar_of(deployment, native):
    spec = deployment["spec"]["template"]["spec"]
    lists = (spec.get("initContainers") or []) if native else (spec.get("containers") or [])
    other = (spec.get("containers") or []) if native else (spec.get("initContainers") or [])
    found = [c for c in lists if c["name"] == "acme-sidecar"]
    stray = [c for c in other if c["name"] == "acme-sidecar"]
    return (found[0] if len(found) == 1 else None), stray


def check_container(c, docs, sidecar, expect_class=None, expect_http=None, expect_https=None):
    sc = sidecar
    c.check("sidecar has an image", bool(sc.get("image")))
    args = sc.get("args", [])
    for a in ("--ingress-class=$(ACME_SIDECAR_INGRESS_CLASS)", "--challenge-listen=127.0.0.1:8089",
              "--metrics-listen=:9402", "--controller-http=$(ACME_SIDECAR_CONTROLLER_HTTP)",
              "--controller-https=$(ACME_SIDECAR_CONTROLLER_HTTPS)"):
        c.check(f"args contain {a}", a in args, f"args: {args}")
    env = {e["name"]: e for e in sc.get("env", [])}
    c.equal("POD_NAME from the downward API", env.get("POD_NAME", {}).get("valueFrom"),
            {"fieldRef": {"fieldPath": "metadata.name"}})
    c.equal("POD_NAMESPACE from the downward API", env.get("POD_NAMESPACE", {}).get("valueFrom"),
            {"fieldRef": {"fieldPath": "metadata.namespace"}})
    refs = [e["configMapRef"]["name"] for e in sc.get("envFrom", []) if "configMapRef" in e]
    cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    c.check("envFrom names a ConfigMap that is rendered too", len(refs) == 1 and refs[0] in cms, f"refs {refs}")
    data = cms[refs[0]].get("data", {}) if refs and refs[0] in cms else {}
    c.check("settings name an ACME directory", bool(data.get("ACME_SIDECAR_ACME_DIRECTORY")))
    if expect_class:
        c.equal("ingress class", data.get("ACME_SIDECAR_INGRESS_CLASS"), expect_class)
        c.equal("controller HTTP address", data.get("ACME_SIDECAR_CONTROLLER_HTTP"), expect_http)
        c.equal("controller HTTPS address", data.get("ACME_SIDECAR_CONTROLLER_HTTPS"), expect_https)
    defined = set(data) | set(env)
    refs_in_args = {m for a in args for m in re.findall(r"\$\((\w+)\)", a)}
    c.check("every $(VAR) in args is defined (else Kubernetes passes it literally)", refs_in_args <= defined,
            f"undefined: {sorted(refs_in_args - defined)}")
    c.check("every setting is an ACME_SIDECAR_ environment twin",
            all(k.startswith("ACME_SIDECAR_") for k in data), f"keys {sorted(data)}")
    c.equal("ports", sc.get("ports"), [{"name": "acme-metrics", "containerPort": 9402, "protocol": "TCP"}])
    for probe in ("livenessProbe", "startupProbe"):
        c.equal(f"{probe} is GET /healthz on the metrics port", (sc.get(probe) or {}).get("httpGet"),
                {"path": "/healthz", "port": "acme-metrics"})
    c.check("NO readinessProbe (the sidecar must never unready the controller)", "readinessProbe" not in sc)
    c.equal("resources", sc.get("resources"), RESOURCES)
    c.equal("securityContext", sc.get("securityContext"), SECURITY_CONTEXT)
    mounts = {m["mountPath"]: m["name"] for m in sc.get("volumeMounts", [])}
    c.check("writable /tmp (emptyDir) under a read-only root", "/tmp" in mounts)


def check_pod(c, deployment):
    spec = deployment["spec"]["template"]["spec"]
    names = [p["name"] for ctr in (spec.get("containers") or []) + (spec.get("initContainers") or [])
             for p in ctr.get("ports", []) if "name" in p]
    c.check("port names unique in the pod", len(names) == len(set(names)), f"{names}")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    used = {m["name"] for ctr in (spec.get("containers") or []) + (spec.get("initContainers") or [])
            for m in ctr.get("volumeMounts", [])}
    c.check("every mounted volume is declared", used <= set(vols), f"mounted {used}, declared {set(vols)}")
    c.check("readiness gate untouched: no container of ours declares readiness",
            all("readinessProbe" not in ctr for ctr in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                if ctr["name"] == "acme-sidecar"))


def check_rbac(c, docs, namespace, sa, prefix):
    croles = by_kind(docs, "ClusterRole")
    roles = [r for r in by_kind(docs, "Role") if r["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "rbac"]
    c.equal("one ClusterRole", [r["metadata"]["name"] for r in croles], [f"{prefix}acme-sidecar"])
    c.equal("one Role in the controller's namespace", [(r["metadata"]["name"], r["metadata"].get("namespace")) for r in roles],
            [(f"{prefix}acme-sidecar", namespace)])
    if croles:
        c.equal("ClusterRole rules are exactly the documented set", rules_of(croles[0]), CLUSTER_RULES)
    if roles:
        c.equal("Role rules are exactly the documented set", rules_of(roles[0]), NAMESPACE_RULES)
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        bindings = [b for b in by_kind(docs, kind) if b["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "rbac"]
        c.equal(f"one {kind}", len(bindings), 1)
        for b in bindings:
            c.equal(f"{kind} references the {role_kind}", b["roleRef"],
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": f"{prefix}acme-sidecar"})
            c.equal(f"{kind} binds the controller's ServiceAccount", b["subjects"],
                    [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}])
    # No rule anywhere grants more than the documented verbs (e.g. delete on Secrets beyond the own
    # namespace's Role, patch on Ingresses).
    all_verbs = set()
    for r in croles + by_kind(docs, "Role"):
        own = r["kind"] == "Role" and r["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "rbac"
        for rule in r["rules"]:
            all_verbs |= {(own, g, res, v) for g in rule["apiGroups"] for res in rule["resources"] for v in rule["verbs"]}
    c.check("delete Secrets only in the own namespace, never write Ingresses, no wildcards",
            not any(v == "*" or res == "*" or (res == "secrets" and v in ("delete", "deletecollection") and not own) or
                    (res == "ingresses" and v not in ("list", "watch")) for own, _, res, v in all_verbs))


def check_monitoring(c, docs, namespace, pod_labels, sidecar):
    pms = by_kind(docs, "PodMonitor")
    c.equal("one PodMonitor", len(pms), 1)
    if pms:
        pm = pms[0]
        c.equal("PodMonitor namespace", pm["metadata"].get("namespace"), namespace)
        c.equal("PodMonitor selects the controller's pods", pm["spec"]["selector"], {"matchLabels": pod_labels})
        eps = pm["spec"]["podMetricsEndpoints"]
        port_names = [p["name"] for p in sidecar.get("ports", [])] if sidecar else []
        c.check("PodMonitor scrapes the sidecar's named metrics port at /metrics",
                len(eps) == 1 and eps[0]["port"] in port_names and eps[0].get("path") == "/metrics", f"{eps}")
        c.check("PodMonitor name yields a job matching .*acme-sidecar.* (AcmeSidecarAbsent)",
                "acme-sidecar" in pm["metadata"]["name"])
    check_prometheusrule_docs(c, docs)


def check_prometheusrule_docs(c, docs):
    prs = by_kind(docs, "PrometheusRule")
    rules = yaml.safe_load((ROOT / "manifests/prometheus/acme-sidecar.rules.yml").read_text())
    c.equal("one PrometheusRule", len(prs), 1)
    if prs:
        c.check("PrometheusRule groups equal manifests/prometheus/acme-sidecar.rules.yml",
                prs[0]["spec"]["groups"] == rules["groups"],
                "regenerate with manifests/prometheus/generate-prometheusrule")


def check_overlay(c, name):
    o = OVERLAYS[name]
    overlay_dir = ROOT / "manifests/overlays" / name
    docs = render(overlay_dir)
    c.check(f"kubectl kustomize manifests/overlays/{name} renders", True)
    deps = by_kind(docs, "Deployment")
    c.equal("exactly the controller's Deployment", [(d["metadata"]["name"], d["metadata"].get("namespace")) for d in deps],
            [(o["deployment"], o["namespace"])])
    namespaced = [d for d in docs if d["kind"] not in ("ClusterRole", "ClusterRoleBinding")]
    c.check("every namespaced object is in the controller's namespace",
            all(d["metadata"].get("namespace") == o["namespace"] for d in namespaced),
            str([(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in namespaced]))
    sidecar = None
    if deps:
        sidecar, stray = sidecar_of(deps[0], native=False)
        c.check("the sidecar is a container of the controller's Deployment (plain-container default)",
                sidecar is not None and not stray)
        if sidecar:
            check_container(c, docs, sidecar, o["ingress_class"], o["http"], o["https"])
        check_pod(c, deps[0])
    check_rbac(c, docs, o["namespace"], o["sa"], f"{name}-")
    check_monitoring(c, docs, o["namespace"], o["pod_labels"], sidecar)
    cm_name, key, fname = o["snippet"]
    cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    shipped = (overlay_dir / fname).read_text()
    value = cms.get(cm_name, {}).get("data", {}).get(key)
    c.equal(f"ConfigMap {cm_name}: {key} is exactly {fname}", value, shipped)
    c.check("the routing sends /.well-known/acme-challenge/ to 127.0.0.1:8089 or the acme_sidecar backend",
            value is not None and "/.well-known/acme-challenge/" in value and
            ("127.0.0.1:8089" in value or "acme_sidecar" in value))
    c.check(f"{cm_name} keeps its exact name (no hash suffix: it is the controller's own)", cm_name in cms)
    if "http_snippet" in o:
        hkey, hfname = o["http_snippet"]
        hvalue = cms.get(cm_name, {}).get("data", {}).get(hkey)
        c.equal(f"ConfigMap {cm_name}: {hkey} is exactly {hfname}", hvalue, (overlay_dir / hfname).read_text())
        c.check(f"{hkey} defines the kept-alive upstream to 127.0.0.1:8089 that the location proxies to",
                hvalue is not None and "upstream acme_sidecar_challenges" in hvalue and "keepalive" in hvalue and
                "server 127.0.0.1:8089" in hvalue and value is not None and
                "proxy_pass http://acme_sidecar_challenges;" in value and 'proxy_set_header Connection "";' in value)
    ours = [d for d in docs if (d["kind"], d["metadata"]["name"]) not in (("Deployment", o["deployment"]), ("ConfigMap", cm_name))
            or d["metadata"]["name"].startswith("acme-sidecar")]
    c.check("every object of ours is labelled app.kubernetes.io/name=acme-sidecar (uninstall selector)",
            all(d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "acme-sidecar" for d in ours),
            str([(d["kind"], d["metadata"]["name"]) for d in ours if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") != "acme-sidecar"]))
    theirs = [d for d in docs if d not in ours]
    c.check("the controller's own Deployment and ConfigMap get no acme-sidecar label (never selected for deletion)",
            any(d["kind"] == "Deployment" for d in theirs) and all("acme-sidecar" not in str(d["metadata"].get("labels", {})) for d in theirs))
    readme = overlay_dir / "README.md"
    text = readme.read_text() if readme.exists() else ""
    c.check("README.md says how to check it works and what was exercised here",
            "/.well-known/acme-challenge/" in text and "/metrics" in text and re.search(r"(?i)exercised", text))
    if name == "traefik":
        check_traefik(c, overlay_dir, yaml.safe_load(value or "{}"))
    if name == "haproxy":
        check_haproxy(c, docs, deps[0] if deps else None, cms)


def check_traefik(c, overlay_dir, dyn):
    routers = dyn.get("http", {}).get("routers", {})
    services = dyn.get("http", {}).get("services", {})
    eps = {ep for r in routers.values() for ep in r.get("entryPoints", [])}
    c.equal("routers on web and websecure", eps, {"web", "websecure"})
    c.check("every router matches the challenge path prefix",
            routers and all(r.get("rule") == "PathPrefix(`/.well-known/acme-challenge/`)" for r in routers.values()))
    c.check("websecure router has tls", all("tls" in r for r in routers.values() if "websecure" in r.get("entryPoints", [])))
    c.check("routers have a high priority", all(r.get("priority", 0) >= 100000 for r in routers.values()))
    servers = [s["url"] for r in routers.values() for s in services.get(r["service"], {}).get("loadBalancer", {}).get("servers", [])]
    c.check("service is http://127.0.0.1:8089", servers and set(servers) == {"http://127.0.0.1:8089"}, f"{servers}")
    values = yaml.safe_load((overlay_dir / "traefik-values.yaml").read_text())
    args = values.get("additionalArguments", [])
    vols = values.get("volumes", [])
    c.check("Helm values mount the ConfigMap where the file provider reads",
            any(v.get("name") == "acme-sidecar-traefik" and f"--providers.file.directory={v.get('mountPath')}" in args
                for v in vols), f"{vols} {args}")
    c.check("Helm values let a user router take the challenge path (allowACMEByPass)",
            "--entryPoints.web.allowACMEByPass=true" in args)


def check_haproxy(c, docs, deployment, cms):
    aux = cms.get("acme-sidecar-haproxy-aux", {}).get("data", {}).get("haproxy-aux.cfg", "")
    c.check("secondary config defines backend acme_sidecar -> 127.0.0.1:8089",
            re.search(r"^backend acme_sidecar$", aux, re.M) and "127.0.0.1:8089" in aux)
    if not deployment:
        return
    spec = deployment["spec"]["template"]["spec"]
    ctrl = [ctr for ctr in spec.get("containers", []) if ctr["name"] == "kubernetes-ingress-controller"]
    mounts = ctrl[0].get("volumeMounts", []) if ctrl else []
    c.check("the controller container mounts haproxy-aux.cfg",
            any(m.get("subPath") == "haproxy-aux.cfg" and m["mountPath"].endswith("/haproxy-aux.cfg") for m in mounts))
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    c.check("the volume is the rendered ConfigMap acme-sidecar-haproxy-aux",
            any(v.get("configMap", {}).get("name") == "acme-sidecar-haproxy-aux" for v in vols.values()))


def check_variant(c, name):
    docs = render(ROOT / "tests/manifests/variants" / name)
    c.check(f"variant {name} renders", True)
    dep = by_kind(docs, "Deployment")[0]
    if name == "native-sidecar":
        sidecar, stray = sidecar_of(dep, native=True)
        c.check("the sidecar is an initContainer", sidecar is not None and not stray)
        if sidecar:
            c.equal("restartPolicy: Always (native sidecar)", sidecar.get("restartPolicy"), "Always")
            check_container(c, docs, sidecar)
            plain = yaml.safe_load((ROOT / "manifests/components/plain-container/container.yaml").read_text())
            native = yaml.safe_load((ROOT / "manifests/components/native-sidecar/container.yaml").read_text())
            p = plain["spec"]["template"]["spec"]["containers"][0]
            n = dict(native["spec"]["template"]["spec"]["initContainers"][0])
            n.pop("restartPolicy", None)
            c.check("native and plain container definitions are identical otherwise", p == n)
        check_pod(c, dep)
        check_monitoring(c, docs, "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx",
                                                    "app.kubernetes.io/component": "controller"}, sidecar)
    elif name == "namespaced":
        sidecar, _ = sidecar_of(dep, native=False)
        c.check("the sidecar is a container", sidecar is not None)
        crole = by_kind(docs, "ClusterRole")
        c.equal("ClusterRole keeps only IngressClasses", rules_of(crole[0]) if crole else None,
                {("networking.k8s.io", "ingressclasses"): {"list", "watch"}})
        cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
        watch_ns = None
        if sidecar:
            ref = sidecar["envFrom"][0]["configMapRef"]["name"]
            watch_ns = cms[ref]["data"].get("ACME_SIDECAR_WATCH_NAMESPACE")
        c.check("ACME_SIDECAR_WATCH_NAMESPACE is set", bool(watch_ns))
        watch_roles = [r for r in by_kind(docs, "Role") if r["metadata"]["labels"].get("app.kubernetes.io/component") == "rbac-watch"]
        c.equal("a Role in the watched namespace", [r["metadata"].get("namespace") for r in watch_roles], [watch_ns])
        if watch_roles:
            c.equal("watched-namespace Role rules are exactly the documented set", rules_of(watch_roles[0]), WATCH_RULES)
        wbs = [b for b in by_kind(docs, "RoleBinding") if b["metadata"]["labels"].get("app.kubernetes.io/component") == "rbac-watch"]
        c.check("its RoleBinding is in the same namespace and references it",
                len(wbs) == 1 and wbs[0]["metadata"].get("namespace") == watch_ns and wbs[0]["roleRef"]["name"] == "acme-sidecar-watch")
        own = [r for r in by_kind(docs, "Role") if r["metadata"]["labels"].get("app.kubernetes.io/component") == "rbac"]
        c.check("the own-namespace Role stays in the controller's namespace",
                len(own) == 1 and own[0]["metadata"].get("namespace") == "ingress-nginx")
    elif name == "user-overlay":
        sidecar, _ = sidecar_of(dep, native=False)
        c.check("the sidecar is a container", sidecar is not None)
        if sidecar:
            c.equal("image set by the user's overlay", sidecar["image"], "registry.example.com/acme-sidecar:0.1.0")
            check_container(c, docs, sidecar, "nginx", "127.0.0.1:80", "127.0.0.1:443")
            cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
            data = cms[sidecar["envFrom"][0]["configMapRef"]["name"]]["data"]
            c.equal("e-mail merged into the sidecar's settings", data.get("ACME_SIDECAR_ACME_EMAIL"), "ops@example.org")
        check_rbac(c, docs, "ingress-nginx", "ingress-nginx", "ingress-nginx-")
    else:
        raise SystemExit(f"unknown variant {name}")


def github_anchor(heading):
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def check_runbook(c):
    rules = yaml.safe_load((ROOT / "manifests/prometheus/acme-sidecar.rules.yml").read_text())
    runbook = ROOT / "docs/runbook.md"
    text = runbook.read_text() if runbook.exists() else ""
    anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    c.check("the rules define alerts", len(alerts) >= 9)
    for r in alerts:
        a = r.get("annotations", {})
        name = r["alert"]
        c.check(f"{name}: summary, description, runbook_url and severity",
                all(a.get(k) for k in ("summary", "description", "runbook_url")) and
                r.get("labels", {}).get("severity") in ("warning", "critical"))
        c.check(f"{name}: description names secret_namespace/secret_name", "secret_namespace" in a.get("description", ""))
        url = a.get("runbook_url", "")
        c.check(f"{name}: runbook_url points into docs/runbook.md", url.startswith("docs/runbook.md#"))
        c.check(f"{name}: docs/runbook.md has the section #{url.partition('#')[2]}", url.partition("#")[2] in anchors)
        section = re.search(r"^#+ " + re.escape(name) + r"\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
        body = section.group(1) if section else ""
        c.check(f"{name}: runbook section has meaning, diagnosis and fix",
                all(re.search(k, body, re.I) for k in ("meaning", "diagnos", "fix")))
    by_name = {r["alert"]: r for r in alerts}
    for name in ("AcmeSidecarCertificateExpiringSoon", "AcmeSidecarCertificateExpiringCritical"):
        c.check(f"{name} has a for: duration", bool(by_name.get(name, {}).get("for")))


def check_cli(c, binary):
    """Every flag the manifests pass and every ACME_SIDECAR_* setting they set exists in the CLI."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True)
    c.check(f"{binary} --help runs", out.returncode == 0, out.stderr[-500:])
    help_text = out.stdout
    sources = [ROOT / "manifests/overlays" / o for o in OVERLAYS] + \
              [ROOT / "tests/manifests/variants" / v for v in ("native-sidecar", "namespaced", "user-overlay")]
    for src in sources:
        docs = render(src)
        dep = by_kind(docs, "Deployment")[0]
        spec = dep["spec"]["template"]["spec"]
        sc = [x for x in (spec.get("containers") or []) + (spec.get("initContainers") or []) if x["name"] == "acme-sidecar"][0]
        flags = {a.split("=", 1)[0] for a in sc.get("args", [])}
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"[ ,\n]", help_text))
        c.check(f"{src.name}: every flag in args is a flag of acme-sidecar", not missing, f"unknown: {missing}")
        cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
        keys = set(cms[sc["envFrom"][0]["configMapRef"]["name"]].get("data", {}))
        missing = sorted(k for k in keys if f"(Env:{k})" not in help_text)
        c.check(f"{src.name}: every ACME_SIDECAR_* setting is an environment twin of a flag", not missing, f"unknown: {missing}")


def main(argv):
    c = Checker()
    if len(argv) == 3 and argv[1] == "overlay" and argv[2] in OVERLAYS:
        check_overlay(c, argv[2])
    elif len(argv) == 3 and argv[1] == "variant":
        check_variant(c, argv[2])
    elif len(argv) == 3 and argv[1] == "cli":
        if not os.access(argv[2], os.X_OK):
            print(f"skipped: {argv[2]} is not built (build the acme-sidecar target)")
            return 77  # ctest SKIP_RETURN_CODE
        check_cli(c, argv[2])
    elif len(argv) == 2 and argv[1] == "runbook":
        check_runbook(c)
    elif len(argv) == 2 and argv[1] == "prometheusrule":
        docs = yaml.safe_load_all((ROOT / "manifests/components/monitoring/prometheusrule.yaml").read_text())
        check_prometheusrule_docs(c, [d for d in docs if d])
    else:
        sys.stderr.write(__doc__)
        return 2
    return c.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
