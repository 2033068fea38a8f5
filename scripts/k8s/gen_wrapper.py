"""Build the bench control plane's binaries from the Go module proxy into a per-version cache outside the repo."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"

# The binaries of k8s.io/kubernetes the bench runs; kubectl lives in the repo as a thin main over k8s.io/kubectl.
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# What kwokctl runs by default: nodes turn Ready and renew their leases, scheduled pods turn Ready, and deleted
# pods go away (no kubelet would ever confirm their deletion otherwise).
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
# The staging directory of the tag's go.mod, e.g. `k8s.io/api => ./staging/src/k8s.io/api`.
STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/\1\s*$", re.MULTILINE)
GODEBUG_LINE = re.compile(r"^godebug\s.*$", re.MULTILINE)
GO_LINE = re.compile(r"^go\s+(\S+)\s*$", re.MULTILINE)


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    versions = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def default_cache() -> Path:
    return Path(os.environ.get("CLINOPS_CACHE") or Path.home() / ".cache" / "clinops").expanduser()


def go_env() -> dict[str, str]:
    # -modcacherw keeps the module cache deletable by a plain `rm -rf`; a local toolchain only, since the proxy
    # would otherwise be asked for the newer Go a dependency's go line names.
    return {
        **os.environ,
        "GOFLAGS": "-trimpath -modcacherw -buildvcs=false",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }


def run(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=cwd, env=env or go_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"{command[0]} failed with {result.returncode}")
    return result.stdout


def niced(command: list[str]) -> list[str]:
    # Builds share two cores with benchmarks and test servers: they take what is left.
    return ["nice", "-n", "19", *command]


def download(module: str) -> dict[str, str]:
    info: dict[str, str] = json.loads(run(["go", "mod", "download", "-json", module]))
    return info


def staging_version(kubernetes_version: str) -> str:
    major, minor, patch = kubernetes_version.removeprefix("v").split(".", 2)
    if major != "1":
        raise SystemExit(f"unexpected Kubernetes version {kubernetes_version}")
    return f"v0.{minor}.{patch}"


def kubernetes_go_mod(kubernetes_version: str) -> tuple[str, dict[str, object]]:
    meta = download(f"k8s.io/kubernetes@{kubernetes_version}")
    return Path(meta["GoMod"]).read_text(), json.loads(Path(meta["Info"]).read_text())


def wrapper_go_mod(kubernetes_version: str, upstream_go_mod: str) -> str:
    """The wrapper's go.mod: k8s.io/kubernetes with its in-repo staging replaces pointed at the published modules.

    The tag's go.mod requires every staging module as v0.0.0 and replaces it by a directory of its own repo, which
    a dependent module cannot see; the same code is published per module as v0.<minor>.<patch>.
    """
    staged = STAGING_REPLACE.findall(upstream_go_mod)
    if not staged:
        raise SystemExit(f"no staging replaces found in the go.mod of k8s.io/kubernetes {kubernetes_version}")
    go_line = GO_LINE.search(upstream_go_mod)
    staging = staging_version(kubernetes_version)
    lines = [
        "module clinops.local/k8s-bench",
        "",
        f"go {go_line.group(1) if go_line else '1.24.0'}",
        "",
        # Upstream's runtime defaults (GODEBUG) come from the main module's go.mod, which is this one.
        *GODEBUG_LINE.findall(upstream_go_mod),
        "",
        f"require k8s.io/kubernetes {kubernetes_version}",
        "",
        "replace (",
        *(f"\t{module} => {module} {staging}" for module in sorted(set(staged))),
        ")",
        "",
    ]
    return "\n".join(lines)


def tools_go(packages: list[str]) -> str:
    imports = "\n".join(f'\t_ "{package}"' for package in packages)
    # Main packages cannot be imported by a build; the tag keeps them in the module graph for `go mod tidy` only.
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def version_ldflags(kubernetes_version: str, info: dict[str, object]) -> str:
    _, minor, _ = kubernetes_version.removeprefix("v").split(".", 2)
    origin = info.get("Origin")
    commit = str(origin.get("Hash", "")) if isinstance(origin, dict) else ""
    # The tag's commit time, not the build's: rebuilding the same pin reports the same /version.
    build_date = str(info.get("Time", "1970-01-01T00:00:00Z"))
    values = {
        "gitVersion": kubernetes_version,
        "gitMajor": "1",
        "gitMinor": minor,
        "gitCommit": commit,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    # Both packages report a version: component-base to /version and the servers, client-go to kubectl's client.
    flags = [
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in values.items()
    ]
    return " ".join(["-s", "-w", *flags])


def up_to_date(bin_dir: Path, name: str, version: str) -> bool:
    stamp = bin_dir / f".{name}.version"
    return (bin_dir / name).is_file() and stamp.is_file() and stamp.read_text().strip() == version


def mark(bin_dir: Path, name: str, version: str) -> None:
    (bin_dir / f".{name}.version").write_text(version + "\n")


def build_kubernetes(home: Path, bin_dir: Path, version: str) -> None:
    if all(up_to_date(bin_dir, name, version) for name in KUBERNETES_COMMANDS):
        return
    upstream, info = kubernetes_go_mod(version)
    wrapper = home / "wrapper"
    wrapper.mkdir(parents=True, exist_ok=True)
    packages = [f"k8s.io/kubernetes/cmd/{name}" for name in KUBERNETES_COMMANDS]
    (wrapper / "go.mod").write_text(wrapper_go_mod(version, upstream))
    (wrapper / "tools.go").write_text(tools_go(packages))
    run(["go", "mod", "tidy"], cwd=wrapper)
    staging = home / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    started = time.monotonic()
    run(niced(["go", "build", "-ldflags", version_ldflags(version, info), "-o", f"{staging}/", *packages]), cwd=wrapper)
    print(f"built {', '.join(KUBERNETES_COMMANDS)} {version} in {time.monotonic() - started:.0f}s", flush=True)
    for name in KUBERNETES_COMMANDS:
        (staging / name).replace(bin_dir / name)
        mark(bin_dir, name, version)
    staging.rmdir()


def build_etcd(home: Path, bin_dir: Path, version: str) -> None:
    if up_to_date(bin_dir, "etcd", version):
        return
    # etcd's server module replaces its sibling modules by directories, so `go install module@version` refuses it;
    # a wrapper module that requires it builds the same main package.
    wrapper = home / "etcd-wrapper"
    wrapper.mkdir(parents=True, exist_ok=True)
    (wrapper / "go.mod").write_text(
        f"module clinops.local/etcd-bench\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 {version}\n"
    )
    (wrapper / "tools.go").write_text(tools_go(["go.etcd.io/etcd/server/v3"]))
    run(["go", "mod", "tidy"], cwd=wrapper)
    started = time.monotonic()
    run(
        niced(["go", "build", "-ldflags", "-s -w", "-o", str(bin_dir / "etcd.partial"), "go.etcd.io/etcd/server/v3"]),
        cwd=wrapper,
    )
    print(f"built etcd {version} in {time.monotonic() - started:.0f}s", flush=True)
    (bin_dir / "etcd.partial").replace(bin_dir / "etcd")
    mark(bin_dir, "etcd", version)


def helm_ldflags(version: str) -> str:
    """What helm's release build sets: `go install` alone reports only the minor version and guesses Kubernetes."""
    go_mod = Path(download(f"helm.sh/helm/v3@{version}")["GoMod"]).read_text()
    client_go = re.search(r"^\s*k8s\.io/client-go v0\.(\d+)\.", go_mod, re.MULTILINE)
    if client_go is None:
        raise SystemExit(f"no k8s.io/client-go requirement in the go.mod of helm {version}")
    flags = {
        "helm.sh/helm/v3/internal/version.version": version,
        "helm.sh/helm/v3/internal/version.gitTreeState": "clean",
        # The Kubernetes version `helm template` assumes when no cluster is asked: the one helm was built against.
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor": client_go.group(1),
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor": client_go.group(1),
    }
    return " ".join(["-s", "-w", *(f"-X {key}={value}" for key, value in flags.items())])


def go_install(home: Path, bin_dir: Path, name: str, package: str, version: str, *, ldflags: str = "-s -w") -> None:
    if up_to_date(bin_dir, name, version):
        return
    staging = home / f"{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    run(niced(["go", "install", "-ldflags", ldflags, f"{package}@{version}"]), env={**go_env(), "GOBIN": str(staging)})
    print(f"built {name} {version} in {time.monotonic() - started:.0f}s", flush=True)
    (staging / name).replace(bin_dir / name)
    mark(bin_dir, name, version)
    shutil.rmtree(staging)


def write_kwok_stages(home: Path, version: str) -> None:
    """kwok's fast node and pod stages, taken from its pinned module: it runs no stage unless configured with some."""
    target = home / "kwok-stages.yaml"
    header = f"# kwok {version} stages\n"
    if target.is_file() and target.read_text().startswith(header):
        return
    module = Path(download(f"sigs.k8s.io/kwok@{version}")["Dir"])
    documents = [(module / "kustomize" / "stage" / stage).read_text().strip() for stage in KWOK_STAGES]
    partial = target.with_suffix(".partial")
    partial.write_text(header + "\n---\n".join(documents) + "\n")
    partial.replace(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=default_cache(), help="cache root (default: $CLINOPS_CACHE)")
    args = parser.parse_args()
    versions = read_versions()
    home = args.cache / f"k8s-{versions['KUBERNETES_VERSION']}"
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    build_etcd(home, bin_dir, versions["ETCD_VERSION"])
    go_install(home, bin_dir, "kwok", "sigs.k8s.io/kwok/cmd/kwok", versions["KWOK_VERSION"])
    write_kwok_stages(home, versions["KWOK_VERSION"])
    helm = versions["HELM_VERSION"]
    go_install(home, bin_dir, "helm", "helm.sh/helm/v3/cmd/helm", helm, ldflags=helm_ldflags(helm))
    build_kubernetes(home, bin_dir, versions["KUBERNETES_VERSION"])
    print(bin_dir)


if __name__ == "__main__":
    main()
