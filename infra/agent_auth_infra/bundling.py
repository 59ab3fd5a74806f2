"""The Lambda bundle, built without Docker: pip fetches Linux wheels for the Lambda runtime, then the package.

`pip install --platform ... --only-binary=:all:` downloads the manylinux wheels that match the Lambda runtime
whatever the machine running the synth is, so no container is needed. The asset hash is a hash of what goes
into the bundle (package sources, requirements, pip options), so a repeated synth reuses the bundle.

The functions run on arm64 (Graviton): the same work costs about 20% less per GB-second than on x86_64,
and cryptography ships aarch64 manylinux wheels. What only the CLI and the development server use
(SERVER_ONLY_EXCLUDED: agent_auth.cli, agent_auth.devserver) stays out of the bundle, and out of its hash.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

import agent_auth

PACKAGE_DIR = Path(agent_auth.__file__).resolve().parent
FUNCTIONS_DIR = PACKAGE_DIR.parent
REQUIREMENTS = FUNCTIONS_DIR / "requirements.txt"

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = RUNTIME.name.removeprefix("python")


def platforms(machine: str) -> tuple[str, ...]:
    """The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34): any of these wheel tags loads there."""
    return (f"manylinux2014_{machine}", f"manylinux_2_28_{machine}", f"manylinux_2_34_{machine}")


PLATFORMS = platforms("aarch64")


def pip_options(wheel_platforms: tuple[str, ...]) -> tuple[str, ...]:
    return (
        *(f"--platform={platform}" for platform in wheel_platforms),
        "--only-binary=:all:",
        "--implementation=cp",
        f"--python-version={PYTHON_VERSION}",
        "--no-compile",  # .pyc files written by this interpreter would not match the runtime's Python
        "--disable-pip-version-check",
        "--quiet",
    )


PIP_OPTIONS = pip_options(PLATFORMS)
SERVER_ONLY_EXCLUDED = ("cli", "devserver")
"""Subpackages of agent_auth no handler imports: the operator CLI and the local development server."""


def _bundled(path: Path) -> bool:
    parts = path.relative_to(PACKAGE_DIR).parts
    return "__pycache__" not in parts and path.suffix != ".pyc" and parts[0] not in SERVER_ONLY_EXCLUDED


def _not_bundled(directory: str, names: list[str]) -> set[str]:
    """shutil.copytree's ignore: what _bundled leaves out."""
    return {name for name in names if not _bundled(Path(directory) / name)}


def _package_files() -> list[Path]:
    return sorted(path for path in PACKAGE_DIR.rglob("*") if path.is_file() and _bundled(path))


def source_hash() -> str:
    """Changes whenever anything that ends up in the bundle could change, and only then."""
    digest = hashlib.sha256()
    # How the bundle is made (this module) is as much an input as what goes into it.
    digest.update(Path(__file__).read_bytes())
    digest.update("\0".join((RUNTIME.name, *PIP_OPTIONS)).encode())
    for path in [REQUIREMENTS, *_package_files()]:
        digest.update(b"\0" + path.relative_to(FUNCTIONS_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class PipBundling:
    """Local bundling: the only bundling there is (no Docker engine is assumed)."""

    def __init__(self, wheel_platforms: tuple[str, ...] = PLATFORMS) -> None:
        self._pip_options = pip_options(wheel_platforms)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        target = Path(output_dir)
        # Fixed arguments, this interpreter's own pip: no shell, nothing from outside.
        subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                *self._pip_options,
                f"--target={target}",
                "-r",
                str(REQUIREMENTS),
            ],
            check=True,
        )
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts of dependencies: not importable
        shutil.copytree(
            PACKAGE_DIR,
            target / PACKAGE_DIR.name,
            ignore=_not_bundled,
        )
        return True


def lambda_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(),
        bundling=BundlingOptions(
            # Never pulled: PipBundling always bundles locally.
            image=DockerImage.from_registry("docker-bundling-is-not-used"),
            local=PipBundling(),
        ),
    )
