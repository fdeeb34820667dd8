#!/usr/bin/python3
"""Build podsnoop's container image without a container engine.

    image/mkimage.py --binary build/podsnoop --ref localhost/podsnoop:0.1.0 \
        --out build/podsnoop-image.tar [--rootfs build/image-rootfs]

The image is one layer holding the agent, exactly the shared libraries the
dynamic loader resolves for it (ldd's closure, each stored under the path the
loader looks it up by, so no ld.so.cache is needed) and the loader itself,
plus a few small files libc reads (/etc/nsswitch.conf, /etc/passwd, /etc/group,
the CA bundle when the build host has one, for https collectors). Written as
an OCI image archive (oci-layout, index.json, blobs) that `ctr images import`,
`podman load` and `skopeo copy oci-archive:` accept. Reproducible: entries
sorted, owned by root, mtime 0.

--rootfs DIR also (or only, without --out) lays the same files out in DIR:
the Dockerfile's build stage uses that, so both ways give the same image.
"""
import argparse
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile

ENTRYPOINT = "/usr/bin/podsnoop"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SMALL_FILES = {
    # glibc >= 2.34 has files and dns built in: no libnss_*.so needed
    "etc/nsswitch.conf": b"hosts: files dns\npasswd: files\ngroup: files\n",
    "etc/passwd": b"root:x:0:0:root:/:/usr/bin/podsnoop\n",
    "etc/group": b"root:x:0:\n",
}
# mount points the runtime fills; present so a read-only rootfs needs no mkdir
DIRS = ("dev", "etc", "proc", "run", "sys", "tmp", "usr", "usr/bin", "var", "var/lib",
        "var/lib/podsnoop")


def go_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def closure(binary):
    """[(path the loader uses, real file on this host)] for every library and
    the loader, from ldd (glibc's own resolver, so the answer is the loader's)."""
    out = subprocess.run(["ldd", binary], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    libs = []
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"^(\S+) => (/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            libs.append(m.group(2))
            continue
        m = re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)   # the loader (PT_INTERP)
        if m:
            libs.append(m.group(1))
            continue
        if line.startswith("linux-vdso") or line.startswith("linux-gate"):
            continue
        if "not found" in line or "statically linked" in line or "not a dynamic" in line:
            sys.exit("mkimage: ldd %s: %s" % (binary, line))
        sys.exit("mkimage: cannot read ldd's line %r" % line)
    return [(p, os.path.realpath(p)) for p in libs]


def entries(binary):
    """Sorted [(path in image, kind, data, mode)]; kind 'dir' or 'file'."""
    files = {}
    with open(binary, "rb") as f:
        files[ENTRYPOINT.lstrip("/")] = (f.read(), 0o755)
    for want, real in closure(binary):
        with open(real, "rb") as f:
            files[want.lstrip("/")] = (f.read(), 0o755)
    for path, data in SMALL_FILES.items():
        files[path] = (data, 0o644)
    if os.path.exists(CA_BUNDLE):
        with open(CA_BUNDLE, "rb") as f:
            files[CA_BUNDLE.lstrip("/")] = (f.read(), 0o644)
    dirs = set(DIRS)
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    out = [(d, "dir", None, 0o1777 if d == "tmp" else 0o755) for d in dirs]
    out += [(p, "file", data, mode) for p, (data, mode) in files.items()]
    return sorted(out, key=lambda e: e[0])


def layer_tar(ents):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, kind, data, mode in ents:
            ti = tarfile.TarInfo(path + ("/" if kind == "dir" else ""))
            ti.mode, ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = mode, 0, 0, "root", "root", 0
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def write_rootfs(ents, root):
    if os.path.exists(root):
        shutil.rmtree(root)
    for path, kind, data, mode in ents:
        dst = os.path.join(root, path)
        if kind == "dir":
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(data)
        os.chmod(dst, mode)


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_oci_archive(out, layer, image_config, ref, created_by):
    """Write a one-layer OCI image archive: `layer` an uncompressed layer tar,
    `image_config` the image's "config" object (Entrypoint/Cmd, Env, ...),
    `ref` the name `ctr images import` tags it with. Returns the manifest digest."""
    layer_digest, layer = blob(layer)
    config_digest, config_b = blob(dumps({
        "architecture": go_arch(),
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": created_by}],
    }))
    manifest_digest, manifest_b = blob(dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_b)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }))
    last = ref.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    index_b = dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest_b),
            "platform": {"architecture": go_arch(), "os": "linux"},
            "annotations": {"io.containerd.image.name": ref,
                            "org.opencontainers.image.ref.name": tag},
        }],
    })
    tmp = out + ".tmp%d" % os.getpid()
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data=None):
            ti = tarfile.TarInfo(name)
            ti.uid = ti.gid = ti.mtime = 0
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
        add("blobs/")
        add("blobs/sha256/")
        for digest, data in sorted(((layer_digest, layer), (config_digest, config_b),
                                    (manifest_digest, manifest_b))):
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index_b)
    os.replace(tmp, out)
    return manifest_digest


def write_archive(ents, out, ref, version):
    layer = layer_tar(ents)
    digest = write_oci_archive(out, layer, {
        "Entrypoint": [ENTRYPOINT],
        "Env": ["PATH=/usr/bin"],
        "WorkingDir": "/",
        "User": "0:0",
        "Labels": {"org.opencontainers.image.title": "podsnoop",
                   "org.opencontainers.image.version": version,
                   "org.opencontainers.image.description":
                       "container-aware eBPF node agent (exec, open, block I/O per pod)"},
    }, ref, "image/mkimage.py: podsnoop, its shared libraries and the dynamic loader")
    return digest, len(layer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--ref", default="localhost/podsnoop:latest")
    ap.add_argument("--version", default="dev")
    ap.add_argument("--out", help="OCI image archive to write")
    ap.add_argument("--rootfs", help="directory to lay the image's files out in")
    ap.add_argument("--list", action="store_true", help="print the image's files")
    a = ap.parse_args()
    ents = entries(a.binary)
    if a.list:
        for path, kind, data, _ in ents:
            print("%-60s %s" % ("/" + path, "dir" if kind == "dir" else len(data)))
    if a.rootfs:
        write_rootfs(ents, a.rootfs)
    if a.out:
        digest, size = write_archive(ents, a.out, a.ref, a.version)
        print("image %s: %s, layer %.1f MiB, manifest %s" % (a.ref, a.out, size / 2**20, digest))


if __name__ == "__main__":
    main()
