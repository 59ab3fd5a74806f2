"""The Lambda bundle: built without Docker, reused while its sources do not change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent_auth import routes
from agent_auth_infra import bundling

from .synthesis import Synthesized, synthesize


def test_all_functions_share_one_bundle(synth: Synthesized) -> None:
    keys = {synth.props(synth.function_id(spec))["Code"]["S3Key"] for spec in routes.FUNCTIONS}
    assert len(keys) == 1


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of functions/ that the hash reads instead of the real one."""
    functions = tmp_path / "functions"
    shutil.copytree(bundling.PACKAGE_DIR, functions / "agent_auth")
    shutil.copy(bundling.REQUIREMENTS, functions / "requirements.txt")
    monkeypatch.setattr(bundling, "FUNCTIONS_DIR", functions)
    monkeypatch.setattr(bundling, "PACKAGE_DIR", functions / "agent_auth")
    monkeypatch.setattr(bundling, "REQUIREMENTS", functions / "requirements.txt")
    return functions


def test_source_hash_follows_the_package_and_requirements(sources: Path) -> None:
    # Given the hash of the sources as they are
    before = bundling.source_hash()
    assert bundling.source_hash() == before

    # When a module changes / Then the hash changes (the next synth bundles again)
    token = sources / "agent_auth" / "handlers" / "token.py"
    token.write_text(token.read_text() + "\n# changed\n")
    after_module = bundling.source_hash()
    assert after_module != before

    # When a requirement changes / Then the hash changes
    requirements = sources / "requirements.txt"
    requirements.write_text(requirements.read_text() + "jmespath==1.1.0\n")
    after_requirements = bundling.source_hash()
    assert after_requirements != after_module

    # When only bytecode caches change / Then the hash does not (they never enter the bundle)
    cache = sources / "agent_auth" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "stray.cpython-311.pyc").write_bytes(b"\0")
    assert bundling.source_hash() == after_requirements


@pytest.mark.slow
def test_bundle_holds_the_package_and_linux_wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a real synth that bundles (pip downloads manylinux wheels from PyPI)
    result = synthesize(tmp_path, bundle=True)
    assert result.error is None
    code = result.props(result.function_id(routes.TOKEN))["Code"]["S3Key"]
    asset = tmp_path / f"asset.{code.removesuffix('.zip')}"

    # Then the bundle holds our handlers and the dependencies, built for Linux x86_64
    assert (asset / "agent_auth" / "handlers" / "token.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    for package in ("jwt", "cryptography", "aws_lambda_powertools"):
        assert (asset / package / "__init__.py").is_file(), package
    shared_objects = list((asset / "cryptography").rglob("*.so"))
    assert shared_objects
    for shared_object in shared_objects:
        assert "ELF 64-bit" in _file_type(shared_object) and "x86-64" in _file_type(shared_object)
    wheel_tags = (next(asset.glob("cryptography-*.dist-info")) / "WHEEL").read_text()
    assert "manylinux" in wheel_tags and "x86_64" in wheel_tags

    # When the app is synthesized again into the same directory
    calls: list[str] = []

    def counting_bundler(self: object, output_dir: str, *options: object) -> bool:
        calls.append(output_dir)
        (Path(output_dir) / "placeholder.py").write_text("")
        return True

    monkeypatch.setattr(bundling.PipBundling, "try_bundle", counting_bundler)
    again = synthesize(tmp_path, bundle=True)

    # Then the bundle is reused, not rebuilt
    assert again.error is None
    assert calls == []
    # (while a fresh directory does call the bundler, so the check above is not vacuous)
    synthesize(tmp_path / "fresh", bundle=True)
    assert len(calls) == 1


def _file_type(path: Path) -> str:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not ELF"
    # e_ident[EI_CLASS] == 2: 64-bit; e_machine (bytes 18-19, little endian) == 62: x86-64
    machine = int.from_bytes(header[18:20], "little")
    return f"ELF {'64-bit' if header[4] == 2 else '32-bit'} {'x86-64' if machine == 62 else machine}"
