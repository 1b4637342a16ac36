"""`manage.py serve` for a newcomer (issue 17, item 6): a taken port is a one-line error
naming the port and the way out (`make run PORT=...`), exit code 1, nothing started; the
first run's admin login (PETCAM_LOGIN_NOTE, from `make run`) is the last thing printed
once the site is up."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.support.processes import ROOT, migrate, pick_free_port, site_env, wait_for


def serve(env: dict[str, str], port: int, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, text=True, **kwargs)


def test_a_taken_port_is_a_clear_error(tmp_path):
    env = site_env(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = serve(env, port, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, no traceback
    assert f"port {port} is already in use" in lines[0], err
    assert f"make run PORT={port + 1}" in lines[0] and f"--port {port + 1}" in lines[0], err
    assert "petcam is up" not in out


def test_the_admin_login_is_repeated_last(tmp_path):
    env = site_env(tmp_path)
    migrate(env)
    note = "Created admin account.  username: admin  password: Xy12abcdEFGH3456"
    env["PETCAM_LOGIN_NOTE"] = note
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = serve(env, pick_free_port(), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: proc.poll() is not None or note in log.read_text(), 60,
                     "the login note")
            assert proc.poll() is None, log.read_text()
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            up = next(i for i, line in enumerate(lines) if "petcam is up at" in line)
            assert lines[up + 1].endswith(note), lines[up:]
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_without_a_note_it_says_how_to_log_in(tmp_path):
    env = site_env(tmp_path)
    migrate(env)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = serve(env, pick_free_port(), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: proc.poll() is not None or "changepassword admin" in
                     log.read_text(), 60, "the login hint")
            assert proc.poll() is None, log.read_text()
            assert "password:" not in log.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
