"""``s3regfs install-unit``: the unit and example config from the installed package, with the real command path.

The repository's ``systemd/`` is the template; the package carries the same files (``s3regfs/data/``). One
test installs the package into a fresh virtual environment as an operator would (``pip install``) and runs its
own ``s3regfs`` console script: the unit names that script and passes ``systemd-analyze verify``, and
``s3regfs --help`` points at the documentation installed with it.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import venv
from pathlib import Path

from s3regfs import exitcodes
from tests.cli.test_systemd import verify

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "systemd" / "s3regfs@.service").read_text()
TEMPLATE_START = "ExecStart=/usr/local/bin/s3regfs mount --systemd "


def install_unit(*args: str, command: tuple[str, ...] = (sys.executable, "-m", "s3regfs"),
                 cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, "install-unit", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, check=False)


def test_the_package_carries_the_systemd_directory_unchanged() -> None:
    for name in ("s3regfs@.service", "s3regfs.example.yml"):
        assert (REPO / "s3regfs" / "data" / name).read_bytes() == (REPO / "systemd" / name).read_bytes(), name
    assert TEMPLATE.count(TEMPLATE_START) == 1


def test_install_unit_writes_the_unit_with_the_running_command_and_keeps_an_existing_config(tmp_path: Path) -> None:
    done = install_unit("--prefix", str(tmp_path))
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "etc/systemd/system/s3regfs@.service"
    example = tmp_path / "etc/s3regfs/s3regfs.example.yml"
    expected_start = f"ExecStart={sys.executable} -m s3regfs mount --systemd "
    assert unit.read_text() == TEMPLATE.replace(TEMPLATE_START, expected_start)
    assert example.read_bytes() == (REPO / "systemd" / "s3regfs.example.yml").read_bytes()
    assert stat.S_IMODE(example.stat().st_mode) == 0o600 and stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert done.stdout.splitlines() == [
        f"wrote {unit} (ExecStart={sys.executable} -m s3regfs mount --systemd ...)",
        f"wrote {example} (mode 0600)",
        f"next: cp {example} {example.parent}/registry.yml, edit it, then: systemctl daemon-reload && "
        "systemctl enable --now s3regfs@registry",
    ]
    (tmp_path / "verify").mkdir()
    result = verify(unit.read_text(), tmp_path / "verify")
    assert result.returncode == 0, result.stderr

    example.write_text("version: 0.1\n# edited by the operator\n")
    again = install_unit("--prefix", str(tmp_path))
    assert again.returncode == 0 and f"kept {example} (it exists)" in again.stdout
    assert example.read_text() == "version: 0.1\n# edited by the operator\n"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    done = install_unit("--prefix", str(tmp_path), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"would write {tmp_path}/etc/systemd/system/s3regfs@.service (ExecStart=")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_prefix_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = install_unit("--prefix", str(tmp_path / "file"))
    assert done.returncode == exitcodes.CONFIG
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"s3regfs: error: cannot write {tmp_path / 'file'}/etc: "), lines
    assert "run as root, or give --prefix DIR" in lines[0]


def test_a_pip_installed_s3regfs_writes_its_own_path_and_points_at_its_installed_docs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    for name in ("s3regfs", "docs"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    pip = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    script = env_dir / "bin" / "s3regfs"

    done = install_unit("--prefix", str(tmp_path / "root"), command=(str(script),), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    unit = (tmp_path / "root/etc/systemd/system/s3regfs@.service").read_text()
    assert unit == TEMPLATE.replace(TEMPLATE_START, f"ExecStart={script} mount --systemd ")
    (tmp_path / "verify").mkdir()
    result = verify(unit, tmp_path / "verify")
    assert result.returncode == 0, result.stderr

    docs = env_dir / "share" / "doc" / "s3regfs"
    assert (docs / "README.md").is_file() and (docs / "docs" / "CONFIGURATION.md").is_file()
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           check=False).stdout
    assert f"documentation: {docs / 'docs'} (every option: CONFIGURATION.md)" in shown
    mount_help = subprocess.run([str(script), "mount", "--help"], capture_output=True, text=True, timeout=60,
                                cwd=tmp_path, check=False).stdout
    assert f"configuration (every option: {docs / 'docs' / 'CONFIGURATION.md'})" in mount_help
