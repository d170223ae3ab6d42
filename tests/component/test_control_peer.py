"""The control socket asks the kernel who its peer is (SO_PEERCRED) and answers only root
and its own user; anyone else gets one line, and no command runs."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import textwrap

import pytest
from structlog.testing import capture_logs

from healthd import control


async def _serve(path: str, **kw: object) -> tuple[control.ControlServer, list[object]]:
    calls: list[object] = []

    async def ctl(payload):
        calls.append(payload)
        return {"ok": "done"}

    server = control.ControlServer(path, lambda: {"virtuals": []}, {"ctl": ctl}, **kw)  # type: ignore[arg-type]
    await server.start()
    return server, calls


def test_root_and_the_daemons_own_user_are_allowed():
    assert control.default_allowed() == {0, os.geteuid()}


async def test_a_peer_outside_the_allowed_uids_gets_one_line_and_nothing_runs(tmp_path):
    path = str(tmp_path / "run" / "t.sock")
    server, calls = await _serve(path, allowed={4242})  # our own uid is not in the set
    try:
        with capture_logs() as logs:
            with pytest.raises(control.ControlError) as caught:
                await asyncio.to_thread(control.query, path)
            answer = await asyncio.to_thread(control.call, path, "ctl", {"op": "maint"})
    finally:
        await server.close()
    me = os.geteuid()
    assert str(caught.value) == f"refused: uid {me} may not use {path}"
    assert answer == {"error": f"refused: uid {me} may not use {path}"}
    assert calls == []
    refused = [e for e in logs if e["event"] == "control.peer_refused"]
    assert [e["uid"] for e in refused] == [me, me]


async def test_an_allowed_peer_is_served(tmp_path):
    path = str(tmp_path / "run" / "t.sock")
    server, calls = await _serve(path)
    try:
        assert await asyncio.to_thread(control.query, path) == {"virtuals": []}
        assert await asyncio.to_thread(control.call, path, "ctl", {"op": "ready"}) == {"ok": "done"}
    finally:
        await server.close()
    assert calls == [{"op": "ready"}]


CLIENT = textwrap.dedent(
    """
    import json, socket, sys
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sys.argv[1])
        s.sendall(b"ctl {\\"op\\": \\"maint\\"}\\n")
        print(json.loads(s.makefile().read())["error"])
    """
)


@pytest.mark.skipif(os.geteuid() != 0, reason="a second uid needs root")
async def test_another_user_is_refused_even_when_the_socket_is_world_writable():
    # file modes normally keep others out; SO_PEERCRED refuses them even when those are loose
    rundir = tempfile.mkdtemp(prefix="healthd-peer-")  # outside root's 0700 pytest tree
    path = os.path.join(rundir, "t.sock")
    server, calls = await _serve(path)
    os.chmod(rundir, 0o755)
    os.chmod(path, 0o666)
    argv = ["/usr/bin/python3", "-c", CLIENT, path]
    env = {"PYTHONPATH": os.getcwd(), "PATH": "/usr/bin:/bin"}
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            argv,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            user=65534,
            group=65534,
            extra_groups=[],
        )
    finally:
        await server.close()
        shutil.rmtree(rundir)
    assert done.stdout == f"refused: uid 65534 may not use {path}\n", done.stderr
    assert calls == []
