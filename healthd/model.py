"""The typed, frozen configuration model: what an ldirectord.cf means once read.

Every effective value is filled in (defaults, global to virtual inheritance, the timeout
cross-fallback), so consumers never look at the global section again. No I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Final, NewType

from checks.base import host_text
from healthd.location import Location

IPAddress = IPv4Address | IPv6Address


class Proto(enum.StrEnum):
    """Protocol of a virtual service; FWM is a firewall-mark service."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"  # healthd extension: ldirectord knows only tcp, udp and fwm
    FWM = "fwm"


class Forward(enum.StrEnum):
    """Forwarding method in ldirectord's words: gate (direct routing), masq (NAT), ipip."""

    GATE = "gate"
    MASQ = "masq"
    IPIP = "ipip"


class CheckType(enum.StrEnum):
    """ldirectord's checktype values; COMBINED is `checktype=N`."""

    NEGOTIATE = "negotiate"
    CONNECT = "connect"
    PING = "ping"
    EXTERNAL = "external"
    EXTERNAL_PERL = "external-perl"
    ON = "on"
    OFF = "off"
    COMBINED = "combined"


# ldirectord's service= value (the protocol a negotiate check speaks): a name checks.KINDS
# registers as a service, or NO_SERVICE. The config reader validates it against the registry,
# so adding a check kind needs no edit here.
ServiceName = NewType("ServiceName", str)
NO_SERVICE: Final = ServiceName("none")


class AlertStatus(enum.StrEnum):
    """Daemon states in which e-mail alerts are sent (emailalertstatus)."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RELOADING = "reloading"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How the reals of one virtual are checked, with every effective value resolved."""

    checktype: CheckType = CheckType.NEGOTIATE
    service: ServiceName = NO_SERVICE
    combined_every: int = 0  # N of checktype=N: negotiate every N-th round, connect in between
    checkport: int | None = None  # None: the real's port, else the service's default port
    request: str = "/"
    receive: str = ""
    httpmethod: str = "GET"
    virtualhost: str | None = None
    login: str = ""
    passwd: str = ""
    database: str = ""
    secret: str = ""
    checkcommand: str = "/bin/true"
    checktimeout: float = 5.0  # effective: connect, ping, external (§4.4 cross-fallback applied)
    negotiatetimeout: float = 30.0  # effective: negotiate checks
    checkcount: int = 1  # deprecated; ping attempts
    # healthd extensions for TLS services (ldirectord verifies the chain, not the hostname)
    tls_verify: bool = False
    tls_cafile: str | None = None
    tls_hostname: str | None = None


@dataclass(frozen=True, slots=True)
class Real:
    """One real server of a virtual (a `real=` range expands to one Real per address)."""

    address: IPAddress
    port: int  # 0 when omitted (fwmark virtuals)
    forward: Forward = Forward.GATE
    weight: int = 1
    request: str | None = None  # per-real override of the virtual's request
    receive: str | None = None  # per-real override of the virtual's receive
    lower: int = 0  # l: lower connection threshold (0 = none)
    upper: int = 0  # u: upper connection threshold (0 = none)
    loc: Location | None = field(default=None, compare=False)

    @property
    def endpoint(self) -> str:
        """Return `ip:port`, IPv6 in brackets, as logs and ipvsadm show it."""
        return f"{host_text(self.address)}:{self.port}"


@dataclass(frozen=True, slots=True)
class Fallback:
    """The server that stands in while no real of a virtual is up (always weight 1)."""

    address: IPAddress
    port: int
    forward: Forward = Forward.GATE
    loc: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Alerts:
    """E-mail alert settings of one virtual (effective values)."""

    emailalert: tuple[str, ...] = ()  # recipients; empty: off
    emailalertfreq: int = 0  # seconds between reminders while a real stays down; 0: never
    emailalertstatus: frozenset[AlertStatus] = frozenset(AlertStatus)
    smtp: str | None = None  # relay host; None: the local sendmail


@dataclass(frozen=True, slots=True)
class Announce:
    """How a virtual's address is announced while it has a real up (healthd extension).

    Exactly one of `table` (a host route in that routing table, for a routing daemon to
    export) and `interface` (the address itself on that interface) is set.
    """

    table: int | None = None
    interface: str | None = None
    fallback: bool = False  # the fallback alone keeps the announcement


class SyncRole(enum.StrEnum):
    """A role of the kernel's IPVS connection sync daemon."""

    MASTER = "master"
    BACKUP = "backup"


@dataclass(frozen=True, slots=True)
class Syncd:
    """The kernel's IPVS sync daemon as configured (healthd extension): roles, link, id."""

    roles: frozenset[SyncRole]
    interface: str
    syncid: int = 0


@dataclass(frozen=True, slots=True)
class Virtual:
    """One virtual service with its reals, check and every effective setting."""

    proto: Proto
    address: IPAddress | None  # None for firewall-mark services
    port: int  # 0 for firewall-mark services
    fwmark: int = 0
    family: int = 4  # 4 or 6 (virtual6= sets 6, also for fwmark)
    scheduler: str = "wrr"
    persistent: int | None = None  # persistence timeout in seconds
    netmask: str | None = None  # IPv4 dotted mask, or an IPv6 prefix length as text
    ops: bool = False  # one-packet scheduling (udp only)
    schedflags: tuple[str, ...] = ()
    reals: tuple[Real, ...] = ()
    check: CheckSpec = field(default_factory=CheckSpec)
    checkinterval: float = 10.0
    failurecount: int = 1
    rise: int = 1  # healthd extension: consecutive successes before a down real returns
    quiescent: bool = False  # ldirectord: the code's default is no (the manual says yes)
    cleanstop: bool = True
    fallback: Fallback | None = None
    fallbackcommand: str | None = None
    alerts: Alerts = field(default_factory=Alerts)
    monitorfile: str | None = None
    servicename: str | None = None
    comment: str | None = None
    announce: Announce | None = None  # healthd extension: route or address while up
    loc: Location | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """Return the id used in logs: `tcp/192.0.2.10:80`, `tcp/[2001:db8::1]:80`, `fwm/5`."""
        if self.proto is Proto.FWM:
            return f"fwm{'6' if self.family == 6 else ''}/{self.fwmark}"
        assert self.address is not None
        return f"{self.proto}/{host_text(self.address)}:{self.port}"


@dataclass(frozen=True, slots=True)
class Config:
    """A whole configuration: global settings and the virtual services in file order."""

    path: str
    virtuals: tuple[Virtual, ...] = ()
    checkinterval: float = 10.0
    autoreload: bool = False
    callback: str | None = None
    logfile: str = "/var/log/ldirectord.log"
    execute: tuple[str, ...] = ()
    fork: bool = False
    supervised: bool = False
    readdquiescent: bool = False
    emailalertfrom: str | None = None
    maintenancedir: str | None = None
    # healthd extensions
    resync_interval: float = 30.0  # seconds between full table reconciliations
    max_in_flight: int = 256  # checks running at once
    http_listen: tuple[IPAddress, int] | None = None  # metrics, status page and API; None: off
    state_file: str | None = None  # runtime overrides; None: STATE_DIR/<config name>.state.json
    syncd: Syncd | None = None  # the kernel's connection sync daemon; None: left alone
    command_user: str | None = None  # checks' and hooks' user; None: nobody under root
