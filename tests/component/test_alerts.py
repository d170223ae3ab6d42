"""E-mail alerts against a real SMTP server (aiosmtpd on loopback) and a fake sendmail."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from checks.base import Result
from healthd.alerts import EmailAlerts
from healthd.clock import FakeClock
from healthd.model import Alerts, AlertStatus, Config, Fallback, Forward, Proto, Real, Virtual
from tests.checks.servers.smtp import SMTPServer, smtp_server

RECIPIENTS = ("ops@example.org", "oncall@example.org")
REAL = Real(ip_address("192.0.2.21"), 80, Forward.MASQ, 3)


def virtual(
    *,
    smtp: str | None = None,
    quiescent: bool = True,
    freq: int = 0,
    status: frozenset[AlertStatus] = frozenset(AlertStatus),
    servicename: str | None = "web",
    comment: str | None = "front page",
) -> Virtual:
    alerts = Alerts(emailalert=RECIPIENTS, emailalertfreq=freq, emailalertstatus=status, smtp=smtp)
    return Virtual(
        Proto.TCP,
        ip_address("192.0.2.10"),
        80,
        reals=(REAL,),
        quiescent=quiescent,
        alerts=alerts,
        fallback=Fallback(ip_address("127.0.0.1"), 80),
        servicename=servicename,
        comment=comment,
    )


def make_alerts(tmp_path: Path | None = None, **kw: Any) -> EmailAlerts:
    config = Config(path="/etc/ha.d/ldirectord.cf", emailalertfrom=kw.pop("sender", None))
    sendmail = str(tmp_path / "sendmail") if tmp_path else "/nonexistent/sendmail"
    kw.setdefault("autostart", False)  # tests look at the queue, or run() it themselves
    return EmailAlerts(config, hostname="lb1", user="healthd", sendmail=sendmail, **kw)


@asynccontextmanager
async def running(alerts: EmailAlerts) -> AsyncIterator[None]:
    task = asyncio.create_task(alerts.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_for_mail(server: SMTPServer, count: int = 1) -> None:
    async with asyncio.timeout(10):
        while len(server.recorder.messages) < count:
            server.recorder.arrived.clear()
            await server.recorder.arrived.wait()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_smtp_alert_reaches_every_recipient(host: str) -> None:
    async with smtp_server(host) as server:
        alerts = make_alerts(smtp_port=server.port, sender="lvs@example.org")
        await alerts.on_state("running")
        async with running(alerts):
            await alerts.on_transition(virtual(smtp=host), REAL, False, None, "timeout")
            await wait_for_mail(server)
    [mail] = server.recorder.messages
    assert sorted(mail.rcpt_tos) == sorted(RECIPIENTS)  # ldirectord: nothing with two
    assert mail.mail_from == "healthd@lb1"
    subject = "[web] Quiescent real server: 192.0.2.21:80 (192.0.2.10:80) (Weight set to 0)"
    assert "From: lvs@example.org\r\n" in mail.content
    assert "To: ops@example.org, oncall@example.org\r\n" in mail.content
    assert f"Subject: {subject}\r\n" in mail.content
    body = mail.content.split("\r\n\r\n", 1)[1]
    assert body.replace("\r\n", "\n") == (
        "ldirectord host: lb1\n"
        f"Log-Message: {subject}\n"
        "Daemon-Status: running\n"
        "\n"
        "Service name: web\n"
        "Comment: front page\n"
        "\n"
    )


async def test_smtp_up_mails_and_default_sender() -> None:
    async with smtp_server("127.0.0.1") as server:
        alerts = make_alerts(smtp_port=server.port)
        async with running(alerts):
            plain = virtual(smtp="127.0.0.1", quiescent=False, servicename=None, comment=None)
            await alerts.on_transition(plain, REAL, False, None, "refused")
            await alerts.on_transition(plain, REAL, True, Result.ok(), "ok")
            await wait_for_mail(server, 2)
    down, up = server.recorder.messages
    assert "Subject: Deleted real server: 192.0.2.21:80 (192.0.2.10:80)\r\n" in down.content
    assert "Subject: Added real server: 192.0.2.21:80 (192.0.2.10:80) (Weight set to 3)" in (
        up.content
    )
    assert "From: healthd@lb1\r\n" in up.content
    assert up.content.endswith("Daemon-Status: starting\r\n")  # no extra block


async def test_delivery_starts_by_itself_and_aclose_stops_it() -> None:
    async with smtp_server("127.0.0.1") as server:
        alerts = make_alerts(smtp_port=server.port, autostart=True)
        await alerts.on_transition(virtual(smtp="127.0.0.1"), REAL, False, None, "timeout")
        await wait_for_mail(server)
        await alerts.aclose()
    assert len(server.recorder.messages) == 1
    assert alerts.sent == 1


async def test_aclose_delivers_what_is_still_queued(tmp_path: Path) -> None:
    script = tmp_path / "sendmail"
    script.write_text(f"#!/bin/sh\ncat >> {tmp_path}/spool\n")
    script.chmod(0o755)
    alerts = make_alerts(tmp_path)
    await alerts.on_state("stopping")
    await alerts.on_fallback(virtual(), False)
    await alerts.on_fallback(virtual(), True)
    await alerts.aclose()
    spool = (tmp_path / "spool").read_text()
    assert spool.count("Daemon-Status: stopping\n") == 2
    assert alerts.queue.empty()


async def test_sendmail_gets_the_message_on_stdin(tmp_path: Path) -> None:
    script = tmp_path / "sendmail"
    script.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat > {tmp_path}/message\n')
    script.chmod(0o755)
    alerts = make_alerts(tmp_path)
    await alerts.on_state("running")
    await alerts.on_fallback(virtual(), True)
    assert alerts.queue.qsize() == 1
    assert await alerts.deliver(alerts.queue.get_nowait())
    assert (tmp_path / "args").read_text() == "-t -oi\n"
    subject = "[web] Added fallback server: 127.0.0.1:80 (192.0.2.10:80) (Weight set to 1)"
    assert (tmp_path / "message").read_text() == (
        "To: ops@example.org, oncall@example.org\n"
        f"Subject: {subject}\n"
        "\n"
        "ldirectord host: lb1\n"
        f"Log-Message: {subject}\n"
        "Daemon-Status: running\n"
        "\n"
        "Service name: web\n"
        "Comment: front page\n"
        "\n"
    )


async def test_sendmail_gets_emailalertfrom_as_from(tmp_path: Path) -> None:
    script = tmp_path / "sendmail"
    script.write_text(f"#!/bin/sh\ncat > {tmp_path}/message\n")
    script.chmod(0o755)
    alerts = make_alerts(tmp_path, sender="LVS <lvs@example.org>")
    await alerts.on_fallback(virtual(), True)
    assert await alerts.deliver(alerts.queue.get_nowait())
    message = (tmp_path / "message").read_text()
    assert message.startswith("From: LVS <lvs@example.org>\nTo: ops@example.org, oncall@")


async def test_sendmail_failure_is_logged_not_raised(tmp_path: Path, logs_captured: list) -> None:
    script = tmp_path / "sendmail"
    script.write_text("#!/bin/sh\necho 'no such user' >&2\nexit 67\n")
    script.chmod(0o755)
    alerts = make_alerts(tmp_path)
    await alerts.on_fallback(virtual(), False)
    assert not await alerts.deliver(alerts.queue.get_nowait())
    failed = [e for e in logs_captured if e["event"] == "hook.failed"]
    assert failed[0]["detail"] == "sendmail: exit status 67: no such user"
    assert alerts.sent == 0


async def test_sendmail_that_leaves_a_background_child_is_done_when_it_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an MTA may fork its delivery and keep stderr open: the mail is sent when sendmail exits
    import healthd.alerts

    monkeypatch.setattr(healthd.alerts, "SEND_TIMEOUT", 5.0)
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "sendmail"
    script.write_text(f"#!/bin/sh\nsleep 30 &\necho $! > {pidfile}\ncat > {tmp_path}/message\n")
    script.chmod(0o755)
    alerts = make_alerts(tmp_path)
    await alerts.on_fallback(virtual(), True)
    try:
        assert await alerts.deliver(alerts.queue.get_nowait())
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert "Subject: [web] Added fallback server" in (tmp_path / "message").read_text()


async def test_a_hung_delivery_is_cut_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silent_port_v4: int, logs_captured: list
) -> None:
    import healthd.alerts

    monkeypatch.setattr(healthd.alerts, "SEND_TIMEOUT", 0.2)
    script = tmp_path / "sendmail"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    by_sendmail = make_alerts(tmp_path)
    await by_sendmail.on_fallback(virtual(), True)
    assert not await by_sendmail.deliver(by_sendmail.queue.get_nowait())
    by_smtp = make_alerts(smtp_port=silent_port_v4)  # accepts and never greets
    await by_smtp.on_fallback(virtual(smtp="127.0.0.1"), True)
    assert not await by_smtp.deliver(by_smtp.queue.get_nowait())
    details = [e["detail"] for e in logs_captured if e["event"] == "hook.failed"]
    assert details[0] == "sendmail: killed after 0.2s"
    assert details[1].startswith("SMTP: ")
    assert details[1] != "SMTP: "


async def test_missing_sendmail_names_the_path(logs_captured: list) -> None:
    alerts = make_alerts()
    await alerts.on_fallback(virtual(), True)
    assert not await alerts.deliver(alerts.queue.get_nowait())
    failed = [e for e in logs_captured if e["event"] == "hook.failed"]
    assert failed[0]["detail"] == "sendmail: /nonexistent/sendmail: No such file or directory"


async def test_unreachable_smtp_is_logged_not_raised(logs_captured: list) -> None:
    from tests.checks.servers import free_port

    alerts = make_alerts(smtp_port=free_port("127.0.0.1"))
    await alerts.on_transition(virtual(smtp="127.0.0.1"), REAL, False, None, "timeout")
    assert not await alerts.deliver(alerts.queue.get_nowait())
    assert [e["detail"].split(":")[0] for e in logs_captured if e["event"] == "hook.failed"] == [
        "SMTP"
    ]


async def test_delivery_is_off_the_checking_path(silent_port_v4: int) -> None:
    # a mail server that accepts and never greets: the listener call still returns at once
    alerts = make_alerts(smtp_port=silent_port_v4)
    async with running(alerts):
        await alerts.on_transition(virtual(smtp="127.0.0.1"), REAL, False, None, "timeout")
        await alerts.on_transition(virtual(smtp="127.0.0.1"), REAL, True, None, "ok")
        await asyncio.sleep(0.05)
        assert alerts.sent == 0
        assert alerts.queue.qsize() == 1  # the first is being delivered, the second waits


async def test_emailalertstatus_filters_by_daemon_state(tmp_path: Path) -> None:
    alerts = make_alerts(tmp_path)
    only_running = virtual(status=frozenset({AlertStatus.RUNNING}))
    await alerts.on_transition(only_running, REAL, False, None, "timeout")  # starting
    assert alerts.queue.qsize() == 0
    await alerts.on_state("running")
    await alerts.on_transition(only_running, REAL, False, None, "timeout")
    await alerts.on_state("stopping")
    await alerts.on_transition(only_running, REAL, True, None, "ok")
    assert alerts.queue.qsize() == 1
    no_recipients = Virtual(Proto.TCP, ip_address("192.0.2.10"), 80)
    await alerts.on_state("running")
    await alerts.on_transition(no_recipients, REAL, False, None, "timeout")
    assert alerts.queue.qsize() == 1


async def test_reminders_follow_emailalertfreq() -> None:
    clock = FakeClock()
    alerts = make_alerts(clock=clock)
    await alerts.on_state("running")
    v = virtual(freq=60)
    await alerts.on_transition(v, REAL, False, None, "timeout")
    subjects = [alerts.queue.get_nowait().subject]
    await clock.advance(59)
    assert alerts.remind() == 0
    await clock.advance(1)
    assert alerts.remind() == 1
    subjects.append(alerts.queue.get_nowait().subject)
    await clock.advance(30)
    assert alerts.remind() == 0
    await alerts.on_transition(v, REAL, True, None, "ok")  # back up: reminders stop
    subjects.append(alerts.queue.get_nowait().subject)
    await clock.advance(3600)
    assert alerts.remind() == 0
    assert subjects == [
        "[web] Quiescent real server: 192.0.2.21:80 (192.0.2.10:80) (Weight set to 0)",
        "[web] Inaccessible real server: 192.0.2.21:80 (192.0.2.10:80)",
        "[web] Restored real server: 192.0.2.21:80 (192.0.2.10:80) (Weight set to 3)",
    ]


async def test_reminder_loop_runs_on_the_clock() -> None:
    clock = FakeClock()
    alerts = make_alerts(clock=clock)
    await alerts.on_transition(virtual(freq=10), REAL, False, None, "timeout")
    alerts.queue.get_nowait()
    remind_task = asyncio.create_task(alerts._remind_loop())
    try:
        await clock.advance(25)
    finally:
        remind_task.cancel()
        await asyncio.gather(remind_task, return_exceptions=True)
    assert alerts.queue.qsize() == 2  # at 10 s and 20 s


async def test_reload_drops_reminders_for_removed_reals() -> None:
    clock = FakeClock()
    alerts = make_alerts(clock=clock)
    kept = virtual(freq=10)
    gone = Real(ip_address("192.0.2.22"), 80)
    await alerts.on_transition(kept, REAL, False, None, "timeout")
    await alerts.on_transition(kept, gone, False, None, "timeout")
    alerts.reconfigure(Config(path="new.cf", virtuals=(kept,)))
    await clock.advance(10)
    assert alerts.remind() == 1
    subjects = [alerts.queue.get_nowait().subject for _ in range(alerts.queue.qsize())]
    assert subjects[-1] == "[web] Inaccessible real server: 192.0.2.21:80 (192.0.2.10:80)"


async def test_zero_frequency_sends_no_reminders() -> None:
    clock = FakeClock()
    alerts = make_alerts(clock=clock)
    await alerts.on_transition(virtual(freq=0), REAL, False, None, "timeout")
    await clock.advance(10_000)
    assert alerts.remind() == 0


async def test_fallback_mail_only_for_virtuals_with_a_fallback() -> None:
    alerts = make_alerts()
    bare = Virtual(Proto.TCP, ip_address("192.0.2.10"), 80, alerts=Alerts(emailalert=RECIPIENTS))
    await alerts.on_fallback(bare, True)
    assert alerts.queue.qsize() == 0
    await alerts.on_fallback(virtual(servicename=None), False)
    assert alerts.queue.get_nowait().subject == (
        "Deleted fallback server: 127.0.0.1:80 (192.0.2.10:80)"
    )


async def test_fwmark_and_ipv6_names() -> None:
    alerts = make_alerts()
    alert = Alerts(emailalert=RECIPIENTS)
    fwm = Virtual(Proto.FWM, None, 0, fwmark=7, alerts=alert)
    v6 = Virtual(Proto.TCP, ip_address("2001:db8::10"), 443, alerts=alert)
    real6 = Real(ip_address("2001:db8::21"), 443)
    await alerts.on_transition(fwm, REAL, False, None, "timeout")
    await alerts.on_transition(v6, real6, False, None, "timeout")
    assert alerts.queue.get_nowait().subject == "Deleted real server: 192.0.2.21:80 (7)"
    assert alerts.queue.get_nowait().subject == (
        "Deleted real server: [2001:db8::21]:443 ([2001:db8::10]:443)"
    )


@pytest.fixture
async def silent_port_v4() -> AsyncIterator[int]:
    """A 127.0.0.1 port whose server accepts and never says a word."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()
