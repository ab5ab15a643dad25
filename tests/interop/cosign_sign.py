"""Signs an artifact in a registry the way `cosign sign --key` does, with Python.

An implementation of cosign's key-based simple-signing format that shares no
code with moat: the key and the ECDSA signature come from the `cryptography`
package, the payload and the signature manifest are built here from the
format's description, and everything is pushed with urllib over plain HTTP
(the test's loopback registry). moat's integration tests then check that
`moat pull --verify-key` accepts the result.

    python3 cosign_sign.py --registry 127.0.0.1:PORT --repo tools/x \
        --digest sha256:HEX --public-key-out key.pub
"""

import argparse
import base64
import hashlib
import json
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(method: str, url: str, body: bytes = b"", content_type: str = "") -> urllib.request.addinfourl:
    req = urllib.request.Request(url, data=body if method in ("POST", "PUT") else None, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    return urllib.request.urlopen(req, timeout=30)


def push_blob(base: str, data: bytes) -> dict:
    with request("POST", f"{base}/blobs/uploads/") as r:
        location = r.headers["Location"]
    if location.startswith("/"):
        location = base.split("/v2/")[0] + location
    sep = "&" if "?" in location else "?"
    with request("PUT", f"{location}{sep}digest={digest_of(data)}", data, "application/octet-stream"):
        pass
    return {"digest": digest_of(data), "size": len(data)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--registry", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--digest", required=True)
    p.add_argument("--public-key-out", required=True)
    p.add_argument("--docker-reference")
    a = p.parse_args()

    key = ec.generate_private_key(ec.SECP256R1())
    with open(a.public_key_out, "wb") as f:
        f.write(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": a.docker_reference or f"{a.registry}/{a.repo}"},
            "image": {"docker-manifest-digest": a.digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }, separators=(",", ":")).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()

    base = f"http://{a.registry}/v2/{a.repo}"
    layer = push_blob(base, payload)
    config = json.dumps({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}, "config": {},
    }, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, **push_blob(base, config)},
        "layers": [{
            "mediaType": PAYLOAD_TYPE, **layer,
            "annotations": {"dev.cosignproject.cosign/signature": signature},
        }],
    }).encode()
    tag = "sha256-" + a.digest.split(":", 1)[1] + ".sig"
    with request("PUT", f"{base}/manifests/{tag}", manifest, MANIFEST_TYPE):
        pass
    print(digest_of(manifest))


if __name__ == "__main__":
    main()
