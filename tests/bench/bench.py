#!/usr/bin/env python3
"""acme-sidecar benchmark harness (started by tests/bench/run inside a private network namespace).

Phases: 1 issuance latency (sidecar vs uacme trimmed/shipped bundle vs lego), 2 throughput (N Ingresses at
once), 3 challenge responder under wrk (nginx static, nginx->nginx-static, nginx->responder, responder direct,
idle connections), 4 scale and footprint (preloaded API server). Reports only: figures never fail the run.
"""
import argparse
import base64
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
# --max-concurrent-issuances for the benchmarked sidecar (default 4): 1,000 certificates at 4 in flight would
# take longer than the whole run may; the figure is reported next to the results.
# --max-concurrent-issuances of the bench sidecar: at 32, Pebble 2.4's store deadlock stalled 3 of 5 bursts
# once the sidecar got faster (README, "What is measured").
CONCURRENCY = int(os.environ.get("ACME_SIDECAR_BENCH_CONCURRENCY", "16"))
STALL_S = int(os.environ.get("ACME_SIDECAR_BENCH_STALL_S", "90"))  # a burst with no new Secret for this long has stalled (Pebble's deadlock); it is run again
PEBBLE_DIR = "https://127.0.0.1:14000/dir"
TOKEN = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXhx"[:43]
KEY_AUTH = TOKEN + "." + "dGh1bWJwcmludHRodW1icHJpbnR0aHVtYnByaW50dGh1"[:43]
assert len(KEY_AUTH) == 87


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stats(values):
    v = sorted(values)
    if not v:
        return None
    def pct(p):
        return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]
    return {"n": len(v), "min": v[0], "p50": statistics.median(v), "p95": pct(95), "max": v[-1],
            "mean": statistics.fmean(v)}


def mmm(values, fmt="{:.3g}"):
    """min / median / max of repetitions."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return " / ".join(fmt.format(x) for x in (min(values), statistics.median(values), max(values)))


def short_symbol(line):
    """perf lines with C++ template arguments dropped (nlohmann::basic_json<...> → json)."""
    line = line.replace("nlohmann::json_abi_v3_11_2::", "nlohmann::").replace("std::__cxx11::", "std::")
    out, depth = [], 0
    for ch in line:
        if ch == "<":
            depth += 1
            if depth == 1:
                out.append("<…>")
            continue
        if ch == ">" and depth:
            depth -= 1
            continue
        if not depth:
            out.append(ch)
    return "".join(out)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def minor_faults(pid):
    """Minor page faults of a process and its threads so far: on this VM each one is a trip through the
    hypervisor's shadow page tables, so fresh heap pages are expensive."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7])  # minflt (field 10)


def context_switches(pid):
    """Voluntary + involuntary context switches summed over the process's threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass  # the thread ended meanwhile
    return total


def interrupts():
    """Interrupts so far, summed over CPUs, by kind (/proc/interrupts: LOC timer, RES reschedule and CAL
    function-call IPIs). On this VM each one traps to the hypervisor, and its cost is charged to whatever
    thread it interrupts."""
    out = {}
    with open("/proc/interrupts") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] in ("LOC:", "RES:", "CAL:", "TLB:"):
                out[parts[0][:-1]] = sum(int(x) for x in parts[1:] if x.isdigit())
    return out


def tcp_active_opens():
    """TCP connections opened (connect) in this network namespace so far (/proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("ActiveOpens")])


def nginx_worker(master_pid):
    """The worker of a one-worker nginx (the master's only child)."""
    for _ in range(100):
        kids = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise RuntimeError(f"nginx {master_pid} has no worker")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB
    return None


def wait_port(port, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


class Procs:
    def __init__(self, work):
        self.work = work
        self.procs = {}

    def start(self, name, argv, env=None, cwd=None):
        out = open(os.path.join(self.work, name + ".log"), "ab")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=e, cwd=cwd)
        self.procs[name] = p
        return p

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for n in list(self.procs):
            self.stop(n)


class Kube:
    """Minimal HTTPS client for the fake API server (admin token)."""

    def __init__(self, kdir):
        ready = json.load(open(os.path.join(kdir, "ready")))
        self.port = ready["port"]
        self.token = ready["admin_token"]
        self.ctx = ssl.create_default_context(cafile=os.path.join(kdir, "ca.crt"))
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
            self.local.c = c
        return c

    def request(self, method, path, body=None):
        for attempt in range(3):
            c = self.conn()
            try:
                c.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                return r.status, (json.loads(data) if data else None)
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.c = None
                if attempt == 2:
                    raise

    def create_ingress(self, ns, name, host, secret):
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"ingressClassName": "nginx", "tls": [{"hosts": [host], "secretName": secret}],
                         "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                             "service": {"name": "web", "port": {"number": 80}}}}]}}]}}
        st, resp = self.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", body)
        if st != 201:
            raise RuntimeError(f"create ingress {name}: {st} {resp}")


class SecretWatch(threading.Thread):
    """Records the first time each Secret (ns/name) is seen with a tls.crt (ADDED or MODIFIED)."""

    def __init__(self, kube, ns):
        super().__init__(daemon=True)
        self.kube, self.ns = kube, ns
        self.seen = {}
        self.cv = threading.Condition()
        self.ready = threading.Event()
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.kube.port, context=self.kube.ctx, timeout=3600)
                c.request("GET", f"/api/v1/namespaces/{self.ns}/secrets?watch=true&resourceVersion=0",
                          headers={"Authorization": "Bearer " + self.kube.token})
                r = c.getresponse()
                self.ready.set()
                while True:
                    line = r.readline()
                    if not line:
                        break
                    t = time.monotonic()
                    ev = json.loads(line)
                    obj = ev.get("object", {})
                    if ev.get("type") in ("ADDED", "MODIFIED") and obj.get("data", {}).get("tls.crt"):
                        name = obj["metadata"]["name"]
                        with self.cv:
                            self.seen.setdefault(name, t)
                            self.cv.notify_all()
            except Exception as e:  # re-watch; a bench must not die on a dropped stream
                log(f"secret watch: {e!r}; re-watching")
                time.sleep(0.2)

    def wait_for(self, names, timeout, stall=None):
        """True once every name was seen; False at the deadline, or when `stall` seconds pass without a
        new Secret."""
        deadline = time.monotonic() + timeout
        progress, last = len(self.seen), time.monotonic()
        with self.cv:
            while not all(n in self.seen for n in names):
                now = time.monotonic()
                if len(self.seen) != progress:
                    progress, last = len(self.seen), now
                left = deadline - now
                if stall is not None:
                    left = min(left, last + stall - now)
                if left <= 0:
                    return False
                self.cv.wait(min(left, 1.0))
        return True


class Bench:
    def __init__(self, a):
        self.a = a
        self.root = a.root
        self.build = os.environ.get("ACME_SIDECAR_BENCH_BUILD") or a.build_dir or os.path.join(a.root, "build-bench")
        self.sidecar_bin = os.path.join(self.build, "sidecar", "acme-sidecar")
        self.apiserver_bin = os.path.join(self.build, "tests", "bench", "bench-apiserver")
        self.responder_bin = os.path.join(self.build, "tests", "bench", "bench-responder")
        self.crypto_bin = os.path.join(self.build, "tests", "bench", "bench-crypto")
        self.work = tempfile.mkdtemp(prefix="acme-sidecar-bench.")
        os.chmod(self.work, 0o755)  # nginx workers (www-data) serve the webroots below it
        self.p = Procs(self.work)
        self.r = {}  # results
        self.notes = []
        smoke = a.smoke
        self.n_latency = 3 if smoke else 100
        self.n_uacme_shipped = 2 if smoke else 20
        self.n_lego = 1 if smoke else 5
        self.n_burst = 20 if smoke else 1000
        self.wrk_secs = 2 if smoke else 10
        self.wrk_reps = 1 if smoke else 3
        self.n_scale = 1000 if smoke else 10000
        self.n_scale_small = 100 if smoke else 1000
        self.decide_timeout = 20 if smoke else 120
        self.scale_reps = 1 if smoke else 3
        self.idle_secs = 5 if smoke else 60

    # ---------------------------------------------------------------- infrastructure
    def sh(self, *argv, **kw):
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)

    def start_pebble(self):
        d = os.path.join(self.work, "pebble")
        os.makedirs(d)
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                "2", "-subj", "/CN=bench pebble CA", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt")
        self.sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                "/CN=localhost", "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.csr")
        with open(f"{d}/ext", "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.sh("openssl", "x509", "-req", "-in", f"{d}/tls.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext", "-out", f"{d}/tls.crt")
        with open(f"{d}/config.json", "w") as f:
            json.dump({"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
                                  "certificate": f"{d}/tls.crt", "privateKey": f"{d}/tls.key", "httpPort": 80,
                                  "tlsPort": 5001, "ocspResponderURL": "",
                                  "externalAccountBindingRequired": False}}, f)
        self.ca_file = f"{d}/ca.crt"
        self.p.start("challtestsrv", ["pebble-challtestsrv", "-dns01", "127.0.0.1:8053", "-http01", "", "-https01",
                                      "", "-tlsalpn01", "", "-management", "127.0.0.1:8055", "-defaultIPv4",
                                      "127.0.0.1", "-defaultIPv6", ""])
        wait_port(8055, "pebble-challtestsrv")
        self.start_pebble_process()

    def start_pebble_process(self):
        d = os.path.join(self.work, "pebble")
        self.pebble = self.p.start("pebble", ["pebble", "-config", f"{d}/config.json", "-dnsserver", "127.0.0.1:8053"],
                                   env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
                                        "PEBBLE_AUTHZREUSE": "0"})
        wait_port(14000, "pebble")
        self.pebble_log = os.path.join(self.work, "pebble.log")

    def restart_after_pebble_stall(self, attempt):
        """Pebble 2.4 can deadlock under a burst (tests/bench/README.md, "Not kept: TCP_NODELAY"). Keep its
        goroutine dump, then start Pebble, the fake API server and the sidecar afresh."""
        self.watch.stopped = True
        self.p.stop("sidecar")
        self.p.stop("apiserver")
        self.pebble.send_signal(signal.SIGQUIT)  # Go prints every goroutine's stack, then exits
        try:
            self.pebble.wait(30)
        except subprocess.TimeoutExpired:
            self.pebble.kill()
        self.p.procs.pop("pebble", None)
        kept = os.path.join(self.work, f"pebble-stalled-{attempt}.log")
        os.replace(self.pebble_log, kept)
        deadlock = "FindValidAuthorization" in open(kept, errors="replace").read()
        self.notes.append(f"The burst stalled (no Secret for {STALL_S} s) and was run again from scratch; Pebble's "
                          f"log {'shows its store deadlock (FindValidAuthorization) in the goroutine dump' if deadlock else 'is kept'}"
                          f" in {os.path.basename(kept)}.")
        log(f"  burst stalled; Pebble deadlock in its dump: {deadlock}; restarting Pebble, API server and sidecar")
        self.start_pebble_process()
        shutil.rmtree(self.kdir, ignore_errors=True)  # a fresh API server: new CA, no objects
        self.start_issuing_stack(f"warm-retry{attempt}", f"w{attempt}.retry.bench.example")

    def start_issuing_stack(self, warm_name, warm_host):
        """An empty fake API server, the sidecar and a watch on the bench Secrets; one warm-up issuance
        (account registration, directory) outside the figures, like uacme's `new`."""
        kdir = self.start_apiserver(0)
        self.kdir = kdir
        self.kube = Kube(kdir)
        self.sidecar, _, _ = self.start_sidecar(kdir, concurrency=CONCURRENCY)
        wait_port(9402, "sidecar")
        self.watch = SecretWatch(self.kube, "bench")
        self.watch.start()
        self.watch.ready.wait(30)
        self.issue_one(warm_name, warm_host)

    def pebble_requests(self):
        """ACME requests Pebble logged so far (its own count: '<METHOD> <path> -> calling handler()')."""
        n = 0
        with open(self.pebble_log, errors="replace") as f:
            for line in f:
                if "-> calling handler()" in line:
                    n += 1
        return n

    def pebble_request_kinds(self, start):
        kinds = {}
        with open(self.pebble_log, errors="replace") as f:
            lines = [l for l in f if "-> calling handler()" in l][start:]
        for l in lines:
            m = re.search(r"(GET|POST|HEAD) (/[A-Za-z-]*)", l)
            k = m.group(1) + " " + m.group(2) if m else "?"
            kinds[k] = kinds.get(k, 0) + 1
        return kinds

    def start_nginx(self):
        d = os.path.join(self.work, "nginx")
        os.makedirs(f"{d}/tmp")
        os.makedirs(f"{d}/certs")
        os.makedirs(f"{d}/servers")
        self.webroot = f"{d}/webroot"
        os.makedirs(f"{self.webroot}/.well-known/acme-challenge")
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                "2", "-subj", "/CN=default", "-keyout", f"{d}/certs/default.key", "-out", f"{d}/certs/default.crt")
        snippet = self.sh(os.path.join(self.root, "tests/manifests/extract-snippet"), "ingress-nginx").stdout
        self.snippet = snippet
        # the http-block part: the kept-alive upstream the location proxies to
        self.http_snippet = self.sh(os.path.join(self.root, "tests/manifests/extract-snippet"), "ingress-nginx",
                                    "--http").stdout
        with open(f"{d}/acme-snippet.conf", "w") as f:
            f.write(snippet)
        # Peers' names (u*, l*) are served from a webroot by the same nginx: the same data path.
        with open(f"{d}/servers/peers.conf", "w") as f:
            f.write("server {\n  listen 127.0.0.1:80;\n  server_name ~^(u|us|l)[0-9]+\\.;\n"
                    f"  location ^~ /.well-known/acme-challenge/ {{ root {self.webroot}; }}\n"
                    "  location / { return 308 https://$host$request_uri; }\n}\n")
        tpl = open(os.path.join(self.root, "tests/e2e/nginx.conf.in")).read()
        conf = (tpl.replace("@DIR@", d).replace("@HTTP_PORT@", "80").replace("@HTTPS_PORT@", "443")
                .replace("@UPSTREAM@", self.http_snippet).replace("@SNIPPET@", f"include {d}/acme-snippet.conf;"))
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(conf)
        self.p.start("nginx", ["nginx", "-c", f"{d}/nginx.conf", "-g", "daemon off;"])
        wait_port(80, "nginx")
        self.nginx_dir = d

    def start_apiserver(self, count, name="apiserver"):
        kdir = os.path.join(self.work, name)
        os.makedirs(kdir, exist_ok=True)
        p = self.p.start(name, [self.apiserver_bin, "--dir", kdir, "--port", "6443", "--count", str(count),
                                "--issuer", PEBBLE_DIR])
        deadline = time.time() + 600
        while not os.path.exists(os.path.join(kdir, "ready")):
            if p.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"bench-apiserver did not start; see {self.work}/{name}.log")
            time.sleep(0.05)
        return kdir

    def start_sidecar(self, kdir, name="sidecar", concurrency=None):
        logf = os.path.join(self.work, name + ".log")
        if os.path.exists(logf):
            os.remove(logf)
        t0 = time.monotonic()
        p = self.p.start(name, [
            self.sidecar_bin, "--acme-directory", PEBBLE_DIR, "--acme-ca-bundle", self.ca_file,
            "--acme-email", "bench@example.org", "--kubeconfig", os.path.join(kdir, "kubeconfig"),
            "--namespace", "acme-sidecar", "--pod-name", "bench-0", "--no-leader-elect",
            "--ingress-class", "nginx"] + (["--max-concurrent-issuances", str(concurrency)] if concurrency else []) + [
            "--challenge-listen", "127.0.0.1:8089", "--metrics-listen", "127.0.0.1:9402",
            "--controller-http", "127.0.0.1:80", "--controller-https", "127.0.0.1:443"] +
            os.environ.get("ACME_SIDECAR_BENCH_SIDECAR_ARGS", "").split())
        return p, t0, logf

    def metrics(self):
        t = time.monotonic()
        with urllib.request.urlopen("http://127.0.0.1:9402/metrics", timeout=10) as r:
            body = r.read()
        return body.decode(), time.monotonic() - t

    @staticmethod
    def gauge(text, name):
        m = re.search(r"^" + name + r"(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else None

    @staticmethod
    def ready_count(text):
        return len(re.findall(r"^acme_sidecar_certificate_ready\{[^}]*\} 1$", text, re.M))

    # ---------------------------------------------------------------- phase 1
    def phase_latency(self):
        log(f"phase 1: issuance latency, {self.n_latency} certificates one after another")
        self.start_issuing_stack("warm", "w0.bench.example")
        lat = []
        p0 = self.pebble_requests()
        for i in range(self.n_latency):
            lat.append(self.issue_one(f"lat{i}", f"s{i}.lat.bench.example"))
        self.r["sidecar_latency"] = stats(lat)
        self.r["sidecar_latency_acme"] = (self.pebble_requests() - p0) / self.n_latency
        log(f"  sidecar p50 {self.r['sidecar_latency']['p50']*1000:.0f} ms")
        self.phase_uacme()
        self.phase_lego()

    def issue_one(self, name, host):
        t0 = time.monotonic()
        self.kube.create_ingress("bench", name, host, name + "-tls")
        if not self.watch.wait_for([name + "-tls"], 120):
            raise RuntimeError(f"Secret {name}-tls not written within 120 s; see {self.work}/sidecar.log")
        return self.watch.seen[name + "-tls"] - t0

    def uacme_run(self, prefix, n, bundle, label):
        conf = os.path.join(self.work, "uacme-" + label)
        os.makedirs(conf, exist_ok=True)
        hook = os.path.join(self.work, "uacme-hook.sh")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\n# uacme hook: METHOD TYPE IDENT TOKEN AUTH -> a file nginx serves\n"
                    "[ \"$2\" = http-01 ] || exit 1\n"
                    f"f={self.webroot}/.well-known/acme-challenge/$4\n"
                    "case $1 in begin) printf %s \"$5\" >\"$f\";; *) rm -f \"$f\";; esac\n")
        os.chmod(hook, 0o755)
        subprocess.run(["mount", "--bind", bundle, "/etc/ssl/certs/ca-certificates.crt"], check=True)
        try:
            base = ["uacme", "-c", conf, "-a", PEBBLE_DIR, "-t", "EC", "-o", "-y"]
            r = subprocess.run(base + ["new", "bench@example.org"], capture_output=True, text=True)
            if r.returncode not in (0, 1):
                raise RuntimeError(f"uacme new: {r.stderr[-500:]}")
            lat = []
            for i in range(n):
                t0 = time.monotonic()
                r = subprocess.run(base + ["-h", hook, "issue", f"{prefix}{i}.uacme.bench.example"],
                                   capture_output=True, text=True)
                dt = time.monotonic() - t0
                if r.returncode != 0:
                    raise RuntimeError(f"uacme issue: {r.stderr[-800:]}")
                lat.append(dt)
            return lat
        finally:
            subprocess.run(["umount", "/etc/ssl/certs/ca-certificates.crt"], check=False)

    def phase_uacme(self):
        try:
            trimmed = os.path.join(self.work, "bundle-trimmed.pem")
            shutil.copy(self.ca_file, trimmed)
            shipped = os.path.join(self.work, "bundle-shipped.pem")
            with open(shipped, "w") as f:
                f.write(open("/etc/ssl/certs/ca-certificates.crt").read())
                f.write(open(self.ca_file).read())
            self.r["system_cas"] = open("/etc/ssl/certs/ca-certificates.crt").read().count("BEGIN CERTIFICATE")
            log(f"  uacme, trimmed bundle: {self.n_latency}")
            p0 = self.pebble_requests()
            self.r["uacme_trimmed"] = stats(self.uacme_run("u", self.n_latency, trimmed, "trimmed"))
            self.r["uacme_acme"] = (self.pebble_requests() - p0) / self.n_latency
            log(f"  uacme, shipped bundle + test CA: {self.n_uacme_shipped}")
            self.r["uacme_shipped"] = stats(self.uacme_run("us", self.n_uacme_shipped, shipped, "shipped"))
        except Exception as e:
            self.notes.append(f"uacme failed: {e}")
            log(f"  uacme failed: {e}")

    def phase_lego(self):
        try:
            log(f"  lego: {self.n_lego}")
            path = os.path.join(self.work, "lego")
            env = dict(os.environ, LEGO_CA_CERTIFICATES=self.ca_file)
            lat = []
            p0 = self.pebble_requests()
            for i in range(self.n_lego + 1):  # the first also registers the account: not counted
                t0 = time.monotonic()
                r = subprocess.run(["lego", "--server", PEBBLE_DIR, "--email", "bench@example.org", "--accept-tos",
                                    "--path", path, "--key-type", "ec256", "--http", "--http.webroot", self.webroot,
                                    "-d", f"l{i}.lego.bench.example", "run"], capture_output=True, text=True, env=env)
                dt = time.monotonic() - t0
                if r.returncode != 0:
                    raise RuntimeError(f"lego: {r.stderr[-800:]}")
                if i == 0:
                    p0 = self.pebble_requests()
                else:
                    lat.append(dt)
            self.r["lego"] = stats(lat)
            self.r["lego_acme"] = (self.pebble_requests() - p0) / self.n_lego
        except Exception as e:
            self.notes.append(f"lego failed: {e}")
            log(f"  lego failed: {e}")

    # ---------------------------------------------------------------- phase 2
    def kube_requests(self):
        """Requests the fake API server has served so far, by kind ("GET secrets 404", ...): SIGUSR1 makes
        bench-apiserver write them to requests.json."""
        path = os.path.join(self.kdir, "requests.json")
        if os.path.exists(path):
            os.remove(path)
        self.p.procs["apiserver"].send_signal(signal.SIGUSR1)
        deadline = time.time() + 30
        while not os.path.exists(path):
            if time.time() > deadline:
                raise RuntimeError("bench-apiserver wrote no requests.json")
            time.sleep(0.05)
        with open(path) as f:
            return json.load(f)

    def phase_throughput(self):
        for attempt in range(1, 4):
            if self.burst(attempt) or attempt == 3:
                break
            self.restart_after_pebble_stall(attempt)
        # Two more bursts without any tracing, for the spread of the CPU ratio (Pebble's CPU per
        # certificate moves with timing, by ±10 % from burst to burst); a stalled one is left out.
        # A stalled repetition restarts the stack (as a stalled first burst does) and is run again, so the
        # spread always has three bursts unless Pebble stalls four times in a row.
        if self.r.get("burst", {}).get("complete") and not self.a.smoke:
            rep, tries = 2, 0
            while rep <= 3 and tries < 4:
                tries += 1
                if self.burst_plain(rep, tries):
                    rep += 1
                else:
                    self.restart_after_pebble_stall(f"rep{tries}")
        self.watch.stopped = True
        self.p.stop("sidecar")
        self.p.stop("apiserver")

    def burst(self, attempt):
        """One 1,000 burst; False when it stalled (then nothing is recorded)."""
        n = self.n_burst
        log(f"phase 2: {n} Ingresses created at once" + (f" (attempt {attempt})" if attempt > 1 else ""))
        probe_quiet = self.signing_probe_stop(self.signing_probe_start(2 if self.a.smoke else 5))
        names = [f"burst{i}" for i in range(n)]
        k0 = self.kube_requests()
        p0 = self.pebble_requests()
        # dwarf call graphs reach our frames through libcurl and OpenSSL (no frame pointers): needed for
        # the by-activity breakdown below.
        perf = self.perf_start(self.sidecar.pid, "burst", callgraph="dwarf")
        sys_side, sys_peb = self.syscalls_start(self.sidecar.pid, "sidecar"), self.syscalls_start(self.pebble.pid, "pebble")
        strace = self.strace_start(self.sidecar.pid)
        c_side0, c_peb0 = cpu_seconds(self.sidecar.pid), cpu_seconds(self.pebble.pid)
        f_side0, f_peb0 = minor_faults(self.sidecar.pid), minor_faults(self.pebble.pid)
        x_side0, x_peb0 = context_switches(self.sidecar.pid), context_switches(self.pebble.pid)
        opens0 = tcp_active_opens()
        irq0 = interrupts()
        probe = self.signing_probe_start()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda nm: self.kube.create_ingress("bench", nm, nm + ".burst.bench.example", nm + "-tls"),
                        names))
        t_created = time.monotonic() - t0
        ok = self.watch.wait_for([nm + "-tls" for nm in names], 900 if not self.a.smoke else 180, stall=STALL_S)
        t_all = time.monotonic() - t0
        if not ok and attempt < 3:
            for h in (sys_side, sys_peb):
                if h:
                    h[0].kill()
            for h in (strace, (perf, None)):
                if h and h[0]:
                    h[0].kill()
            self.signing_probe_stop(probe)
            return False
        c_side, c_peb = cpu_seconds(self.sidecar.pid) - c_side0, cpu_seconds(self.pebble.pid) - c_peb0
        f_side, f_peb = minor_faults(self.sidecar.pid) - f_side0, minor_faults(self.pebble.pid) - f_peb0
        x_side, x_peb = context_switches(self.sidecar.pid) - x_side0, context_switches(self.pebble.pid) - x_peb0
        opens = tcp_active_opens() - opens0
        irq = {k: (v - irq0.get(k, 0)) / max(t_all, 1e-9) for k, v in interrupts().items()}
        probe_busy = self.signing_probe_stop(probe)
        reqs = self.pebble_requests() - p0
        n_sys_side, n_sys_peb = self.syscalls_stop(sys_side), self.syscalls_stop(sys_peb)
        self.strace_stop(strace)
        self.perf_stop(perf, "burst", "sidecar while issuing the burst")
        done = sum(1 for nm in names if nm + "-tls" in self.watch.seen)
        k1 = self.kube_requests()
        # The harness's own Ingress creates and watches are not the sidecar's.
        kube = {k: (v - k0.get(k, 0)) / max(done, 1) for k, v in k1.items()
                if v > k0.get(k, 0) and not k.startswith("POST ingresses") and "(watch)" not in k}
        self.r["burst"] = {"n": n, "done": done, "complete": ok, "create_s": t_created, "all_s": t_all,
                           "per_s": done / t_all, "sidecar_cpu": c_side / max(done, 1),
                           "pebble_cpu": c_peb / max(done, 1), "acme_per_cert": reqs / max(done, 1),
                           "kinds": {k: v / max(done, 1) for k, v in self.pebble_request_kinds(p0).items()},
                           "kube": kube, "faults": (f_side / max(done, 1), f_peb / max(done, 1)),
                           "ctxt_switches": (x_side / max(done, 1), x_peb / max(done, 1)), "tcp_opens": opens / max(done, 1),
                           "irq_per_s": irq, "probe_busy": probe_busy,
                           "probe_quiet": probe_quiet}
        if n_sys_side is not None and n_sys_peb is not None and done:
            self.r["burst"]["syscalls"] = (n_sys_side / done, n_sys_peb / done)
        self.perf_activities(perf, "burst", done)
        log(f"  {done}/{n} in {t_all:.1f} s; sidecar {c_side:.1f} CPU-s, pebble {c_peb:.1f} CPU-s, "
            f"{reqs / max(done, 1):.2f} ACME requests per certificate; minor faults per certificate "
            f"sidecar {f_side / max(done, 1):.1f}, pebble {f_peb / max(done, 1):.1f}; sidecar context switches "
            f"per certificate {x_side / max(done, 1):.1f}, pebble {x_peb / max(done, 1):.1f}")
        return True

    def burst_plain(self, rep, attempt):
        """Another burst of new Ingresses, measured by /proc only (CPU of both processes, wall time).
        False when it stalled (nothing is recorded)."""
        n = self.n_burst
        log(f"phase 2: {n} Ingresses created at once (repetition {rep}, no tracing, attempt {attempt})")
        names = [f"burst{attempt}x{i}" for i in range(n)]
        c_side0, c_peb0 = cpu_seconds(self.sidecar.pid), cpu_seconds(self.pebble.pid)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda nm: self.kube.create_ingress("bench", nm, nm + ".burst.bench.example", nm + "-tls"),
                        names))
        ok = self.watch.wait_for([nm + "-tls" for nm in names], 900, stall=STALL_S)
        t_all = time.monotonic() - t0
        if not ok:
            log(f"  repetition {rep} stalled: restarting the stack and running it again")
            self.notes.append(f"Burst repetition {rep} stalled (no Secret for {STALL_S} s: Pebble's store deadlock, "
                              "see README); it was run again on a fresh stack.")
            return False
        c_side, c_peb = cpu_seconds(self.sidecar.pid) - c_side0, cpu_seconds(self.pebble.pid) - c_peb0
        rec = {"all_s": t_all, "sidecar_cpu": c_side / n, "pebble_cpu": c_peb / n}
        self.r.setdefault("burst_reps", []).append(rec)
        log(f"  {n}/{n} in {t_all:.1f} s; sidecar {c_side:.1f} CPU-s, pebble {c_peb:.1f} CPU-s, "
            f"ratio {c_side / max(c_peb, 1e-9):.2f}")
        return True

    def signing_probe_start(self, seconds=None):
        """The sidecar's JWS signing code in a process of its own (`bench-crypto --probe`): one signature
        about every millisecond. Run alone and during the burst, it measures how much the machine's load by
        itself inflates the CPU time of the same operation."""
        if not os.path.exists(self.crypto_bin):
            return None
        seconds = seconds or (3 if self.a.smoke else 20)
        return subprocess.Popen([self.crypto_bin, "--probe", str(seconds)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)

    def signing_probe_stop(self, proc):
        if proc is None:
            return None
        try:
            out, _ = proc.communicate(timeout=120)
            return json.loads(out)
        except (subprocess.TimeoutExpired, ValueError):
            proc.kill()
            return None

    def syscalls_start(self, pid, tag):
        """System calls of a process and its threads (perf's raw_syscalls tracepoint): a load-independent
        cost figure on a VM where each system call is expensive."""
        if not shutil.which("perf"):
            return None
        out = os.path.join(self.work, f"syscalls-{tag}.csv")
        proc = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", "raw_syscalls:sys_enter", "-p", str(pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return (proc, out)

    def syscalls_stop(self, handle):
        if not handle:
            return None
        proc, out = handle
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        try:
            with open(out) as f:
                for line in f:
                    fields = line.strip().split(",")
                    if len(fields) > 2 and "raw_syscalls:sys_enter" in fields[2] and fields[0].isdigit():
                        return int(fields[0])
        except OSError:
            pass
        self.notes.append("perf could not count system calls (raw_syscalls tracepoint unavailable)")
        return None

    def strace_start(self, pid):
        """ACME_SIDECAR_BENCH_STRACE=1: a per-system-call breakdown of the sidecar during the burst
        (strace slows the sidecar down: use it to see which calls, not for the timings)."""
        if os.environ.get("ACME_SIDECAR_BENCH_STRACE") != "1" or not shutil.which("strace"):
            return None
        out = os.path.join(self.work, "strace-burst.txt")
        return (subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)

    def strace_stop(self, handle):
        if not handle:
            return
        proc, out = handle
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        with open(out) as f:
            self.perf_text = getattr(self, "perf_text", {})
            self.perf_text["strace -c -f of the sidecar during the burst (slowed down by strace)"] = f.read().rstrip()

    # Activities of one issuance, most specific first: a sample counts for the first marker found
    # anywhere in its call chain (inclusive time, so every sample lands in exactly one activity).
    ACTIVITIES = [
        ("ACME: JWS signing (ECDSA)", ["acme::jws_sign"]),
        ("ACME: chain check at download", ["acme::check_chain"]),
        ("certificate key, CSR, PKCS#8", ["crypto::make_csr", "PrivateKey::generate", "to_pkcs8_pem",
                                          "PrivateKey::public_key"]),
        ("ACME: HTTP exchanges (HTTP client, TLS, kernel)", ["acme::Transport::"]),
        ("informers (watch streams, decoding, caches)", ["kube::Client::watch", "kube::Informer", "parse_watch_event",
                                                          "LineSplitter", "SecretCache", "IngressLister"]),
        ("self-check through the controller (an HTTP exchange)", ["make_self_check"]),
        ("Kubernetes: HTTP exchanges (HTTP client, TLS, kernel)", ["kube::Client::send"]),
        ("Kubernetes: requests, JSON", ["kube::Client::", "KubeSecretStore", "EventRecorder", "OrderStateStore"]),
        ("ACME: flow, JSON, polling", ["acme::AcmeClient::"]),
        ("inspecting Secrets", ["CryptoInspector"]),
        ("challenge responder", ["MHD_", "challenge::"]),
        ("metrics", ["metrics::"]),
        ("reconcile, work queue", ["controller::"]),
    ]

    def perf_activities(self, proc, tag, certificates):
        """Where the sidecar's CPU goes per certificate: perf samples bucketed by activity."""
        if not proc or not certificates:
            return
        data = os.path.join(self.work, f"perf-{tag}.data")
        r = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"], capture_output=True, text=True)
        counts, total, stack = {}, 0, []

        def flush():
            nonlocal total
            if not stack:
                return
            total += 1
            name = "other (threads outside these, unresolved frames)"
            for label, markers in self.ACTIVITIES:
                if any(m in f for f in stack for m in markers):
                    name = label
                    break
            counts[name] = counts.get(name, 0) + 1

        for line in r.stdout.splitlines():
            if line.strip():
                stack.append(line.strip().split(None, 1)[-1])  # "<ip> <symbol>"
            else:
                flush()
                stack = []
        flush()
        if not total:
            return
        cpu_ms = self.r["burst"]["sidecar_cpu"] * 1000
        rows = ["| activity | share of samples | ≈ ms per certificate |", "| --- | --- | --- |"]
        for name, c in sorted(counts.items(), key=lambda kv: -kv[1]):
            rows.append(f"| {name} | {100 * c / total:.1f} % | {cpu_ms * c / total:.2f} |")
        self.r["burst"]["activities"] = {k: v / total for k, v in counts.items()}
        self.activities_text = f"{total} samples (perf, dwarf call graphs), {cpu_ms:.1f} ms CPU per certificate\n\n" + \
            "\n".join(rows)

    def perf_start(self, pid, tag, callgraph=None):
        if not self.a.perf or not shutil.which("perf"):
            return None
        data = os.path.join(self.work, f"perf-{tag}.data")
        # ACME_SIDECAR_BENCH_PERF_CALLGRAPH=dwarf attributes time inside libraries built without frame pointers.
        cg = os.environ.get("ACME_SIDECAR_BENCH_PERF_CALLGRAPH", callgraph or "fp")
        opts = ["-F", "499", "-g"] if cg == "fp" else ["-F", "97", "--call-graph", cg]
        return subprocess.Popen(["perf", "record", "-q"] + opts + ["-p", str(pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def perf_stop(self, proc, tag, what):
        """perf profile summary: the hottest symbols (self time) and the hottest DSOs."""
        if not proc:
            return
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        data = os.path.join(self.work, f"perf-{tag}.data")
        out = []
        for sort in ("dso", "dso,sym"):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                                "--sort", sort, "--percent-limit", "1.5"], capture_output=True, text=True)
            out += [short_symbol(l.rstrip()) for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")][:25]
        self.perf_text = getattr(self, "perf_text", {})
        self.perf_text[what] = "\n".join(out)

    # ---------------------------------------------------------------- phase 3
    def wrk(self, port, procs=None, count_syscalls=False, secs=None):
        """procs: {role: pid} whose CPU (and, with count_syscalls, syscalls through perf) are counted over
        the run, per request. Tracing syscalls slows them, so it runs only in a separate run."""
        url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{TOKEN}"
        procs = procs or {}
        perfs = {}
        if count_syscalls:
            for role, pid in procs.items():
                perfs[role] = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p",
                                                str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.2)  # perf attached before the first request (its counts start at attach)
        cpu0 = {role: cpu_seconds(pid) for role, pid in procs.items()}
        opens0 = tcp_active_opens()
        r = subprocess.run(["wrk", "-t1", "-c64", f"-d{secs or self.wrk_secs}s", "--latency", url],
                           capture_output=True, text=True)
        opens = tcp_active_opens() - opens0
        cpu = {role: cpu_seconds(pid) - cpu0[role] for role, pid in procs.items()}
        syscalls = {}
        for role, pp in perfs.items():
            pp.send_signal(signal.SIGINT)
            err = pp.communicate()[1]
            m = re.search(r"^(\d+),[^\n]*raw_syscalls:sys_enter", err, re.M)
            if m:
                syscalls[role] = int(m.group(1))
        out = r.stdout
        reqs = int(re.search(r"(\d+) requests in", out).group(1))
        cost = {"opens": opens / reqs}
        for role in procs:
            cost[role + "_cpu_us"] = 1e6 * cpu[role] / reqs
            if role in syscalls:
                cost[role + "_syscalls"] = syscalls[role] / reqs
        rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
        def lat(p):
            m = re.search(r"^\s+" + p + r"%\s+([0-9.]+)(us|ms|s)\b", out, re.M)
            return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: (.*)", out)
        if non2xx or errors:
            self.notes.append(f"wrk on port {port}: " + (non2xx.group(0) if non2xx else "") +
                              (" " + errors.group(0) if errors else ""))
        return {"rps": rps, "p50": lat("50"), "p99": lat("99"), "cost": cost}

    def phase_responder(self):
        log("phase 3: challenge responder under wrk")
        d = os.path.join(self.work, "wrk")
        os.makedirs(f"{d}/tmp")
        os.makedirs(f"{d}/root/.well-known/acme-challenge")
        with open(f"{d}/root/.well-known/acme-challenge/{TOKEN}", "w") as f:
            f.write(KEY_AUTH)
        common = (f"worker_processes 1;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
                  f"http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/p;\n"
                  f"  fastcgi_temp_path {d}/tmp/f;\n  uwsgi_temp_path {d}/tmp/u;\n  scgi_temp_path {d}/tmp/s;\n"
                  "  default_type text/plain;\n")
        with open(f"{d}/static.conf", "w") as f:
            f.write(common.replace("error_log", f"pid {d}/static.pid;\nerror_log") +
                    f"  server {{ listen 127.0.0.1:8081; root {d}/root; }}\n}}\n")
        prod = self.snippet  # the shipped snippets, verbatim: server-snippet + http-snippet (keep-alive upstream)
        with open(f"{d}/front.conf", "w") as f:
            f.write(common.replace("error_log", f"pid {d}/front.pid;\nerror_log") +
                    "  upstream static_up { server 127.0.0.1:8081; keepalive 32; }\n"
                    f"{self.http_snippet}\n"
                    "  server { listen 127.0.0.1:8082; location / { proxy_pass http://static_up; "
                    "proxy_http_version 1.1; proxy_set_header Connection \"\"; } }\n"
                    f"  server {{ listen 127.0.0.1:8083; {prod} }}\n"
                    "  server { listen 127.0.0.1:8084; location / { proxy_pass http://127.0.0.1:8089; } }\n}\n")
        self.p.start("nginx-static", ["nginx", "-c", f"{d}/static.conf", "-g", "daemon off;"])
        self.p.start("nginx-front", ["nginx", "-c", f"{d}/front.conf", "-g", "daemon off;"])
        self.p.start("responder", [self.responder_bin, "8089", TOKEN, KEY_AUTH])
        for port in (8081, 8082, 8083, 8084, 8089):
            wait_port(port, f"port {port}")
        for port in (8081, 8083, 8089):  # sanity: every path answers the key authorization
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/acme-challenge/{TOKEN}") as r:
                if r.read().decode() != KEY_AUTH:
                    raise RuntimeError(f"port {port} did not answer the key authorization")
        paths = [("nginx static", 8081), ("nginx → nginx-static (keep-alive)", 8082),
                 ("nginx → responder (shipped snippets)", 8083),
                 ("nginx → responder (no keep-alive: proxy_pass to the address)", 8084),
                 ("responder direct", 8089)]
        # Whose CPU each path costs: the front nginx's worker and the server that answers.
        static_w = nginx_worker(self.p.procs["nginx-static"].pid)
        front_w = nginx_worker(self.p.procs["nginx-front"].pid)
        resp = self.p.procs["responder"].pid
        roles = {8081: {"server": static_w}, 8082: {"front": front_w, "server": static_w},
                 8083: {"front": front_w, "server": resp}, 8084: {"front": front_w, "server": resp},
                 8089: {"server": resp}}
        perf_ok = shutil.which("perf") is not None and subprocess.run(
            ["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"], capture_output=True).returncode == 0
        res = {name: [] for name, _ in paths}
        if shutil.which("wrk"):
            for rep in range(self.wrk_reps):  # interleaved, so load from other users hits every path alike
                for name, port in paths:
                    res[name].append(self.wrk(port, roles[port]))
            if perf_ok:  # one extra, shorter run per path with the syscalls traced (not in the req/s figures)
                for name, port in paths:
                    traced = self.wrk(port, roles[port], count_syscalls=True, secs=min(3, self.wrk_secs))["cost"]
                    for x in res[name]:
                        x["cost"].update({k: v for k, v in traced.items() if k.endswith("_syscalls")})
            self.r["wrk"] = res
        else:
            self.notes.append("wrk is not installed: responder throughput not measured")
        self.r["wrk_order"] = [n for n, _ in paths]
        self.idle_connections()
        self.p.stop("nginx-front")
        self.p.stop("nginx-static")
        self.p.stop("responder")

    def idle_connections(self):
        """1,000 idle connections to the responder, then time challenge answers (direct and via nginx)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        idle = []
        res = {}
        try:
            for _ in range(1000):
                idle.append(socket.create_connection(("127.0.0.1", 8089)))
            time.sleep(0.5)
            for label, port in (("direct", 8089), ("via nginx (shipped snippets)", 8083)):
                ts = []
                for _ in range(20):
                    t = time.monotonic()
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/acme-challenge/{TOKEN}",
                                                timeout=5) as r:
                        body = r.read().decode()
                    ts.append(time.monotonic() - t)
                    if body != KEY_AUTH:
                        raise RuntimeError("wrong answer under idle connections")
                res[label] = max(ts)
            # A second batch of 1,000 idle connections made through nginx (client side idle) as well.
        except Exception as e:
            self.notes.append(f"idle-connection test: {e}")
        finally:
            for s in idle:
                s.close()
        self.r["idle"] = res

    # ---------------------------------------------------------------- phase 4
    def wait_synced(self, logf, n, t0, timeout, synced_only=False):
        """Seconds from start to the log line "caches synced" and to every certificate decided
        (managed_certificates = n and n certificate_ready = 1); decided is None when the timeout came
        first, with the count of decided certificates then."""
        t_synced = None
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            if t_synced is None and os.path.exists(logf) and "caches synced" in open(logf, errors="replace").read():
                t_synced = time.monotonic() - t0
                if synced_only:
                    return t_synced, None, 0
            if t_synced is not None:
                try:
                    text, _ = self.metrics()
                    ready = self.ready_count(text)
                    if self.gauge(text, "acme_sidecar_managed_certificates") == n and ready == n:
                        return t_synced, time.monotonic() - t0, ready
                except OSError:
                    pass
                time.sleep(0.05 if n <= 1000 else 0.5)
            else:
                time.sleep(0.01)
        if t_synced is None:
            raise RuntimeError(f"sidecar did not sync its caches in {timeout} s; see {logf}")
        return t_synced, None, ready

    def scale_point(self, n, reps, decide_timeout, idle):
        """Preloaded API server with n Ingresses + n valid Secrets; `reps` sidecar starts."""
        log(f"phase 4: scale, {n} Ingresses and valid Secrets preloaded (default --max-concurrent-issuances 4)")
        t = time.monotonic()
        kdir = self.start_apiserver(n, f"apiserver-{n}")
        res = {"n": n, "preload_s": time.monotonic() - t, "synced": [], "decided": [], "rss": [], "ready_at_timeout": None}
        p0 = self.pebble_requests()
        for rep in range(reps):
            last = rep == reps - 1
            p, t0, logf = self.start_sidecar(kdir, f"sidecar-{n}")
            perf = self.perf_start(p.pid, f"startup-{n}") if last else None
            synced, decided, ready = self.wait_synced(logf, n, t0, decide_timeout if last else 120,
                                                      synced_only=not last and n > 2000)
            if perf:
                self.perf_stop(perf, f"startup-{n}", f"sidecar from start, {n} certificates preloaded "
                               f"({'until all decided' if decided else f'first {decide_timeout} s'})")
            res["synced"].append(synced)
            if decided is not None:
                res["decided"].append(decided)
            elif last:
                res["ready_at_timeout"] = ready
                res["decide_timeout"] = decide_timeout
            res["rss"].append(proc_status(p.pid, "VmRSS"))
            if not last:
                self.p.stop(f"sidecar-{n}")
        log(f"  synced {mmm(res['synced'])} s, decided {mmm(res['decided'])} s"
            + (f" ({res['ready_at_timeout']} of {n} decided after {decide_timeout} s)" if res["ready_at_timeout"] is not None else "")
            + f", VmRSS {mmm(res['rss'])} MiB")
        # Idle CPU only once every certificate is decided (a start still deciding is not idle).
        if idle and (res["decided"] or n == 0) and res["ready_at_timeout"] is None:
            time.sleep(2)
            c0, w0 = cpu_seconds(p.pid), time.monotonic()
            time.sleep(idle)
            res["idle_pct"] = 100.0 * (cpu_seconds(p.pid) - c0) / (time.monotonic() - w0)
            res["idle_secs"] = idle
        scrape = []
        for _ in range(5):
            text, dt = self.metrics()
            scrape.append(dt)
        res["scrape"] = scrape
        res["scrape_bytes"] = len(text.encode())
        res["rss_end"] = proc_status(p.pid, "VmRSS")
        res["anon_end"] = proc_status(p.pid, "RssAnon")
        res["threads"] = len(os.listdir(f"/proc/{p.pid}/task"))
        res["ca_requests"] = self.pebble_requests() - p0
        res["ca_kinds"] = self.pebble_request_kinds(p0)
        log(f"  idle CPU {res.get('idle_pct', float('nan')):.3f}% of a core, scrape {mmm([x * 1000 for x in scrape])} ms, "
            f"{res['scrape_bytes']} bytes, CA requests {res['ca_requests']}")
        self.p.stop(f"sidecar-{n}")
        self.p.stop(f"apiserver-{n}")
        return res

    def phase_scale(self):
        # The small point shows the footprint once every decision is made (idle CPU needs a finished
        # start); the big one the issue's 10,000.
        self.r["scale"] = [self.scale_point(self.n_scale_small, self.scale_reps, 300, self.idle_secs),
                           self.scale_point(self.n_scale, self.scale_reps, self.decide_timeout, self.idle_secs)]

        log("phase 4b: nothing to manage")
        kdir = self.start_apiserver(0, "apiserver-empty")
        vals = []
        for rep in range(self.scale_reps):
            p, t0, logf = self.start_sidecar(kdir, "sidecar-empty")
            self.wait_synced(logf, 0, t0, 60)
            time.sleep(2)
            vals.append((proc_status(p.pid, "VmRSS"), proc_status(p.pid, "RssAnon")))
            self.p.stop("sidecar-empty")
        self.p.stop("apiserver-empty")
        worker = self.nginx_worker()
        self.r["empty"] = {"rss": [v[0] for v in vals], "anon": [v[1] for v in vals],
                           "nginx_rss": proc_status(worker, "VmRSS") if worker else None,
                           "nginx_anon": proc_status(worker, "RssAnon") if worker else None}

    def nginx_worker(self):
        master = self.p.procs.get("nginx")
        if not master:
            return None
        try:
            kids = open(f"/proc/{master.pid}/task/{master.pid}/children").read().split()
            return int(kids[0]) if kids else None
        except OSError:
            return None

    # ---------------------------------------------------------------- report
    def versions(self):
        def first(argv):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (r.stdout + r.stderr).strip().splitlines()[0]
            except Exception:
                return "?"
        def deb(p):
            try:
                return self.sh("dpkg-query", "-W", "-f=${Version}", p).stdout
            except Exception:
                return "?"
        rev = "?"
        try:
            rev = self.sh("git", "-C", self.root, "rev-parse", "--short", "HEAD").stdout.strip()
        except Exception:
            pass
        cpu = "?"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        return {"acme-sidecar": rev, "pebble": deb("pebble"), "uacme": deb("uacme"), "lego": deb("lego"),
                "nginx": first(["nginx", "-v"]).replace("nginx version: ", ""), "wrk": deb("wrk"),
                "kernel": platform.release(), "cpu": f"{os.cpu_count()} × {cpu}",
                "load": open("/proc/loadavg").read().split()[:3]}

    def report(self, started):
        r = self.r
        v = self.versions()
        L = []
        mode = "smoke" if self.a.smoke else "full"
        L.append(f"# acme-sidecar benchmarks ({mode} run)\n")
        L.append(f"Date {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, run took {(time.time() - started) / 60:.1f} min. "
                 f"Machine: {v['cpu']}, kernel {v['kernel']}, load average at the end {' '.join(v['load'])} — "
                 "**a shared 2-core machine: absolute figures drift with other jobs' load, prefer the ratios (peers "
                 "measured in the same run, interleaved where cheap).**\n")
        L.append(f"Versions: acme-sidecar {v['acme-sidecar']} (Release), Pebble {v['pebble']}, uacme {v['uacme']}, "
                 f"lego {v['lego']}, nginx {v['nginx']}, wrk {v['wrk']}. Everything on loopback in a private "
                 "network namespace; Pebble with PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE=0; "
                 "ACME requests counted from Pebble's own log.\n")

        def ms(x):
            return f"{x * 1000:.0f}"
        L.append("## 1. Issuance latency (one certificate at a time, nginx in the challenge path)\n")
        L.append("| client | n | p50 ms | p95 ms | max ms | ACME requests/cert | ratio sidecar/peer (p50, p95) | goal |")
        L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        s = r.get("sidecar_latency")
        def row(label, key, acme_key, goal=""):
            x = r.get(key)
            if not x:
                L.append(f"| {label} | — | n/a | n/a | n/a | | | {goal} |")
                return
            ratio = ""
            if s and key != "sidecar_latency":
                ratio = f"{s['p50'] / x['p50']:.2f}, {s['p95'] / x['p95']:.2f}"
            acme = f"{r[acme_key]:.1f}" if acme_key and acme_key in r else ""
            L.append(f"| {label} | {x['n']} | {ms(x['p50'])} | {ms(x['p95'])} | {ms(x['max'])} | {acme} | {ratio} | {goal} |")
        row("acme-sidecar (Ingress create → Secret readable)", "sidecar_latency", "sidecar_latency_acme")
        row("uacme, bundle = test CA only (trimmed)", "uacme_trimmed", "uacme_acme", "sidecar/uacme ≤ 1.0")
        row(f"uacme, bundle as shipped ({r.get('system_cas', '?')} CAs + test CA)", "uacme_shipped", None)
        row("lego (LEGO_CA_CERTIFICATES), reference", "lego", "lego_acme")
        L.append("")
        b = r.get("burst")
        if b:
            L.append(f"## 2. Throughput ({b['n']} Ingresses created at once)\n")
            L.append("| figure | value | goal |")
            L.append("| --- | --- | --- |")
            L.append(f"| Secrets written (sidecar with --max-concurrent-issuances {CONCURRENCY}) | {b['done']} / {b['n']} | all |")
            L.append(f"| time to create the Ingresses (8 client threads) | {b['create_s']:.1f} s | |")
            L.append(f"| time until all Secrets exist | {b['all_s']:.1f} s ({b['per_s']:.1f} certificates/s) | |")
            L.append(f"| sidecar CPU per certificate | {b['sidecar_cpu'] * 1000:.1f} ms | |")
            L.append(f"| Pebble CPU per certificate | {b['pebble_cpu'] * 1000:.1f} ms | |")
            L.append(f"| ratio sidecar/Pebble CPU | {b['sidecar_cpu'] / b['pebble_cpu']:.2f} | ≤ 0.5 |")
            reps = r.get("burst_reps") or []
            if reps:
                runs = [{"all_s": b["all_s"], "sidecar_cpu": b["sidecar_cpu"], "pebble_cpu": b["pebble_cpu"]}] + reps
                ratios = sorted(x["sidecar_cpu"] / x["pebble_cpu"] for x in runs)
                each = "; ".join(f"{x['all_s']:.1f} s, {x['sidecar_cpu'] * 1000:.1f} / {x['pebble_cpu'] * 1000:.1f} ms"
                                 for x in runs)
                L.append(f"| ratio sidecar/Pebble CPU over {len(runs)} bursts (the first traced, the others not): "
                         f"min / median / max | {ratios[0]:.2f} / {ratios[len(ratios) // 2]:.2f} / {ratios[-1]:.2f} "
                         f"({each}) | median ≤ 0.5 |")
            if "faults" in b:
                L.append(f"| minor page faults per certificate: sidecar / Pebble (/proc minflt) | "
                         f"{b['faults'][0]:.1f} / {b['faults'][1]:.1f} | |")
                cs = b["ctxt_switches"]
                L.append(f"| context switches per certificate, all threads: sidecar / Pebble | {cs[0]:.1f} / {cs[1]:.1f} | |")
                irq = b.get("irq_per_s") or {}
                if irq:
                    L.append("| interrupts per second during the burst, both CPUs (timer / reschedule IPI / "
                             f"function-call IPI / TLB shootdown) | {irq.get('LOC', 0):.0f} / {irq.get('RES', 0):.0f} / "
                             f"{irq.get('CAL', 0):.0f} / {irq.get('TLB', 0):.0f} | |")
                pq, pb = b.get("probe_quiet"), b.get("probe_busy")
                if pq and pb:
                    L.append("| JWS signature in a separate process (`bench-crypto --probe`), thread CPU median "
                             f"(mean): before the burst / during it | {pq['median_us']:.1f} ({pq['mean_us']:.1f}) / "
                             f"{pb['median_us']:.1f} ({pb['mean_us']:.1f}) µs | |")
                L.append(f"| TCP connections opened per certificate (whole namespace: sidecar, harness, Pebble's "
                         f"validations) | {b['tcp_opens']:.2f} | |")
            if "syscalls" in b:
                L.append(f"| system calls per certificate: sidecar / Pebble (perf raw_syscalls) | "
                         f"{b['syscalls'][0]:.0f} / {b['syscalls'][1]:.0f} | |")
            L.append(f"| ACME requests per certificate (Pebble's log) | {b['acme_per_cert']:.2f} | ≤ 8 |")
            kinds = ", ".join(f"{k} {x:.2f}" for k, x in sorted(b["kinds"].items()))
            L.append(f"| … by endpoint, per certificate | {kinds} | |")
            if "kube" in b:
                L.append(f"| Kubernetes API requests per certificate (fake API server's log) | "
                         f"{sum(b['kube'].values()):.2f} | |")
                kk = ", ".join(f"{k} {x:.2f}" for k, x in sorted(b["kube"].items()) if x >= 0.005)
                L.append(f"| … by verb, resource and status, per certificate | {kk} | |")
            L.append("")
        w = r.get("wrk")
        if w or r.get("idle"):
            w = w or {n: [] for n in r["wrk_order"]}
            L.append(f"## 3. Challenge responder (wrk -t1 -c64 -d{self.wrk_secs}s --latency, 87-byte key authorization, "
                     f"{self.wrk_reps} interleaved repetitions: min / median / max)\n")
            if all(w.get(n) for n in r["wrk_order"]):
                base = statistics.median([x["rps"] for x in w["nginx → nginx-static (keep-alive)"]])
                base99 = statistics.median([x["p99"] for x in w["nginx → nginx-static (keep-alive)"]])
                L.append("| path | req/s | p50 ms | p99 ms | req/s ratio vs nginx→nginx-static | p99 ratio | goal |")
                L.append("| --- | --- | --- | --- | --- | --- | --- |")
                for name in r["wrk_order"]:
                    xs = w[name]
                    rps = statistics.median([x["rps"] for x in xs])
                    p99 = statistics.median([x["p99"] for x in xs])
                    goal = "≥ 0.8, p99 ≤ 2×" if "responder (shipped" in name else ""
                    L.append(f"| {name} | {mmm([x['rps'] for x in xs], '{:.0f}')} | {mmm([x['p50'] for x in xs], '{:.2f}')} | "
                             f"{mmm([x['p99'] for x in xs], '{:.2f}')} | {rps / base:.2f} | {p99 / base99:.2f} | {goal} |")
            else:
                L.append("| path | req/s | p50 ms | p99 ms | | | |")
                L.append("| --- | --- | --- | --- | --- | --- | --- |")
            idle = r.get("idle", {})
            for label, t in idle.items():
                L.append(f"| 1,000 idle connections open to the responder: slowest of 20 challenge GETs, {label} | | "
                         f"{t * 1000:.1f} ms (max) | | | | ≤ 100 ms |")
            L.append("")
            if all(w.get(n) and "cost" in w[n][0] for n in r["wrk_order"]):
                # Per request, so independent of the machine's load: what each path costs its processes.
                L.append("Cost per request over the same runs (min / median / max; CPU = utime + stime from /proc, "
                         "syscalls = perf `raw_syscalls:sys_enter` on that process, counted in one extra 3 s run per path so the tracing does not slow the runs above; connections = TCP connects in "
                         "the namespace, i.e. nginx → upstream):\n")
                L.append("| path | upstream connections opened / request | front nginx CPU µs | front nginx syscalls | "
                         "server CPU µs | server syscalls |")
                L.append("| --- | --- | --- | --- | --- | --- |")
                def c(xs, key, fmt="{:.1f}"):
                    vals = [x["cost"][key] for x in xs if key in x["cost"]]
                    return mmm(vals, fmt) if vals else ""
                for name in r["wrk_order"]:
                    xs = w[name]
                    def one(key):  # one traced run: a single figure
                        return f"{xs[0]['cost'][key]:.1f}" if key in xs[0]["cost"] else ""
                    L.append(f"| {name} | {c(xs, 'opens', '{:.2f}')} | {c(xs, 'front_cpu_us')} | "
                             f"{one('front_syscalls')} | {c(xs, 'server_cpu_us')} | {one('server_syscalls')} |")
                L.append("")
        scs = r.get("scale")
        if scs:
            L.append("## 4. Scale and footprint (N Ingresses + N valid managed Secrets preloaded in the fake API server; "
                     "sidecar with its defaults; min / median / max over the sidecar starts; only the last start of "
                     "the large N waits for decisions)\n")
            L.append("| figure | " + " | ".join(f"N = {sc['n']}" for sc in scs) + " | goal |")
            L.append("| --- | " + " | ".join("---" for _ in scs) + " | --- |")
            def line(label, f, goal=""):
                L.append(f"| {label} | " + " | ".join(f(sc) for sc in scs) + f" | {goal} |")
            line("sidecar starts", lambda sc: str(len(sc["synced"])))
            line("start → log \"caches synced\" (s)", lambda sc: mmm(sc["synced"]))
            def decided(sc):
                if sc["decided"]:
                    return mmm(sc["decided"])
                return f"not within {sc['decide_timeout']} s: {sc['ready_at_timeout']} of {sc['n']} decided"
            line("start → every certificate decided (managed_certificates = N, N × certificate_ready 1) (s)", decided, "≤ 3 s (N = 10,000)")
            line("VmRSS at decided / at the timeout (MiB)", lambda sc: mmm(sc["rss"], "{:.1f}"), "≤ 48 MiB")
            line("VmRSS / RssAnon at the end (MiB)", lambda sc: f"{sc['rss_end']:.1f} / {sc['anon_end']:.1f}")
            line("CPU while idle after deciding (% of a core)",
                 lambda sc: f"{sc['idle_pct']:.3f} over {sc['idle_secs']} s" if "idle_pct" in sc else "not idle", "≤ 0.2 %")
            line("/metrics scrape, 5 scrapes (ms)", lambda sc: mmm([x * 1000 for x in sc["scrape"]], "{:.1f}"), "≤ 100 ms")
            line("/metrics size (KiB)", lambda sc: f"{sc['scrape_bytes'] / 1024:.0f}")
            line("CA requests during all starts (Pebble's log)",
                 lambda sc: f"{sc['ca_requests']}" + (" (" + ", ".join(f"{k} {v}" for k, v in sc["ca_kinds"].items()) + ")" if sc["ca_kinds"] else ""), "0")
            line("threads", lambda sc: str(sc["threads"]))
            line("(preloading the fake API server: not the sidecar) (s)", lambda sc: f"{sc['preload_s']:.1f}")
            L.append("")
            L.append("| nothing to manage | value | goal |")
            L.append("| --- | --- | --- |")
            e = r.get("empty")
            if e:
                L.append(f"| sidecar VmRSS | {mmm(e['rss'], '{:.1f}')} MiB | |")
                L.append(f"| sidecar RssAnon | {mmm(e['anon'], '{:.2f}')} MiB | ≤ 4 MiB |")
                if e["nginx_rss"]:
                    L.append(f"| nginx worker (same run, for scale): VmRSS / RssAnon | {e['nginx_rss']:.1f} / "
                             f"{e['nginx_anon']:.2f} MiB | |")
            L.append("")
        if getattr(self, "activities_text", None):
            L.append("## Where the sidecar's CPU goes while issuing the burst (inclusive, by activity)\n")
            L.append(self.activities_text)
            L.append("")
        for what, text in getattr(self, "perf_text", {}).items():
            L.append(f"## {what if what.startswith('strace') else 'perf profile: ' + what + ' (self time, ≥ 1.5 %)'}\n")
            L.append("```")
            L.append(text)
            L.append("```\n")
        if self.notes:
            L.append("## Notes from this run\n")
            L.extend(f"- {n}" for n in self.notes)
            L.append("")
        return "\n".join(L) + "\n"

    def run(self):
        started = time.time()
        try:
            self.start_pebble()
            self.start_nginx()
            phases = {"latency": self.phase_latency, "throughput": self.phase_throughput,
                      "responder": self.phase_responder, "scale": self.phase_scale}
            only = self.a.only.split(",") if self.a.only else list(phases)
            if "throughput" in only and "latency" not in only:
                only.insert(0, "latency")
            for name in phases:
                if name in only:
                    phases[name]()
        finally:
            self.p.stop_all()
        text = self.report(started)
        extra = getattr(self.a, "append", None)
        if extra and os.path.exists(extra):
            text += "\n" + open(extra).read()
        print("\n" + text)
        if self.a.out:
            with open(self.a.out, "w") as f:
                f.write(text)
            log(f"written {self.a.out}")
        with open(os.path.join(self.work, "results.json"), "w") as f:
            json.dump(self.r, f, indent=1, default=str)
        if os.environ.get("ACME_SIDECAR_KEEP_TMP") != "1":
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"kept {self.work}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--build-dir")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--only", help="comma-separated phases: latency,throughput,responder,scale")
    ap.add_argument("--perf", action="store_true", help="perf profile of the sidecar during the burst and startup")
    ap.add_argument("--append", help="markdown file appended to the report (interpretation)")
    a = ap.parse_args()
    if not a.out and not a.smoke:
        a.out = os.path.join(a.root, "tests", "bench", "RESULTS.md")
    Bench(a).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
