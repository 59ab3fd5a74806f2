"""The Lambda bundle, built without Docker: pip fetches Linux wheels for the Lambda runtime, then the package.

`pip install --platform ... --only-binary=:all:` downloads the manylinux wheels that match the Lambda runtime
whatever the machine running the synth is, so no container is needed. The asset hash is a hash of what goes
into the bundle (package sources, requirements, pip options), so a repeated synth reuses the bundle.
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
ARCHITECTURE = lambda_.Architecture.X86_64
PYTHON_VERSION = RUNTIME.name.removeprefix("python")
# The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34): any of these wheel tags loads there.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
PIP_OPTIONS = (
    *(f"--platform={platform}" for platform in PLATFORMS),
    "--only-binary=:all:",
    "--implementation=cp",
    f"--python-version={PYTHON_VERSION}",
    "--no-compile",  # .pyc files written by this interpreter would not match the runtime's Python
    "--disable-pip-version-check",
    "--quiet",
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def _package_files() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


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

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        target = Path(output_dir)
        # Fixed arguments, this interpreter's own pip: no shell, nothing from outside.
        subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                *PIP_OPTIONS,
                f"--target={target}",
                "-r",
                str(REQUIREMENTS),
            ],
            check=True,
        )
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts of dependencies: not importable
        shutil.copytree(PACKAGE_DIR, target / PACKAGE_DIR.name, ignore=_IGNORED)
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
