#!/usr/bin/env python3
"""Cross-file consistency checks for the moat deployment files.

Schema validation (kubernetes-validate) proves each object is well formed;
this proves the files agree with each other and with moat: the ports,
paths and limits in moat.toml, the Deployment, the Service, the nginx
config and the Dockerfile. Run by validate.sh with the venv's Python (needs
PyYAML; Python >= 3.11 for tomllib).

Usage: checks.py DEPLOY_DIR
"""

import base64
import binascii
import re
import sys
import tomllib
from pathlib import Path

import yaml

# What moat.toml accepts (host/src/config.rs denies unknown keys; keep the two
# in step).
KNOWN_KEYS = {
    "server": {"listen", "public_url", "allowed_origins", "max_body_bytes", "admin_listen"},
    "auth": {"issuer", "audience", "jwks_uri", "public_key_files", "algorithms", "leeway_s",
             "authorization_servers"},
    "plugins": {"dir", "watch", "cache_dir", "oci_store", "defaults", "oci"},
    "fleet": {"redis_url", "state_key_file", "redis_password_env", "redis_prefix", "redis_timeout_ms",
              "replica_name"},
}
MOAT_DEFAULT_MAX_BODY = 1 << 20  # host/src/config.rs
MOAT_DRAIN_S = 30                # host/src/http/mod.rs SHUTDOWN_GRACE
GRACE_MARGIN_S = 5

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def load_objects(root):
    objects = []
    for path in sorted((root / "kubernetes").rglob("*.yaml")):
        with path.open() as f:
            objects += [(path, o) for o in yaml.safe_load_all(f) if o]
    return objects


def find(objects, kind, name):
    hits = [o for _, o in objects if o.get("kind") == kind and o["metadata"]["name"] == name]
    if len(hits) != 1:
        sys.exit(f"checks: expected one {kind}/{name}, found {len(hits)}")
    return hits[0]


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def covered_by(path, mounts):
    """The mount whose mountPath contains `path`, if any (longest match)."""
    best = None
    for m in mounts:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    return best


def nginx_size(text):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    return int(m.group(1)) * scale


def main(root):
    objects = load_objects(root)
    config_map = find(objects, "ConfigMap", "moat-config")
    deployment = find(objects, "Deployment", "moat")
    service = find(objects, "Service", "moat")
    secret = find(objects, "Secret", "moat-secrets")

    # moat.toml: parses, and only keys moat knows.
    config = tomllib.loads(config_map["data"]["moat.toml"])
    for section, keys in config.items():
        check(section in KNOWN_KEYS, f"moat.toml: unknown section [{section}]")
        for key in keys:
            check(key in KNOWN_KEYS.get(section, set()), f"moat.toml: unknown key {section}.{key}")

    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "moat"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = container["volumeMounts"]

    # Ports: moat.toml, container ports, probes, Service, Dockerfile.
    check(port_of(config["server"]["listen"]) == ports["http"], "listen port != containerPort http")
    check(port_of(config["server"]["admin_listen"]) == ports["admin"], "admin_listen port != containerPort admin")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    check(int(annotations["prometheus.io/port"]) == ports["admin"], "prometheus.io/port != admin port")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        check(get["path"] == path and get["port"] in ("http", ports["http"]), f"{probe} is not GET {path} on http")
    svc_ports = service["spec"]["ports"]
    check(all(p["targetPort"] in ("http", ports["http"]) for p in svc_ports), "Service must target http only")
    check(service["spec"].get("sessionAffinity", "None") == "None", "Service must not use sessionAffinity")
    dockerfile = (root / "Dockerfile").read_text()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", dockerfile, re.M) for p in line.split()}
    check(set(ports.values()) <= exposed, f"Dockerfile EXPOSE {sorted(exposed)} misses {sorted(ports.values())}")
    user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    check(user and int(user[-1][0]) == pod["securityContext"]["runAsUser"], "Dockerfile USER != runAsUser")

    # Paths: what moat reads is mounted, what it writes is an emptyDir.
    plugins = covered_by(config["plugins"]["dir"], mounts)
    check(plugins is not None and plugins.get("readOnly"), "plugins.dir is not a read-only mount")
    for key in ("cache_dir", "oci_store"):
        m = covered_by(config["plugins"][key], mounts)
        check(m is not None and "emptyDir" in volumes[m["name"]] and not m.get("readOnly"),
              f"plugins.{key} is not on a writable emptyDir")
    key_file = config["fleet"]["state_key_file"]
    m = covered_by(key_file, mounts)
    check(m is not None and "subPath" not in m, "state_key_file must be on a mount without subPath (rotation)")
    if m is not None:
        vol = volumes[m["name"]]["secret"]
        rel = key_file[len(m["mountPath"].rstrip("/")) + 1:]
        check(vol["secretName"] == "moat-secrets", "state key volume is not moat-secrets")
        check(any(i["path"] == rel and i["key"] in secret["stringData"] for i in vol.get("items", [])),
              f"no Secret item mounted as {rel}")
    check(covered_by("/etc/moat/moat.toml", mounts) is not None, "moat.toml is not mounted at /etc/moat/moat.toml")

    # No real-looking secrets: a line that decodes to 32 bytes is a real key.
    for line in secret.get("stringData", {}).get("state-key", "").splitlines():
        try:
            real = len(base64.b64decode(line, validate=True)) == 32
        except (binascii.Error, ValueError):
            real = False
        check(not real, "12-secrets.yaml holds a usable state key; ship placeholders only")
    check("data" not in secret, "12-secrets.yaml: use stringData placeholders, not data")

    # Shutdown: the grace period covers preStop + moat's drain + margin.
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    check(grace >= pre_stop + MOAT_DRAIN_S + GRACE_MARGIN_S,
          f"terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain {MOAT_DRAIN_S} + {GRACE_MARGIN_S}")

    # Hardening, for every container of every Deployment.
    for path, obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        spec = obj["spec"]["template"]["spec"]
        name = f"{path.name}: {obj['metadata']['name']}"
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp RuntimeDefault")
        check(spec.get("automountServiceAccountToken") is False, f"{name}: automountServiceAccountToken")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True, f"{name}/{c['name']}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}: allowPrivilegeEscalation")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}: drop ALL")
            check("limits" in c.get("resources", {}), f"{name}/{c['name']}: resource limits")

    # nginx body limit == moat's.
    max_body = config["server"].get("max_body_bytes", MOAT_DEFAULT_MAX_BODY)
    nginx = (root / "nginx" / "moat.conf").read_text()
    sizes = re.findall(r"^\s*client_max_body_size\s+(\S+);", nginx, re.M)
    check(sizes and all(nginx_size(s) == max_body for s in sizes),
          f"nginx client_max_body_size {sizes} != moat max_body_bytes {max_body}")

    if failures:
        for f in failures:
            print(f"FAIL {f}")
        return 1
    print("checks: all cross-file checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)))
