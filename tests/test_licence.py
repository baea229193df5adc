"""The licence a built wheel declares, and the licence files and notices it ships.

One wheel is built for the whole module (pip reuses the persistent build/<wheel tag> directory,
so after the first build this is fast); every check reads that wheel, not the source tree, since
the wheel is what users receive. The installed distribution is checked too, since that is what
`pip show atari-vec` reads. The expected values are written out here rather than read from
pyproject.toml, so that a file dropped from `license-files` fails these tests.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import importlib.util
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[1]

# Every wheel statically links ALE (GPL-2.0-only) and compiles in pybind11 (BSD-3-Clause) next
# to our MIT code; THIRD_PARTY_NOTICES.md explains the split.
EXPRESSION = "GPL-2.0-only AND MIT AND BSD-3-Clause"
LICENSE_FILES = [
    "LICENSE",
    "THIRD_PARTY_NOTICES.md",
    "licenses/GPL-2.0.txt",
    "licenses/pybind11-LICENSE.txt",
    "licenses/zlib-LICENSE.txt",
    "licenses/Apache-2.0.txt",
]
# Phrases that appear only in the complete texts (their titles and their final clauses).
FULL_TEXT_MARKERS = {
    "licenses/GPL-2.0.txt": [
        "GNU GENERAL PUBLIC LICENSE",
        "Version 2, June 1991",
        "END OF TERMS AND CONDITIONS",
    ],
    "licenses/pybind11-LICENSE.txt": [
        "Wenzel Jakob",
        "Neither the name of the copyright holder",
        "EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE",
    ],
    "licenses/zlib-LICENSE.txt": [
        "Jean-loup Gailly and Mark Adler",
        "This notice may not be removed or altered",
    ],
    "licenses/Apache-2.0.txt": [
        "Apache License",
        "Version 2.0, January 2004",
        "END OF TERMS AND CONDITIONS",
    ],
}
# ale-py's ROMs are .bin files; an Atari ROM may also be named .a26.
ROM_SUFFIXES = (".bin", ".a26", ".rom")


def isolation_flags() -> list[str]:
    # Building with this interpreter's scikit-build-core and pybind11 is the fast path. A plain
    # `pip install ".[test]"` leaves them only in pip's build environment; then pip builds in
    # isolation here too, as the install did.
    have = all(importlib.util.find_spec(m) for m in ("scikit_build_core", "pybind11"))
    return ["--no-build-isolation"] if have else []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            *isolation_flags(),
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    wheels = list(out.glob("atari_vec-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        yield zf


@pytest.fixture(scope="module")
def dist_info(wheel) -> str:
    (name,) = {n.split("/")[0] for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info")}
    return name


@pytest.fixture(scope="module")
def metadata(wheel, dist_info):
    return email.parser.BytesParser().parsebytes(wheel.read(f"{dist_info}/METADATA"))


def shipped_text(wheel, dist_info: str, path: str) -> str:
    return wheel.read(f"{dist_info}/licenses/{path}").decode("utf-8")


def test_wheel_declares_the_licence_expression(metadata):
    assert metadata["Metadata-Version"] == "2.4"
    assert metadata["License-Expression"] == EXPRESSION
    # PEP 639: the free-text License field and License classifiers go with an expression.
    assert metadata["License"] is None
    assert not [c for c in metadata.get_all("Classifier", []) if c.startswith("License ::")]


def test_wheel_lists_every_licence_file(metadata):
    assert sorted(metadata.get_all("License-File", [])) == sorted(LICENSE_FILES)


def test_licence_files_are_inside_the_wheel(wheel, dist_info):
    for path in LICENSE_FILES:
        assert shipped_text(wheel, dist_info, path) == (ROOT / path).read_text(encoding="utf-8"), (
            path
        )


def test_licence_is_mit_with_a_copyright_holder(wheel, dist_info):
    text = shipped_text(wheel, dist_info, "LICENSE")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 The atari_vec authors" in text
    assert "Permission is hereby granted, free of charge" in text


def test_licence_texts_are_complete(wheel, dist_info):
    for path, markers in FULL_TEXT_MARKERS.items():
        text = shipped_text(wheel, dist_info, path)
        for marker in markers:
            assert marker in text, (path, marker)


def test_notices_name_every_linked_component(wheel, dist_info):
    text = shipped_text(wheel, dist_info, "THIRD_PARTY_NOTICES.md")
    for phrase in [
        "Arcade Learning Environment",
        "GPL-2.0-only",
        EXPRESSION,
        "statically links",
        "pybind11",
        "BSD-3-Clause",
        "zlib",
        "OpenCV",
        "Apache License 2.0",
        "HAVE_OPENCV",
        "No Atari ROMs are shipped",
        "RSA Data Security",
    ]:
        assert phrase in text, phrase
    for path in LICENSE_FILES[2:]:
        assert f"`{path}`" in text, path


def test_wheel_ships_no_roms(wheel):
    assert not [n for n in wheel.namelist() if n.lower().endswith(ROM_SUFFIXES)]


def test_installed_metadata_reports_the_licence():
    # What `pip show atari-vec` reads; valid once the current tree has been installed.
    installed = importlib.metadata.metadata("atari-vec")
    assert installed["License-Expression"] == EXPRESSION
    assert sorted(installed.get_all("License-File", [])) == sorted(LICENSE_FILES)
