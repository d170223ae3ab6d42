"""checks.KINDS is the one list of check kinds; everything that names a kind derives from it.

Adding a check is its module plus one registry line (and its tests and a COMPAT row): these
tests fail on the part that was forgotten, and show that a kind added to the registry alone
is read, guessed, ported, dispatched and reported with no other edit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from types import MappingProxyType

import pytest

import checks
from checks.base import CheckContext
from healthd import probes
from healthd.config import StaticResolver, parse_text, render_config
from healthd.engine import Engine
from healthd.errors import ConfigErrors
from healthd.ipvs.fake import FakeDriver
from healthd.model import CheckSpec, Real

COMPAT = Path(__file__).resolve().parents[2] / "docs" / "COMPAT.md"
# every option healthd hands a check (healthd.probes.options), with values every kind accepts
OFFERED = {
    "service": "x",
    "request": "dc=example,dc=com",
    "receive": "",
    "httpmethod": "GET",
    "login": "user",
    "passwd": "secret",
    "database": "db",
    "secret": "s",
    "checkcommand": "/bin/true",
    "checkcount": "1",
    "tls_verify": "no",
    "virtualhost": "www.example.com",
    "tls_cafile": "",
    "tls_hostname": "",
}
PER_KIND = {"http_proxy": {"request": "http://example.com/"}}


class Recording(dict[str, str]):
    """The options, remembering every key a check asks for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a check reads its options by name")


@pytest.mark.parametrize("name", sorted(checks.KINDS))
def test_each_kind_loads_and_reads_only_the_options_it_declares(name: str) -> None:
    kind = checks.KINDS[name]
    cls = checks.load(name)  # the test extra installs every optional check library
    assert cls.kind == name
    options = Recording({**OFFERED, **PER_KIND.get(name, {})})
    cls.from_options(options, CheckContext(timeout=1.0))
    assert options.asked - {"service"} <= kind.options, f"{name} reads undeclared options"
    assert kind.options <= OFFERED.keys(), "the registry names an option healthd never offers"


def test_the_offered_options_are_healthds() -> None:
    spec = CheckSpec(virtualhost="www", tls_cafile="/ca.pem", tls_hostname="www")
    offered = set(probes.options(spec, Real(IPv4Address("192.0.2.1"), 80)))
    assert offered == OFFERED.keys()


def test_default_ports_and_port_guesses_derive_from_the_registry() -> None:
    ports = {kind.name: kind.port for kind in checks.services() if kind.port}
    assert {name: checks.default_port(name) for name in ports} == ports
    assert {p: checks.service_on(p) for p in ports.values()} == {p: n for n, p in ports.items()}
    assert len(set(ports.values())) == len(ports), "two kinds claim one port"
    assert checks.default_port("connect") == 0, "a checktype kind is no service"


def test_checktype_kinds_are_not_services() -> None:
    assert {k.name for k in checks.KINDS.values() if not k.service} == {
        "connect",
        "ping",
        "external",
        "external-perl",
    }


def test_every_service_has_a_compat_row() -> None:
    text = COMPAT.read_text()
    rows = set(re.findall(r"`service=([a-z_]+)`", text))
    missing = sorted(k.name for k in checks.services() if k.name not in rows)
    assert missing == [], f"docs/COMPAT.md has no `service=NAME` row for {missing}"


# A throwaway kind, registered below by a monkeypatched checks.KINDS and nowhere else: it
# sends its request line to the real and is up when the answer starts with "ok".
GOPHER = """
import asyncio
from checks.base import Result

class GopherCheck:
    kind = "gopher"

    def __init__(self, request):
        self.request = request

    @classmethod
    def from_options(cls, options, ctx):
        return cls(options.get("request", "/"))

    async def check(self, target):
        reader, writer = await asyncio.open_connection(str(target.address), target.port)
        writer.write(self.request.encode() + b"\\r\\n")
        line = await reader.readline()
        writer.close()
        if line.startswith(b"ok"):
            return Result.ok(f"port {target.port}")
        return Result.down("unexpected", line.decode())
"""


@pytest.fixture
async def gopher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    """Serve the gopher kind's protocol on 127.0.0.1 and register the kind on that port."""
    asked: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readline())
        writer.write(b"ok\r\n" if asked[-1] == b"/hello\r\n" else b"no\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    (tmp_path / "gopher_check.py").write_text(GOPHER)
    monkeypatch.syspath_prepend(str(tmp_path))
    kind = checks.Kind("gopher", "gopher_check:GopherCheck", port, options=frozenset({"request"}))
    monkeypatch.setattr(checks, "KINDS", MappingProxyType({**checks.KINDS, "gopher": kind}))
    yield port
    server.close()
    assert asked, "the check reached the server"
    assert set(asked) == {b"/hello\r\n"}, "the check sent its configured request"


async def test_a_kind_added_only_to_the_registry_runs_end_to_end(gopher: int) -> None:
    text = (
        f"checkinterval=1\nvirtual=192.0.2.10:{gopher}\n    real=127.0.0.1:{gopher} masq\n"
        '    request="hello"\nvirtual=7\n    real=127.0.0.1 gate\n    service=gopher\n'
        '    request="hello"\n'
    )
    cfg = parse_text(text, "t.cf", resolver=StaticResolver(), hostname="lb1.example")
    guessed, fwmark = cfg.virtuals
    assert (guessed.check.service, fwmark.check.service) == ("gopher", "gopher")
    assert probes.check_port(fwmark, fwmark.reals[0]) == gopher, "the kind's default port"
    assert parse_text(render_config(cfg), "t.cf", resolver=StaticResolver()) == cfg
    engine = Engine(cfg, FakeDriver(), jitter=lambda: 0.0)  # the real check factory
    task = asyncio.create_task(engine.run())
    try:
        for _ in range(300):
            reals = [r for v in engine.snapshot()["virtuals"] for r in v["reals"]]  # type: ignore[attr-defined]
            if all(r["kernel_weight"] == 1 for r in reals):
                break
            await asyncio.sleep(0.01)
        assert [(r["check"], r["up"], r["kernel_weight"]) for r in reals] == [
            ("gopher", True, 1)
        ] * 2
        assert {r["last"]["detail"] for r in reals} == {f"port {gopher}"}
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 5.0)


def test_a_service_the_registry_does_not_know_is_a_config_error() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_text("virtual=7\n    real=127.0.0.1 gate\n    service=gopher\n", "t.cf")
    (error,) = info.value.errors
    assert error.message.startswith("unknown service 'gopher' (expected one of dns, ftp, http,")
