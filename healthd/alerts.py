"""E-mail alerts (emailalert): ldirectord's subjects and body, sent off the checking path.

An engine listener turns real and fallback changes into mails, keeps the emailalertfreq
reminders, and filters by emailalertstatus. Delivery runs in `run()` from a queue, so a slow
mail server never delays a check: over SMTP when `smtp=` is set, else `sendmail -t`. A
failure is logged, never raised. Unlike ldirectord, every listed recipient gets the mail.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
from dataclasses import dataclass
from typing import Final

from checks.base import Result, host_text
from healthd import logs
from healthd.clock import Clock, SystemClock
from healthd.hooks import run_command
from healthd.model import AlertStatus, Config, Proto, Real, Virtual
from healthd.plugins import Plugin

log = logs.get_logger("healthd.alerts")

SENDMAIL: Final = "/usr/sbin/sendmail"
SEND_TIMEOUT: Final = 60.0  # seconds one delivery may take
REMIND_TICK: Final = 1.0  # seconds between reminder scans (ldirectord: once per loop)
QUEUE_LIMIT: Final = 1000  # mails waiting; beyond that new ones are dropped and logged


@dataclass(frozen=True, slots=True)
class Mail:
    """One alert, ready to send."""

    recipients: tuple[str, ...]
    subject: str  # with the [servicename] prefix
    body: str
    smtp: str | None  # relay host; None: sendmail

    def render(self, sender: str | None) -> str:
        """Return the message as ldirectord writes it: [From,] To, Subject, blank line, body."""
        head = f"From: {sender}\n" if sender else ""
        to = ", ".join(self.recipients)
        return f"{head}To: {to}\nSubject: {self.subject}\n\n{self.body}"


def virtual_str(virtual: Virtual) -> str:
    """Return the virtual as ldirectord names it in alerts: `vip:vport`, or the fwmark."""
    if virtual.proto is Proto.FWM:
        return str(virtual.fwmark)
    assert virtual.address is not None
    return f"{host_text(virtual.address)}:{virtual.port}"


def fallback_str(virtual: Virtual) -> str:
    """Return the fallback server as `ip:port` (IPv6 in brackets)."""
    assert virtual.fallback is not None
    return f"{host_text(virtual.fallback.address)}:{virtual.fallback.port}"


def transition_subject(virtual: Virtual, real: Real, up: bool) -> str:
    """Return ldirectord's log message for a real going up or down (the mail's subject)."""
    where = f"{real.endpoint} ({virtual_str(virtual)})"
    if up:
        verb = "Restored" if virtual.quiescent else "Added"
        return f"{verb} real server: {where} (Weight set to {real.weight})"
    if virtual.quiescent:
        return f"Quiescent real server: {where} (Weight set to 0)"
    return f"Deleted real server: {where}"


def fallback_subject(virtual: Virtual, active: bool) -> str:
    """Return ldirectord's log message for the fallback server going in or out."""
    where = f"{fallback_str(virtual)} ({virtual_str(virtual)})"
    if active:
        return f"Added fallback server: {where} (Weight set to 1)"
    return f"Deleted fallback server: {where}"


def body(hostname: str, subject: str, status: str, virtual: Virtual) -> str:
    """Return the mail body exactly as ldirectord writes it."""
    text = f"ldirectord host: {hostname}\nLog-Message: {subject}\nDaemon-Status: {status}\n"
    extra = ""
    if virtual.servicename:
        extra += f"Service name: {virtual.servicename}\n"
    if virtual.comment:
        extra += f"Comment: {virtual.comment}\n"
    return text + (f"\n{extra}\n" if extra else "")


def local_user() -> str:
    """Return the name of the user healthd runs as (ldirectord: getpwuid($<))."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass(slots=True)
class _Reminder:
    virtual: Virtual
    real: Real
    last: float  # clock time of the last mail about this real


class EmailAlerts(Plugin):
    """Engine listener that mails real and fallback changes (emailalert and friends)."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        hostname: str | None = None,
        user: str | None = None,
        sendmail: str = SENDMAIL,
        smtp_port: int = 25,
        autostart: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.hostname = hostname or socket.gethostname()
        self.user = user or local_user()
        self.sendmail = sendmail
        self.smtp_port = smtp_port
        self.state = str(AlertStatus.STARTING)
        self.queue: asyncio.Queue[Mail] = asyncio.Queue(QUEUE_LIMIT)
        self._reminders: dict[str, _Reminder] = {}
        self.sent = 0  # mails handed to the transport successfully
        self.autostart = autostart  # start run() in the background at the first event
        self._running = False
        self._worker: asyncio.Task[None] | None = None

    def reconfigure(self, config: Config) -> None:
        """Use a reloaded configuration; stop reminding about reals it no longer has."""
        self.config = config
        keep = {
            f"{real.endpoint} ({virtual_str(virtual)})"
            for virtual in config.virtuals
            for real in virtual.reals
        }
        for key in set(self._reminders) - keep:
            del self._reminders[key]

    @property
    def sender(self) -> str:
        """Return the envelope sender: user@hostname."""
        return f"{self.user}@{self.hostname}"

    # --- listener -------------------------------------------------------------------

    async def on_transition(
        self, virtual: Virtual, real: Real, up: bool, result: Result | None, reason: str
    ) -> None:
        """Mail a real's change and start or stop its reminders."""
        self._ensure_running()
        key = f"{real.endpoint} ({virtual_str(virtual)})"
        # ldirectord: a down event with frequency != 0 arms the reminder; anything else clears it
        if not up and virtual.alerts.emailalertfreq:
            self._reminders[key] = _Reminder(virtual, real, self.clock.monotonic())
        else:
            self._reminders.pop(key, None)
        self.alert(virtual, transition_subject(virtual, real, up))

    async def on_fallback(self, virtual: Virtual, active: bool) -> None:
        """Mail the fallback server going in or out (virtuals with a fallback only)."""
        self._ensure_running()
        if virtual.fallback is not None:
            self.alert(virtual, fallback_subject(virtual, active))

    async def on_state(self, state: str) -> None:
        """Track the daemon state for emailalertstatus and the Daemon-Status line."""
        self.state = str(state)

    # --- queueing -------------------------------------------------------------------

    def alert(self, virtual: Virtual, message: str) -> bool:
        """Queue a mail about `virtual` if its settings allow one now; return whether queued."""
        settings = virtual.alerts
        if not settings.emailalert or self.state not in settings.emailalertstatus:
            return False
        subject = f"[{virtual.servicename}] {message}" if virtual.servicename else message
        mail = Mail(
            settings.emailalert,
            subject,
            body(self.hostname, subject, self.state, virtual),
            settings.smtp,
        )
        try:
            self.queue.put_nowait(mail)
        except asyncio.QueueFull:
            log.warning(logs.HOOK_FAILED, hook="emailalert", detail="queue full", subject=message)
            return False
        log.info(logs.HOOK_RAN, hook="emailalert", subject=message)  # ldirectord: "emailalert: …"
        return True

    def remind(self) -> int:
        """Queue `Inaccessible real server` mails that are due; return how many were due."""
        now = self.clock.monotonic()
        due = 0
        for key, reminder in self._reminders.items():
            freq = reminder.virtual.alerts.emailalertfreq
            if freq and now - reminder.last >= freq:
                reminder.last = now
                due += 1
                self.alert(reminder.virtual, f"Inaccessible real server: {key}")
        return due

    # --- delivery -------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver queued mails and send reminders until cancelled."""
        self._running = True
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._remind_loop())
                while True:
                    mail = await self.queue.get()
                    await self.deliver(mail)
                    self.queue.task_done()
        finally:
            self._running = False

    def _ensure_running(self) -> None:
        # A daemon may run() us in its TaskGroup; if nobody does, deliver in a task we own.
        if self.autostart and not self._running and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self.run(), name="emailalerts")

    async def aclose(self, grace: float = 5.0) -> None:
        """Deliver what is still queued within `grace`, then stop the background worker."""
        try:
            async with asyncio.timeout(grace):
                if self._running:
                    await self.queue.join()  # the worker (ours or the daemon's) drains it
                else:
                    await self.flush()
        except TimeoutError:
            log.warning(logs.HOOK_FAILED, hook="emailalert", detail="unsent at shutdown")
        finally:
            if self._worker is not None:
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
                self._worker = None

    async def _remind_loop(self) -> None:
        while True:
            await self.clock.sleep(REMIND_TICK)
            self.remind()

    async def flush(self) -> None:
        """Deliver every queued mail now (used at shutdown, bounded by the caller)."""
        while not self.queue.empty():
            await self.deliver(self.queue.get_nowait())
            self.queue.task_done()

    async def deliver(self, mail: Mail) -> bool:
        """Send one mail; log and return False on failure."""
        # ldirectord: over SMTP From is emailalertfrom or user@host; sendmail (Mail::Send)
        # gets a From header only with emailalertfrom and fills in the rest itself
        sender = self.config.emailalertfrom or (self.sender if mail.smtp else None)
        message = mail.render(sender)
        try:
            if mail.smtp:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await asyncio.to_thread(self._smtp_send, mail, message)
            else:
                await self._sendmail(message)  # bounded by run_command, which kills at the end
        except (OSError, DeliveryError) as exc:  # smtplib.SMTPException is an OSError
            how = "SMTP" if mail.smtp else "sendmail"
            why = str(exc) or f"no answer within {SEND_TIMEOUT:g}s"  # a TimeoutError is blank
            log.warning(logs.HOOK_FAILED, hook="emailalert", detail=f"{how}: {why}")
            return False
        self.sent += 1
        return True

    def _smtp_send(self, mail: Mail, message: str) -> None:
        import smtplib  # the e-mail stack loads only when a mail goes out by SMTP

        assert mail.smtp is not None
        with smtplib.SMTP(mail.smtp, self.smtp_port, timeout=SEND_TIMEOUT) as smtp:
            # every recipient gets its own RCPT (ldirectord sends one for the whole list)
            wire = message.replace("\n", "\r\n").encode("utf-8")  # SMTP lines end in CRLF
            refused = smtp.sendmail(self.sender, list(mail.recipients), wire)
        if refused:
            raise DeliveryError(f"recipients refused: {', '.join(sorted(refused))}")

    async def _sendmail(self, message: str) -> None:
        # a hook run: own session, killed with its group at the timeout, stderr's first line
        result = await run_command(
            [self.sendmail, "-t", "-oi"], limit=SEND_TIMEOUT, stdin=message.encode()
        )
        if not result.ok:
            where = f"{self.sendmail}: " if result.reason == "exec_failed" else ""
            raise DeliveryError(where + result.detail)


class DeliveryError(Exception):
    """A mail transport reported failure."""
