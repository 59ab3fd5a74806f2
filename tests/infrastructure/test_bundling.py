"""The Lambda bundle: built without Docker, reused while its sources do not change."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import DockerImage

from agent_auth import routes
from agent_auth_infra import bundling

from .synthesis import Synthesized, synthesize


def test_all_functions_share_one_bundle(synth: Synthesized) -> None:
    keys = {synth.props(synth.function_id(spec))["Code"]["S3Key"] for spec in routes.ALL_FUNCTIONS}
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

    # When only the CLI or the development server changes / Then neither does it: they are not bundled
    for excluded in ("cli", "devserver"):
        module = next((sources / "agent_auth" / excluded).glob("*.py"))
        module.write_text(module.read_text() + "\n# changed\n")
    assert bundling.source_hash() == after_requirements


@dataclass(frozen=True)
class Bundle:
    outdir: Path
    asset: Path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    # Given a real synth that bundles (pip downloads manylinux wheels from PyPI)
    outdir = tmp_path_factory.mktemp("bundled")
    result = synthesize(outdir, bundle=True)
    assert result.error is None
    code = result.props(result.function_id(routes.TOKEN))["Code"]["S3Key"]
    return Bundle(outdir, outdir / f"asset.{code.removesuffix('.zip')}")


@pytest.mark.slow
def test_bundle_holds_the_package_and_linux_wheels(bundle: Bundle) -> None:
    # Then the bundle holds our handlers and the dependencies, built for Linux arm64
    asset = bundle.asset
    assert (asset / "agent_auth" / "handlers" / "token.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    for package in ("jwt", "cryptography", "aws_lambda_powertools"):
        assert (asset / package / "__init__.py").is_file(), package
    shared_objects = list((asset / "cryptography").rglob("*.so"))
    assert shared_objects
    for shared_object in shared_objects:
        assert _elf_machine(shared_object) == "ELF 64-bit aarch64", shared_object
    wheel_tags = (next(asset.glob("cryptography-*.dist-info")) / "WHEEL").read_text()
    assert "manylinux" in wheel_tags and "aarch64" in wheel_tags
    # And nothing only the CLI or the development server needs
    assert not (asset / "agent_auth" / "cli").exists()
    assert not (asset / "agent_auth" / "devserver").exists()
    assert (asset / "agent_auth" / "handlers").is_dir()


@pytest.mark.slow
def test_handlers_import_from_the_bundle_alone(bundle: Bundle, tmp_path: Path) -> None:
    # Given a CPython 3.12 (the Lambda runtime's version: the bundle's binary wheels need it)
    python = _python_3_12()
    if python is None:
        pytest.skip("no CPython 3.12 interpreter on this machine")
    # And only what the Lambda runtime provides besides the bundle (boto3 and its dependencies)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in LAMBDA_RUNTIME_PROVIDES:
        module = __import__(name)
        source = Path(module.__file__ or "")
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)

    # And the bundle's very contents, with wheels for this machine when it is not arm64 (an aarch64
    # shared object cannot load here): the same requirements and package, only the platform differs
    asset = bundle.asset
    if platform.machine() not in ("aarch64", "arm64"):
        asset = tmp_path / "host-bundle"
        bundling.PipBundling(bundling.platforms(platform.machine())).try_bundle(
            str(asset), image=DockerImage.from_registry("unused")
        )
        assert sorted(p.name for p in (asset / "agent_auth").iterdir()) == sorted(
            p.name for p in (bundle.asset / "agent_auth").iterdir()
        )

    # When each handler module is imported in an isolated interpreter
    handlers = ", ".join(f"agent_auth.handlers.{spec.name}" for spec in routes.ALL_FUNCTIONS)
    script = f"import sys; sys.path[:0] = [{str(asset)!r}, {str(runtime)!r}]; import {handlers}"
    result = subprocess.run([python, "-I", "-S", "-c", script], check=False, capture_output=True, text=True)

    # Then they load: nothing they import is missing from the bundle
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_bundle_is_reused_by_the_next_synth(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a bundler that only counts its calls
    calls: list[str] = []

    def counting_bundler(self: object, output_dir: str, *options: object) -> bool:
        calls.append(output_dir)
        (Path(output_dir) / "placeholder.py").write_text("")
        return True

    monkeypatch.setattr(bundling.PipBundling, "try_bundle", counting_bundler)

    # When the app is synthesized again into the same directory
    again = synthesize(bundle.outdir, bundle=True)

    # Then the bundle is reused, not rebuilt
    assert again.error is None
    assert calls == []
    # (while a fresh directory does call the bundler, so the check above is not vacuous)
    synthesize(bundle.outdir / "fresh", bundle=True)
    assert len(calls) == 1


# What the python3.12 Lambda runtime has besides the standard library.
LAMBDA_RUNTIME_PROVIDES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3", "six")


def _python_3_12() -> str | None:
    candidates = [
        shutil.which("python3.12"),
        *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            check=False,
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def _elf_machine(path: Path) -> str:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not ELF"
    # e_ident[EI_CLASS] == 2: 64-bit; e_machine (bytes 18-19, little endian) == 62: x86-64
    machine = int.from_bytes(header[18:20], "little")
    # e_machine 183: AArch64
    name = {62: "x86-64", 183: "aarch64"}.get(machine, str(machine))
    return f"ELF {'64-bit' if header[4] == 2 else '32-bit'} {name}"
