"""A minimal PEP 517 / PEP 660 build backend for the pure-Python `gem` package.

It uses only the standard library, so pip can build the wheel with no network and no
setuptools (pyproject.toml lists no build requirements). It packs gem/*.py into a
py3-none-any wheel with its METADATA, WHEEL and RECORD files; nothing is written into the
source tree.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

NAME = "gem"
SUMMARY = "Python bindings of libgem: variability-aware placement of MoE experts on GPUs"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(HERE, NAME)
TAG = "py3-none-any"
# Zip entries get a fixed date so that the same sources give the same wheel.
_EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))


def _version():
    with open(os.path.join(PACKAGE_DIR, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("gem_build: no __version__ in gem/__init__.py")
    return m.group(1)


def _metadata():
    readme = os.path.join(HERE, "README.md")
    text = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\nLicense: MIT\n"
            "Requires-Python: >=3.7\n" % (NAME, _version(), SUMMARY))
    if os.path.exists(readme):
        with open(readme, encoding="utf-8") as f:
            text += "Description-Content-Type: text/markdown\n\n" + f.read()
    return text


def _wheel_file():
    return "Wheel-Version: 1.0\nGenerator: gem_build\nRoot-Is-Purelib: true\nTag: %s\n" % TAG


def _dist_info():
    return "%s-%s.dist-info" % (NAME, _version())


def _package_files():
    """(archive name, bytes) of every .py file of the package, sorted."""
    out = []
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for fname in sorted(files):
            if fname.endswith(".py") or fname == "py.typed":
                full = os.path.join(root, fname)
                arc = os.path.relpath(full, HERE).replace(os.sep, "/")
                with open(full, "rb") as f:
                    out.append((arc, f.read()))
    return out


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (name, digest, len(data))


def _write_wheel(wheel_directory, files):
    dist_info = _dist_info()
    files = list(files) + [
        (dist_info + "/METADATA", _metadata().encode("utf-8")),
        (dist_info + "/WHEEL", _wheel_file().encode("utf-8")),
    ]
    record = "".join(_record_line(n, d) for n, d in files) + dist_info + "/RECORD,,\n"
    files.append((dist_info + "/RECORD", record.encode("utf-8")))
    wheel_name = "%s-%s-%s.whl" % (NAME, _version(), TAG)
    path = os.path.join(wheel_directory, wheel_name)
    tmp = path + ".tmp"
    date = time.gmtime(max(_EPOCH, 315532800))[:6]
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=date)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, path)
    return wheel_name


# ---- PEP 517 hooks ------------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, _dist_info())
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(_wheel_file())
    return _dist_info()


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel holding only a .pth file that puts this directory on sys.path."""
    return _write_wheel(wheel_directory, [("__editable__.%s.pth" % NAME,
                                           (HERE + "\n").encode("utf-8"))])


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, _version())
    name = base + ".tar.gz"
    members = [(arc, data) for arc, data in _package_files()]
    for extra in ("pyproject.toml", "README.md", "_backend/gem_build.py"):
        full = os.path.join(HERE, extra)
        if os.path.exists(full):
            with open(full, "rb") as f:
                members.append((extra, f.read()))
    members.append(("PKG-INFO", _metadata().encode("utf-8")))
    path = os.path.join(sdist_directory, name)
    with tarfile.open(path + ".tmp", "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for arc, data in members:
            info = tarfile.TarInfo("%s/%s" % (base, arc))
            info.size, info.mode, info.mtime = len(data), 0o644, _EPOCH
            tar.addfile(info, io.BytesIO(data))
    os.replace(path + ".tmp", path)
    return name
