#!/usr/bin/env python3
"""One entry point for the project's two jobs, run from a fresh clone with nothing but Python.

    python3 dev.py book    # create .venv, install the pinned stack, execute the chapters, build _build/html
    python3 dev.py test    # the same setup, then the whole test suite (CI runs exactly this)

``python3 dev.py pdf`` builds the whole book as one PDF (``_build/latex/book.pdf``) with Jupyter Book's LaTeX builder
and XeLaTeX from Debian's TeX Live, reusing the execution cache of ``dev.py book``, copies it into the site and
rebuilds the site's pages, whose footers then link it (a site without the PDF links none).

``book``, ``pdf`` and ``notebooks`` take ``--edition full|student|instructor`` (default ``full``, the public book):
``student`` has every exercise and no solution (site, PDF and Colab/Binder notebooks), ``instructor`` every solution,
open, with its grading note (book_ext/pnc_editions.py). An edition other than ``full`` is built under
``_build/<edition>/`` (site: ``_build/<edition>/_build/html``) from the full build's execution cache, so it never
overwrites the full book and executes nothing the full build already did. Other commands: ``setup``
(environment + vendored front-end assets only), ``bench`` (the benchmarks, see benchmarks/run.py --help), ``lock``
(re-resolve requirements/lock.txt from the *.in files), ``notebooks`` (commit the converted chapter notebooks of the
last ``book`` build to the ``notebooks`` branch, which the site's Colab and Binder buttons open; push it with
``git push origin notebooks``). Only the standard library is used here, so this file runs
before anything is installed.

``setup`` also vendors the widget embed script and MathJax into ``_vendor/`` (``npm pack`` of the versions pinned in
requirements/vendor.lock, checked against the pinned digests), so the built site makes no request to another host.
``test`` additionally makes sure Debian's ``chromium`` is installed for the browser tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "lock.txt"
STAMP = VENV / ".pnc-installed"
BUILD_DIR = ROOT / "_build" / "html"
EDITIONS = ("full", "student", "instructor")
"""The book's editions (book_ext/pnc_editions.py); ``full`` is the default and the public book."""
EXECUTION_CACHE = ROOT / "_build" / ".jupyter_cache"
"""The full build's jupyter-cache, which every edition's build shares."""
MIN_PYTHON = (3, 11)  # numpy 2.4 / scipy 1.17 in the lock need 3.11+
VENDOR = ROOT / "_vendor"
VENDOR_LOCK = ROOT / "requirements" / "vendor.lock"
VENDOR_MANIFEST = "vendor-manifest.json"
# Front-end packages only the browser tests use (axe-core, the accessibility checker): the same pinning and checks,
# vendored into _vendor_test/, which is not a static path of the site, so no page can load them.
VENDOR_TEST = ROOT / "_vendor_test"
VENDOR_TEST_LOCK = ROOT / "requirements" / "vendor-test.lock"
CHROMIUM = Path(os.environ.get("PNC_CHROMIUM", "/usr/bin/chromium"))
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist installs it

# What goes where: npm package name -> [(path in the tarball, path under _vendor/)]; a trailing "/" copies a folder,
# a "*.ext" suffix copies the matching files of that folder (toolchain.md section 3).
VENDOR_FILES: dict[str, list[tuple[str, str]]] = {
    "@jupyter-widgets/html-manager": [
        ("package/dist/embed.js", "ipywidgets/embed.js"),  # standalone (no require.js), ~1.9 MB
        ("package/dist/*.woff2", "ipywidgets/"),  # Font Awesome, referenced relative to embed.js
        ("package/dist/embed.js.LICENSE.txt", "ipywidgets/embed.js.LICENSE.txt"),
    ],
    "mathjax": [
        ("package/es5/tex-mml-chtml.js", "mathjax/tex-mml-chtml.js"),
        ("package/es5/output/chtml/fonts/woff-v2/", "mathjax/output/chtml/fonts/woff-v2/"),
        ("package/LICENSE", "mathjax/LICENSE"),
    ],
    "uplot": [  # the continuous explorers' plots (pnc/book/live.py), ~51 KB
        ("package/dist/uPlot.iife.min.js", "uplot/uPlot.iife.min.js"),
        ("package/dist/uPlot.min.css", "uplot/uPlot.min.css"),
        ("package/LICENSE", "uplot/LICENSE"),
    ],
}

VENDOR_TEST_FILES: dict[str, list[tuple[str, str]]] = {
    "axe-core": [
        ("package/axe.min.js", "axe-core/axe.min.js"),
        ("package/LICENSE", "axe-core/LICENSE"),
    ],
}

# html-manager typesets widget labels through the MathJax 2 API (MathJax.Hub.Queue) while Sphinx loads MathJax 3.
# This shim gives MathJax 3 a minimal Hub; MathJax 3 replaces window.MathJax when it starts, so it is re-applied on
# DOMContentLoaded and at load. For the AMD build (embed-amd.js) it also points require.js at the
# folder of this script, where the fonts are.
WIDGETS_SHIM = """\
/* pnc-book: adapter between @jupyter-widgets/html-manager (MathJax 2 API) and MathJax 3. Written by dev.py. */
(function () {
  'use strict';
  var script = document.currentScript;
  var src = script && script.src;
  if (src && typeof window.require === 'function' && window.require.config) {
    window.require.config({ paths: { '@jupyter-widgets/html-manager/dist': src.slice(0, src.lastIndexOf('/')) } });
  }
  function typeset(element) {
    var mj = window.MathJax;
    if (!element || !mj || typeof mj.typesetPromise !== 'function') { return; }
    var run = function () { return mj.typesetPromise([element]); };
    var ready = mj.startup && mj.startup.promise ? mj.startup.promise.then(run) : run();
    ready.catch(function (err) { if (window.console) { console.warn('MathJax could not typeset a widget', err); } });
  }
  function installHub() {
    var mj = window.MathJax;
    if (!mj || mj.Hub) { return; }
    mj.Hub = {
      // MathJax 2 jobs look like ['Typeset', MathJax.Hub, element]; anything else is ignored.
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === 'Typeset') { typeset(job[2]); }
        }
      },
      Config: function () {},
      Register: { StartupHook: function () {}, MessageHook: function () {} }
    };
  }
  installHub();
  document.addEventListener('DOMContentLoaded', installHub);
  window.addEventListener('load', installHub);
})();
"""


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str | os.PathLike[str]], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def setup() -> Path:
    """Create ``.venv`` and install the locked stack plus ``pnc`` (editable); skipped when up to date."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"pnc-book needs Python {'.'.join(map(str, MIN_PYTHON))}+ (found {sys.version.split()[0]}).")
    python = _venv_python()
    if not python.exists():
        print(f"Creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return python
    # torch is pinned in the lock and installed in the same resolver run as everything else, so no
    # dependency can pull an unpinned (multi-GB CUDA) torch.
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", LOCK])
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "-e", ROOT])
    STAMP.write_text(fingerprint)
    return python


def _vendor_set(kind: str) -> tuple[Path, Path, dict[str, list[tuple[str, str]]], str]:
    """``(folder, lock, files, shim)`` of a set of vendored packages: ``"site"`` (served with the book) or ``"test"``
    (used by the browser tests only)."""
    if kind == "site":
        return VENDOR, VENDOR_LOCK, VENDOR_FILES, WIDGETS_SHIM
    if kind == "test":
        return VENDOR_TEST, VENDOR_TEST_LOCK, VENDOR_TEST_FILES, ""
    raise ValueError(f"unknown vendor set {kind!r}")


def _read_vendor_lock(kind: str = "site") -> list[tuple[str, str, str]]:
    """``(npm spec, sha256 hex, npm integrity)`` per pinned front-end package."""
    entries = []
    lock = _vendor_set(kind)[1]
    for number, line in enumerate(lock.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].startswith("sha256=") or not parts[2].startswith("sha512-"):
            sys.exit(f"{lock}:{number}: expected '<spec> sha256=<hex> sha512-<base64>', got {line!r}")
        entries.append((parts[0], parts[1].removeprefix("sha256="), parts[2]))
    return entries


def _package_name(spec: str) -> str:
    """``@scope/name@1.2.3`` -> ``@scope/name``."""
    return spec[: spec.rindex("@")] if spec.rindex("@") > 0 else spec


def _vendor_stamp(kind: str = "site") -> str:
    _, lock, files, shim = _vendor_set(kind)
    digest = hashlib.sha256(lock.read_bytes())
    digest.update(shim.encode())
    digest.update(json.dumps(files, sort_keys=True).encode())
    return digest.hexdigest()


def _vendor_is_current(kind: str = "site") -> bool:
    """True when ``_vendor/`` (or ``_vendor_test/``) was made from the current lock/shim/layout and no file in it
    changed."""
    folder = _vendor_set(kind)[0]
    manifest = folder / VENDOR_MANIFEST
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("stamp") != _vendor_stamp(kind):
        return False
    for name, sha in recorded.get("files", {}).items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            return False
    return bool(recorded.get("files"))


def _extract(tarball: Path, package: str, dest: Path, layout: dict[str, list[tuple[str, str]]] | None = None) -> None:
    """Copy the files ``layout`` (default :data:`VENDOR_FILES`) lists for ``package`` from ``tarball`` into ``dest``
    (no extraction)."""
    with tarfile.open(tarball, "r:gz") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        for source, target in (layout or VENDOR_FILES)[package]:
            if source.endswith("/"):
                picked = {name: target + name[len(source):] for name in members if name.startswith(source)}
            elif "*" in source:
                folder, suffix = source.split("*", 1)
                picked = {name: target + name[len(folder):] for name in members
                          if name.startswith(folder) and "/" not in name[len(folder):] and name.endswith(suffix)}
            else:
                picked = {source: target} if source in members else {}
            if not picked:
                sys.exit(f"{tarball.name}: nothing matches {source!r}; has the package layout changed?")
            for name, relative in picked.items():
                if ".." in Path(relative).parts:
                    sys.exit(f"{tarball.name}: refusing to write outside _vendor/: {relative}")
                out = dest / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(members[name]) as handle:  # type: ignore[union-attr]
                    out.write_bytes(handle.read())


def vendor(force: bool = False, kind: str = "site") -> Path:
    """Vendor the widget embed script and MathJax into ``_vendor/`` from npm, integrity-checked; skipped if current.

    ``kind="test"`` vendors the packages of requirements/vendor-test.lock (axe-core) into ``_vendor_test/`` instead,
    the same way; the site never serves that folder.

    ``npm pack`` fetches the exact versions pinned in requirements/vendor.lock into a temporary folder; each tarball
    must match both the pinned SHA-256 and the pinned npm integrity (SHA-512), and npm's own reported integrity. The
    new ``_vendor/`` is assembled in a temporary folder and renamed into place, so an interrupted run leaves either
    the old tree or none.
    """
    folder, lock, layout, shim = _vendor_set(kind)
    if not force and _vendor_is_current(kind):
        return folder
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm was not found. The book serves its own copy of the widget and MathJax scripts, fetched with "
                 "`npm pack`: install Node.js (which provides npm; e.g. `apt-get install npm`) and run this again.")
    entries = _read_vendor_lock(kind)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pnc-npm-") as scratch:
        specs = [spec for spec, _, _ in entries]
        print("+ npm pack", " ".join(specs), flush=True)
        packed = subprocess.run([npm, "pack", "--json", "--pack-destination", scratch, *specs], cwd=scratch,
                                capture_output=True, text=True)
        if packed.returncode != 0:
            sys.exit(f"npm pack failed ({packed.returncode}):\n{packed.stderr[-3000:]}")
        reports = {f"{r['name']}@{r['version']}": r for r in json.loads(packed.stdout)}
        building = Path(tempfile.mkdtemp(prefix=f"{folder.name}.tmp-", dir=ROOT))
        building.chmod(0o755)
        try:
            for spec, sha256, integrity in entries:
                report = reports.get(spec)
                if report is None:
                    sys.exit(f"npm pack did not report {spec} (got {sorted(reports)})")
                tarball = Path(scratch) / report["filename"]
                data = tarball.read_bytes()
                ours = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
                got256 = hashlib.sha256(data).hexdigest()
                if got256 != sha256 or ours != integrity or report.get("integrity") != integrity:
                    sys.exit(f"integrity check failed for {spec}:\n  pinned  sha256={sha256} {integrity}\n"
                             f"  tarball sha256={got256} {ours}\n  npm says {report.get('integrity')}\n"
                             f"Refusing to vendor it. If the new version is intended, update {lock.name}.")
                _extract(tarball, _package_name(spec), building, layout)
            if shim:
                (building / "ipywidgets" / "widgets-shim.js").write_text(shim)
            files = {path.relative_to(building).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
                     for path in sorted(building.rglob("*")) if path.is_file()}
            manifest = {"stamp": _vendor_stamp(kind), "packages": [spec for spec, _, _ in entries], "files": files}
            (building / VENDOR_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            old = None
            if folder.exists():
                old = ROOT / f"{folder.name}.old-{os.getpid()}"
                folder.rename(old)
            building.rename(folder)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    elapsed = time.perf_counter() - started
    print(f"Vendored {', '.join(specs)} into {folder.name}/ ({size / 1e6:.1f} MB, {elapsed:.1f} s)", flush=True)
    return folder


def _apt_install(*packages: str, recommends: bool = True) -> bool:
    """``apt-get install -y packages`` when running as root on a system with apt; False if that is not possible."""
    apt = shutil.which("apt-get")
    if not (apt and hasattr(os, "geteuid") and os.geteuid() == 0):
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run([apt, "update"], env=env)
    _run([apt, "install", "-y", *([] if recommends else ["--no-install-recommends"]), *packages], env=env)
    return True


def ensure_chromium() -> Path:
    """Make sure the browser the browser tests drive exists: Debian ``chromium`` (installed with apt-get as root)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if CHROMIUM == Path("/usr/bin/chromium") and _apt_install("chromium") and CHROMIUM.exists():
        return CHROMIUM
    sys.exit(f"The browser tests need Chromium at {CHROMIUM} and it is missing. On Debian/Ubuntu run "
             "`sudo apt-get update && sudo apt-get install -y chromium`; elsewhere set PNC_CHROMIUM to a Chromium or "
             "Chrome executable. (To skip them: python3 dev.py test -m 'not browser'.)")


def ensure_fashion_mnist() -> Path | None:
    """The real data set of chapters 1, 6 and 7: Debian's ``dataset-fashion-mnist`` (apt-get as root), found by
    ``pnc.download.locate``. Elsewhere the chapters download it once (checksums pinned); this says how to avoid that."""
    if (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        return FASHION_MNIST
    if _apt_install("dataset-fashion-mnist") and FASHION_MNIST.exists():
        return FASHION_MNIST
    print("Fashion-MNIST is not installed as a system package; the chapters will download it once into the data "
          "folder (~30 MB). To install it instead: sudo apt-get install -y dataset-fashion-mnist", flush=True)
    return None


TEX_PACKAGES = ("texlive-xetex", "texlive-latex-extra", "texlive-fonts-recommended", "latexmk", "fonts-freefont-otf",
                "poppler-utils")
"""Debian packages of the PDF edition: XeLaTeX, the LaTeX packages Sphinx needs, latexmk, the FreeFont family Sphinx's
XeLaTeX setup uses, and poppler's pdfinfo/pdfimages/pdftoppm (the PDF tests)."""
SITE_PDF = "pnc-book.pdf"
"""The PDF's name in the site's root, where every page's footer links to it."""
TEX_TOOLS = ("xelatex", "latexmk", "pdfinfo", "pdfimages", "pdftoppm")


def ensure_tex() -> None:
    """Make sure XeLaTeX, latexmk and poppler's tools exist (apt-get install as root), else say what to run."""
    if all(shutil.which(tool) for tool in TEX_TOOLS):
        return
    if _apt_install(*TEX_PACKAGES, recommends=False) and all(shutil.which(tool) for tool in TEX_TOOLS):
        return
    missing = [tool for tool in TEX_TOOLS if not shutil.which(tool)]
    sys.exit(f"The PDF edition needs {', '.join(missing)}. On Debian/Ubuntu run `sudo apt-get update && sudo apt-get "
             f"install -y --no-install-recommends {' '.join(TEX_PACKAGES)}`.")


def edition_root(edition: str) -> Path:
    """The folder an edition is built in (its site is ``<folder>/_build/html``): the repository for ``full``,
    ``_build/<edition>`` for the others."""
    if edition not in EDITIONS:
        raise ValueError(f"--edition must be one of {', '.join(EDITIONS)}, not {edition!r}")
    return ROOT if edition == "full" else ROOT / "_build" / edition


def _jupyter_book(python: Path, out: Path, edition: str, cache: Path | None, *args: str) -> int:
    """``jupyter-book build`` of the book into ``out/_build`` for ``edition``; ``cache``: a jupyter-cache to execute
    with instead of ``out/_build/.jupyter_cache``."""
    env = {**os.environ, "PNC_EDITION": edition}
    env.pop("PNC_EXECUTION_CACHE", None)
    if cache is not None:
        env["PNC_EXECUTION_CACHE"] = str(cache)
    cmd = [str(python.parent / "jupyter-book"), "build", str(ROOT), *args, "-W", "-n", "--keep-going"]
    if out != ROOT:
        cmd += ["--path-output", str(out)]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def _shared_cache(out: Path) -> Path | None:
    """The full build's execution cache for an edition built under the repository's ``_build/``, else None."""
    return EXECUTION_CACHE if out != ROOT and ROOT / "_build" in out.parents else None


def pdf(python: Path, out: Path | None = None, edition: str = "full", cache: Path | None = None,
        link: bool = True) -> Path:
    """Build the book as one PDF under ``out`` (default: :func:`edition_root`; the execution cache is ``cache``, else
    ``out/_build``'s, or the full build's for an edition under ``_build/``); with ``link``, copy it into the site
    beside it (``SITE_PDF``) and rebuild the site's pages so that their footers link it (a test that reads only the
    PDF skips that page build). Returns the PDF's path; exits with the LaTeX log's tail on failure."""
    ensure_tex()
    out = edition_root(edition) if out is None else out
    cache = cache if cache is not None else _shared_cache(out)
    returncode = _jupyter_book(python, out, edition, cache, "--builder", "pdflatex")
    latex = out / "_build" / "latex"
    book_pdf = latex / "book.pdf"
    if returncode != 0 or not book_pdf.exists():
        log = latex / "book.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no LaTeX log)"
        sys.exit(f"The PDF build failed ({returncode}); the end of {log}:\n{tail}")
    if not link:
        return book_pdf
    site = out / "_build" / "html"
    site.mkdir(parents=True, exist_ok=True)
    partial = site / f".{SITE_PDF}.part"  # the footer's "PDF edition" link (book_ext/pnc_site.py, PDF_NAME)
    shutil.copyfile(book_pdf, partial)
    partial.replace(site / SITE_PDF)
    # the pages link the PDF only if it was there when they were written: rebuild them (nothing is executed)
    if _jupyter_book(python, out, edition, cache) != 0:
        sys.exit(f"The PDF is built ({book_pdf}) but rebuilding the site's pages to link it failed")
    print(f"\nThe PDF is built: {book_pdf} (and linked from the site: {site / SITE_PDF})")
    return book_pdf


def _single_threaded() -> None:
    # The book's networks are tiny: BLAS threads cost more than they save on 2 cores (5-30x slower steps measured
    # under load) and one thread makes timings and results steadier. An explicit setting by the user wins.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def book(python: Path, edition: str = "full") -> int:
    """Execute the chapters (cached) and build the HTML site of ``edition`` (under :func:`edition_root`); fail on
    any cell error or broken reference."""
    out = edition_root(edition)
    site = out / "_build" / "html"
    returncode = _jupyter_book(python, out, edition, _shared_cache(out))
    if returncode == 0:
        print(f"\nThe book ({edition} edition) is built. Open file://{site / 'index.html'}")
    else:
        print(f"\nThe build failed; notebook tracebacks are under {site / 'reports'}", file=sys.stderr)
    return returncode


def test(python: Path, extra: list[str]) -> int:
    """Run lint and the whole pytest suite (unit, property, notebook, book build and browser tests)."""
    if "not browser" not in " ".join(extra):
        ensure_chromium()
        vendor(kind="test")  # axe-core for the accessibility checks (tests/test_browser_a11y.py)
    if "not book" not in " ".join(extra):
        ensure_tex()  # the PDF edition is built and checked by tests/test_pdf.py
    lint = subprocess.run([str(python.parent / "ruff"), "check", "."], cwd=ROOT)
    if lint.returncode != 0:
        return lint.returncode
    return subprocess.run([str(python), "-m", "pytest", *_workers(extra), *extra], cwd=ROOT).returncode


def _workers(extra: list[str]) -> list[str]:
    """pytest-xdist options: one worker per core (at most 4) unless ``extra`` chooses (``-n``, ``-p no:xdist``).

    Most of the suite is single-threaded (Sphinx, XeLaTeX, the browser, one test at a time), so on 2 cores a second
    worker runs the unit tests while the first builds the book. tests/conftest.py builds each site and PDF once for
    all workers (a file lock) and orders the tests so that the book build starts first; ``--dist worksteal`` lets an
    idle worker take the tests queued behind a build."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    chosen = any(arg in {"-n", "--numprocesses", "no:xdist"} or arg.startswith(("-n", "--numprocesses="))
                 for arg in extra)
    if cores < 2 or chosen:
        return []
    return ["-n", str(min(cores, 4)), "--dist", "worksteal"]


def lock(python: Path) -> int:
    """Re-resolve the lock from requirements/*.in in a scratch environment (needs the registry)."""
    scratch = ROOT / ".venv-lock"
    venv.EnvBuilder(with_pip=True, clear=True).create(scratch)
    pip = scratch / "bin" / "python"
    _run([pip, "-m", "pip", "install", "-q", "-r", "requirements/book.in", "-r", "requirements/test.in"])
    frozen = subprocess.run([str(pip), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    lines = [line.replace("+cpu", "") for line in frozen.stdout.splitlines() if line and not line.startswith("-e")]
    header = "# Full resolved lock of the book + test stack (CPU). Regenerate: python3 dev.py lock\n"
    tmp = LOCK.with_suffix(".tmp")
    tmp.write_text(header + "\n".join(lines) + "\n")
    tmp.replace(LOCK)
    return 0


NOTEBOOK_BRANCHES = {"full": "notebooks", "student": "notebooks-student", "instructor": "notebooks-instructor"}
"""The branch each edition's notebooks are committed to (the student site's Colab and Binder buttons open
``notebooks-student``: book_ext/pnc_editions.py)."""


def notebooks(python: Path, edition: str = "full") -> int:
    """Commit the edition's ``_build/html/notebooks/*.ipynb`` to its branch (pnc.book.publish)."""
    folder = (edition_root(edition) / "_build" / "html" / "notebooks").relative_to(ROOT).as_posix()
    branch = NOTEBOOK_BRANCHES[edition]
    code = (
        "import sys, yaml; from pnc.book.publish import publish_branch; "
        "cfg = yaml.safe_load(open('_config.yml')); repo = cfg['repository']; "
        f"c = publish_branch('.', {folder!r}, repo['url'], branch={branch!r}, "
        "source_branch=repo.get('branch', 'main')); "
        f"print(f'{branch} branch: commit {{c}}' if c else '{branch} branch: already up to date')"
    )
    return subprocess.run([str(python), "-c", code], cwd=ROOT).returncode


def parse_edition(command: str, extra: list[str]) -> str:
    """The value of ``--edition`` (``--edition X`` or ``--edition=X``) among ``extra``, which may hold nothing else;
    exits with a message naming the option on a bad value or an unknown argument."""
    edition, rest = "full", list(extra)
    while rest:
        arg = rest.pop(0)
        if arg == "--edition":
            if not rest:
                sys.exit(f"dev.py {command}: --edition needs a value: one of {', '.join(EDITIONS)}")
            edition = rest.pop(0)
        elif arg.startswith("--edition="):
            edition = arg.split("=", 1)[1]
        else:
            sys.exit(f"dev.py {command}: unknown argument {arg!r} (the only option is --edition "
                     f"{'|'.join(EDITIONS)})")
        if edition not in EDITIONS:
            sys.exit(f"dev.py {command}: --edition must be one of {', '.join(EDITIONS)}, not {edition!r}")
    return edition


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"book", "test", "setup", "lock", "bench", "pdf", "notebooks"}:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    edition = parse_edition(command, extra) if command in {"book", "pdf", "notebooks"} else "full"
    python = setup()
    if command != "lock":
        vendor()
    if command in {"book", "test", "pdf"}:
        _single_threaded()
        ensure_fashion_mnist()
    if command == "book":
        return book(python, edition)
    if command == "pdf":
        pdf(python, edition=edition)
        return 0
    if command == "test":
        return test(python, extra)
    if command == "bench":
        return subprocess.run([str(python), str(ROOT / "benchmarks" / "run.py"), *extra], cwd=ROOT).returncode
    if command == "lock":
        return lock(python)
    if command == "notebooks":
        return notebooks(python, edition)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
