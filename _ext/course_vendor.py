"""The JavaScript the website serves itself, so that charts and math render with no network.

Altair pages need vega, vega-lite and vega-embed; every page with math needs MathJax. By
default both come from public CDNs. Here each is pinned to an exact npm release, fetched once
from the npm registry over HTTPS (with Python, no npm needed), checked against the
``dist.integrity`` hash pinned below, and unpacked into a cache outside the repository. The
Sphinx extension ``course_site`` copies the unpacked files into ``<site>/_vendor/`` after each
build (outside ``_static``, which Sphinx rewrites), and points MathJax and the course's Altair
renderer (``course_lib.plotting``) at them.

The versions are the ones altair 6.3.0 asks for: ``alt.VEGALITE_VERSION`` is 6.4.1 exactly;
``alt.VEGA_VERSION`` "6" and ``alt.VEGAEMBED_VERSION`` "7" resolve on the CDN to the newest 6.x
and 7.x, which were vega 6.4.0 and vega-embed 7.3.0 when this was pinned (2026-11-25).
``tests/test_plotting.py`` checks that these pins, altair's versions and the renderer agree.

Command line (prints where the files are; fetches only what is missing)::

    python _ext/course_vendor.py
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
SITE_DIR = "_vendor"  # the folder of the built site that holds the files


@dataclass(frozen=True)
class Package:
    """One npm release: name, exact version, its registry integrity hash, files to keep."""

    name: str
    version: str
    integrity: str  # "sha512-<base64>", as the registry's dist.integrity gives it
    keep: tuple[str, ...]  # glob patterns, relative to the package root

    @property
    def tarball_url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name}-{self.version}.tgz"

    @property
    def folder(self) -> str:
        """Folder name in the cache and under the site's ``_vendor/``: ``name@version``."""
        return f"{self.name}@{self.version}"


PACKAGES: tuple[Package, ...] = (
    Package("vega", "6.4.0",
            "sha512-rHXCq2LpEWCLMjXBEj7hocY9G0/i5TGYRayGGSj06VTF4+l2IG2Z7oeZKCjWbUh/7hTE/mVhbaOPB72wCElh6g==",
            ("LICENSE", "build/vega.min.js")),
    Package("vega-lite", "6.4.1",
            "sha512-KO3ybHNouRK4A0al/+2fN9UqgTEfxrd/ntGLY933Hg5UOYotDVQdshR3zn7OfXwQ7uj0W96Vfa5R+QxO8am3IQ==",
            ("LICENSE", "build/vega-lite.min.js")),
    Package("vega-embed", "7.3.0",
            "sha512-wQ8s5GaSzqoKgmRfbRolgBrjE2CP7ZKHXqH7NijxMqPjpdWxSs4Dn8tvp9g0giQvh2cK+3p56sxjWWM0wNngGw==",
            ("LICENSE", "build/vega-embed.min.js")),
    # tex-chtml: TeX input, HTML output. It loads its fonts, the TeX extensions that \require or
    # autoload asks for, and the accessibility menu's parts (a11y, sre) from its own folder.
    Package("mathjax", "3.2.2",
            "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
            ("LICENSE", "es5/tex-chtml.js", "es5/output/chtml/fonts/woff-v2/*.woff",
             "es5/input/tex/extensions/*.js", "es5/ui/*.js", "es5/a11y/*.js", "es5/sre/mathmaps/*.json")),
)

BY_NAME = {p.name: p for p in PACKAGES}
MATHJAX_ENTRY = f"{BY_NAME['mathjax'].folder}/es5/tex-chtml.js"  # relative to _vendor/


def cache_dir() -> Path:
    """Where unpacked packages live: $COURSE_VENDOR_CACHE, else ~/.cache/mixed-models-course."""
    env = os.environ.get("COURSE_VENDOR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mixed-models-course" / "vendor"


def verify(data: bytes, integrity: str) -> None:
    """Raise ValueError unless ``data`` hashes to ``integrity`` (npm's "sha512-<base64>")."""
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise ValueError(f"integrity {integrity[:20]}...: only sha512 is accepted, got {algo!r}")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise ValueError(f"integrity mismatch: expected sha512-{expected}, got sha512-{got}")


def _wanted(relpath: str, patterns: tuple[str, ...]) -> bool:
    # fnmatch's * also matches "/"; compare directory depth so "es5/sre/*" keeps only that level
    return any(fnmatch.fnmatchcase(relpath, p) and relpath.count("/") == p.count("/")
               for p in patterns)


def unpack(data: bytes, package: Package, dest: Path) -> list[str]:
    """Extract the files of ``package`` that ``keep`` names from its tarball into ``dest``."""
    kept = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            top, _, rel = member.name.partition("/")  # npm tarballs hold one top folder
            if not member.isfile() or not rel or ".." in Path(rel).parts or not _wanted(rel, package.keep):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            kept.append(rel)
    missing = [p for p in package.keep if "*" not in p and p not in kept]
    if missing:
        raise ValueError(f"{package.folder}: the tarball has no {', '.join(missing)}")
    return kept


def fetch(package: Package, cache: Path | None = None, timeout: float = 60) -> Path:
    """Return the cache folder of ``package``, downloading and verifying it if needed."""
    cache = cache or cache_dir()
    dest = cache / package.folder
    stamp = dest / ".integrity"
    if stamp.is_file() and stamp.read_text() == package.integrity:
        return dest
    try:
        with urllib.request.urlopen(package.tarball_url, timeout=timeout) as response:
            data = response.read()
    except OSError as err:
        raise RuntimeError(
            f"could not download {package.tarball_url} ({err}); the website serves {package.folder} "
            f"itself and needs it once. Connect to the npm registry, or put its unpacked files in "
            f"{dest} (set COURSE_VENDOR_CACHE to use another folder)."
        ) from err
    verify(data, package.integrity)
    tmp = cache / f".{package.folder}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    unpack(data, package, tmp)
    (tmp / ".integrity").write_text(package.integrity)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def fetch_all(cache: Path | None = None) -> dict[str, Path]:
    return {p.name: fetch(p, cache) for p in PACKAGES}


def install(site: Path, cache: Path | None = None) -> Path:
    """Copy every package into ``<site>/_vendor/name@version`` (skipped when already there)."""
    target_root = Path(site) / SITE_DIR
    for package in PACKAGES:
        source = fetch(package, cache)
        target = target_root / package.folder
        stamp = target / ".integrity"
        if stamp.is_file() and stamp.read_text() == package.integrity:
            continue
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    return target_root


def main() -> int:
    paths = fetch_all()
    print(json.dumps({name: str(path) for name, path in paths.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
