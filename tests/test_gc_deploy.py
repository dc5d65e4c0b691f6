"""The GC job's deployment files parse and all run `blobstore gc`."""

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from croniter import croniter

GC = Path(__file__).resolve().parent.parent / "gc"


def unit(name: str) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(strict=False, interpolation=None)
    cfg.optionxform = str
    cfg.read(GC / name)
    return cfg


def test_crontab_line_is_valid():
    lines = [
        ln
        for ln in (GC / "blobstore-gc.cron").read_text().splitlines()
        if ln.strip() and not ln.startswith("#") and "=" not in ln.split()[0]
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert croniter.is_valid(" ".join(fields[:5]))
    assert fields[5] == "blobstore"  # cron.d lines name the user
    assert fields[6].startswith("blobstore gc ")
    assert "[ $? -eq 75 ]" in fields[6]


def test_systemd_units_pair_up():
    service, timer = unit("blobstore-gc.service"), unit("blobstore-gc.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert " gc " in service["Service"]["ExecStart"]
    assert "75" in service["Service"]["SuccessExitStatus"]
    assert timer["Timer"]["OnCalendar"] == "hourly"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="no systemd-analyze here"
)
def test_systemd_units_verify(tmp_path):
    for name in ("blobstore-gc.service", "blobstore-gc.timer"):
        text = (GC / name).read_text().replace("/usr/local/bin/blobstore", "/bin/true")
        (tmp_path / name).write_text(
            text.replace("User=blobstore\n", "").replace("Group=blobstore\n", "")
        )
    out = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / "blobstore-gc.service"),
            str(tmp_path / "blobstore-gc.timer"),
        ],
        capture_output=True,
        text=True,
    )
    problems = [ln for ln in out.stderr.splitlines() if "blobstore-gc" in ln]
    assert not problems, out.stderr


def test_kubernetes_cronjob():
    doc = yaml.safe_load((GC / "cronjob.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("batch/v1", "CronJob")
    spec = doc["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert croniter.is_valid(spec["schedule"])
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"][:2] == ["blobstore", "gc"]


def _deployed_commands() -> dict[str, list[str]]:
    """The argv each deployment file runs."""
    cron = next(
        ln
        for ln in (GC / "blobstore-gc.cron").read_text().splitlines()
        if ln.strip() and not ln.startswith("#") and "=" not in ln.split()[0]
    )
    cron_argv = shlex.split(cron.split(None, 6)[6].split(">>")[0])
    service = shlex.split(unit("blobstore-gc.service")["Service"]["ExecStart"])
    pod = yaml.safe_load((GC / "cronjob.yaml").read_text())["spec"]["jobTemplate"]
    k8s = pod["spec"]["template"]["spec"]["containers"][0]["command"]
    return {"cron": cron_argv, "systemd": service, "kubernetes": k8s}


@pytest.mark.parametrize("where", ["cron", "systemd", "kubernetes"])
def test_deployed_command_line_is_accepted_by_blobstore_gc(where):
    # Parse with the real command: an option renamed or removed fails here.
    from blobstore_api.cli import main

    argv = _deployed_commands()[where]
    assert Path(argv[0]).name == "blobstore" and argv[1] == "gc"
    command = main.get_command(None, "gc")
    ctx = command.make_context("gc", argv[2:])
    assert ctx.params["grace"] == "30m" and ctx.params["as_json"] is True
    assert ctx.params["config"] == "/etc/blobstore/blobstore.toml"
