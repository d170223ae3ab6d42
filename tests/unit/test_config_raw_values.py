"""Directives whose value ldirectord takes as the raw rest of the line accept all it does.

emailalertfrom, emailalert, execute, maintenancedir, fallbackcommand, servicename and
comment: quotes are removed only when they enclose the whole value, so a display name
before an address, or a lone quote, is kept as written.
"""

from __future__ import annotations

import pytest

from healthd.config import ConfigErrors, StaticResolver, parse_text

RESOLVER = StaticResolver(services={"http": 80})
BLOCK = "virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate\n"


def _parse(text: str):
    return parse_text(text, "r.cf", resolver=RESOLVER, hostname="director")


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ('"LVS Director" <lvs@example.com>', '"LVS Director" <lvs@example.com>'),
        ("LVS Director <lvs@example.com>", "LVS Director <lvs@example.com>"),
        ('"lvs@example.com"', "lvs@example.com"),
        ("lvs@example.com", "lvs@example.com"),
        ('"O\'Neil, Pat" <pat@example.com>', '"O\'Neil, Pat" <pat@example.com>'),
    ],
)
def test_emailalertfrom_keeps_a_display_name(written: str, read: str) -> None:
    config = _parse(f"emailalertfrom = {written}\n{BLOCK}")
    assert config.emailalertfrom == read


def test_emailalert_recipients_may_carry_display_names_with_commas() -> None:
    config = _parse(
        'emailalert = "Ops, night shift" <ops@example.com>, dev@example.com,Pat <p@example.com>\n'
        + BLOCK
    )
    assert config.virtuals[0].alerts.emailalert == (
        '"Ops, night shift" <ops@example.com>',
        "dev@example.com",
        "Pat <p@example.com>",
    )


def test_a_lone_quote_is_kept_in_raw_values() -> None:
    config = _parse(
        'maintenancedir=/srv/"drain\n'
        'fallbackcommand="/usr/local/bin/fb" --quiet\n'
        "virtual=192.0.2.10:80\n"
        "    real=198.51.100.5:80 gate\n"
        '    servicename=Shop "blue\n'
        '    comment=19" rack, row 4\n'
    )
    (virtual,) = config.virtuals
    assert config.maintenancedir == '/srv/"drain'
    assert virtual.fallbackcommand == '"/usr/local/bin/fb" --quiet'
    assert virtual.servicename == 'Shop "blue'
    assert virtual.comment == '19" rack, row 4'


def test_servicename_and_comment_may_be_empty_as_in_ldirectord() -> None:
    config = _parse(BLOCK + "    servicename=\n    comment=\n")
    assert (config.virtuals[0].servicename or "") == ""
    assert (config.virtuals[0].comment or "") == ""


@pytest.mark.parametrize("key", ["emailalertfrom", "maintenancedir", "execute"])
def test_other_raw_values_must_not_be_empty(key: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        _parse(f"{key}=\n{BLOCK}")
    assert [e.message for e in caught.value.errors] == [f"{key} must not be empty"]


def test_a_lone_quote_elsewhere_is_an_error_at_the_quote() -> None:
    with pytest.raises(ConfigErrors) as caught:
        _parse(BLOCK + '    request="/index.html\n')
    (error,) = caught.value.errors
    assert str(error) == 'r.cf:3:13: error: unterminated string (missing closing ")'


def test_raw_values_with_quotes_survive_render_and_reread() -> None:
    from healthd.config import render_config

    config = _parse(
        'emailalertfrom = "LVS Director" <lvs@example.com>\n'
        'execute=edge"1.cf\n'
        'emailalert="Ops" <ops@example.com>\n'
        'virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate\n    comment=19" rack\n'
    )
    again = _parse(render_config(config))
    assert again.emailalertfrom == config.emailalertfrom
    assert again.execute == config.execute
    assert again.virtuals[0].comment == '19" rack'
    assert again.virtuals[0].alerts.emailalert == ('"Ops" <ops@example.com>',)
