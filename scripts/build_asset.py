"""Build the Lambda code asset and the dependency layer, check them, and print their sizes.

What ``cdk synth`` gets from ``infra/bundle.py``, built and checked in one go:

* the code asset (``functions/`` + ``shared/``) and the dependency layer for the Lambda runtime and
  architecture (pip wheels, no Docker), with how long each took and whether it came from the cache;
* the architecture check: every ELF file of the layer is for the target machine, every extension
  module for the runtime's CPython (or the stable ABI);
* the import check: the same requirement set built for this machine, then every handler of the
  manifest imported (and its ``lambda_handler`` checked) in an isolated CPython of the runtime's
  version with nothing but the asset on its path, each handler's cold import time, then every
  module of the asset and everything it imports anywhere;
* sizes unzipped and zipped against Lambda's 250 MB limit, and the largest distributions.

Usage:

    .venv/bin/python scripts/build_asset.py [--rebuild] [--no-pip-cache] [--top 12]
        [--runtime python3.13] [--architecture arm64] [--skip-import-check]

``--rebuild`` drops the cached layers first (a cold build); ``--no-pip-cache`` also keeps pip from
its download cache, so the figures include fetching every wheel.  Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra import bundle  # noqa: E402

_HOST_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _mb(size: int) -> str:
    return f"{size / 2**20:7.1f} MiB"


def _timed_layer(architecture: str, runtime: str, rebuild: bool) -> tuple[Path, float, bool]:
    location = bundle.layer_location(runtime=runtime, architecture=architecture)
    if rebuild and location.is_dir():
        shutil.rmtree(location)
    cached = location.is_dir()
    started = time.perf_counter()
    layer = bundle.dependency_layer_dir(runtime=runtime, architecture=architecture)
    return layer, time.perf_counter() - started, cached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runtime", default=bundle.LAMBDA_RUNTIME_NAME)
    parser.add_argument("--architecture", default=bundle.ARCHITECTURE, choices=("arm64", "x86_64"))
    parser.add_argument("--rebuild", action="store_true", help="drop the cached layers first")
    parser.add_argument("--no-pip-cache", action="store_true", help="download every wheel again")
    parser.add_argument("--top", type=int, default=12, help="distributions listed by size")
    parser.add_argument("--skip-import-check", action="store_true")
    args = parser.parse_args(argv)
    if args.no_pip_cache:
        os.environ["PIP_NO_CACHE_DIR"] = "1"  # read by the pip that bundle runs
    chosen = bundle.target(args.runtime, args.architecture)
    try:
        return _report(chosen, args)
    except bundle.BundleError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1


def _report(chosen: bundle.Target, args: argparse.Namespace) -> int:
    glibc = ".".join(map(str, chosen.glibc))
    print(f"== Lambda {chosen.runtime} on {chosen.architecture} ({chosen.machine}, glibc <= {glibc})")
    started = time.perf_counter()
    code = bundle.code_dir()
    print(
        f"code asset      {code}  ({len(bundle.code_files())} files, {time.perf_counter() - started:.2f} s)"
    )

    layer, seconds, cached = _timed_layer(chosen.architecture, chosen.runtime, args.rebuild)
    manifest = bundle.layer_manifest(layer)
    state = "cached" if cached else f"built (pip {manifest['install_seconds']} s)"
    print(f"layer           {layer}  ({state}, {seconds:.2f} s)")
    print(f"byte code       {'compiled by ' + str(manifest['bytecode']) if manifest['bytecode'] else 'none'}")
    installed = bundle.installed_distributions(layer / "python")
    print(f"distributions   {len(installed)}: " + ", ".join(f"{n} {v}" for n, v in installed.items()))

    binaries = bundle.check_binaries(layer / "python", chosen)
    print(f"\n== architecture: {binaries.elf_files} ELF files, {binaries.extensions} extension modules")
    for problem in binaries.problems:
        print(f"  PROBLEM {problem}")
    if binaries.problems:
        return 1
    print(f"  all {chosen.machine}, all {chosen.extension_tag} or abi3")

    if not args.skip_import_check:
        _import_check(chosen, code, installed, args.rebuild)

    code_unzipped, layer_unzipped = bundle.tree_size(code), bundle.tree_size(layer)
    total = bundle.check_unzipped_size(code, layer)
    print("\n== sizes            unzipped       zipped")
    print(f"  code asset     {_mb(code_unzipped)}  {_mb(bundle.zipped_size(code))}")
    print(f"  layer          {_mb(layer_unzipped)}  {_mb(bundle.zipped_size(layer))}")
    limit = bundle.LAMBDA_UNZIPPED_LIMIT_BYTES
    share = f"{100 * total / limit:.0f}% of Lambda's {limit / 2**20:.0f} MiB limit"
    print(f"  together       {_mb(total)}  ({share})")
    print(f"\n== largest distributions in the layer (unzipped, top {args.top})")
    for name, size in bundle.distribution_sizes(layer / "python")[: args.top]:
        print(f"  {name:40} {_mb(size)}")
    return 0


def _import_check(chosen: bundle.Target, code: Path, installed: dict[str, str], rebuild: bool) -> None:
    host_architecture = _HOST_ARCHITECTURES.get(platform.machine().lower())
    python = bundle.find_python(chosen.python_version)
    if host_architecture is None or python is None:
        raise bundle.BundleError(
            f"the import check needs CPython {chosen.python_version} on a Linux x86_64 or arm64 machine "
            f"(found {python or 'no interpreter'} on {platform.machine()}); --skip-import-check to skip it"
        )
    host = bundle.target(chosen.runtime, host_architecture)
    host_layer, seconds, cached = _timed_layer(host.architecture, host.runtime, rebuild)
    print(f"\n== import check with {python}")
    print(f"  host layer {host_layer} ({'cached' if cached else 'built'}, {seconds:.2f} s)")
    host_installed = bundle.installed_distributions(host_layer / "python")
    if host_installed != installed:
        differing = sorted(set(host_installed.items()) ^ set(installed.items()))
        raise bundle.BundleError(f"the host layer resolved other versions than the Lambda one: {differing}")
    print(f"  same {len(installed)} distributions at the same versions as the {chosen.architecture} layer")
    compiled = bundle.check_handler_imports(code, host_layer / "python", python, host)
    print("  cold import of each handler     modules   layer as built   layer from source only")
    source = bundle.check_handler_imports(code, host_layer / "python", python, host, bytecode=False)
    for with_pyc, without in zip(compiled, source, strict=True):
        print(
            f"  {with_pyc.module:30} {with_pyc.modules:7}   {with_pyc.seconds:12.3f} s"
            f"   {without.seconds:12.3f} s ({without.seconds / with_pyc.seconds:.1f}x)"
        )
    count = bundle.check_asset_imports(code, host_layer / "python", python, host)
    print(f"  every module of the asset and all {count} names it imports (lazy ones too): ok")


if __name__ == "__main__":
    sys.exit(main())
