"""Tests for healthd.config.lexer: lines, comments, quotes, indentation; never crashes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from healthd.config.lexer import Blank, Directive, lex, split_lines, strip_comment, unquoted_hash


def directives(text: str) -> list[Directive]:
    return [i for i in lex(text, "t.cf").items if isinstance(i, Directive)]


def test_key_value_with_blanks_around_equals():
    (d,) = directives("checktimeout  =  5\n")
    assert (d.key, d.value, d.indented) == ("checktimeout", "5", False)
    assert (d.loc.line, d.loc.col, d.loc.length, d.value_col) == (1, 1, 12, 18)


def test_indented_by_tab_or_four_spaces():
    items = directives("virtual=1.2.3.4:80\n\treal=a gate\n    real=b gate\n")
    assert [d.indented for d in items] == [False, True, True]
    assert items[1].loc.col == 2
    assert items[2].value_col == 10


def test_comment_lines_are_skipped_and_blank_lines_kept():
    lexed = lex("# c\n\n   # indented comment\nfork=no\n", "t.cf")
    assert isinstance(lexed.items[0], Blank)
    assert len(lexed.items) == 2
    assert lexed.diagnostics == []


def test_trailing_comment_after_blank_is_cut():
    (d,) = directives("quiescent=yes   # keep weight 0\n")
    assert d.value == "yes"


def test_hash_inside_quotes_or_words_is_kept():
    assert strip_comment('"/a#b" # c') == ('"/a#b"', None)
    assert strip_comment("ab#c") == ("ab#c", None)
    assert strip_comment("#all") == ("", None)


def test_unquoted_hash_is_found_outside_quotes_only():
    assert unquoted_hash('"/a#b"') is None
    assert unquoted_hash("/opt/check#2") == 10
    assert unquoted_hash('"a#b", "c"#d') == 10


def test_hash_glued_to_a_value_stays_in_the_value():
    # the parser rejects it in a virtual block (test_config_errors.py); globally it is kept
    assert [d.value for d in directives("callback=/bin/cb#1\n    servicename=Shop#1\n")] == [
        "/bin/cb#1",
        "Shop#1",
    ]


def test_unterminated_quote_is_kept_for_the_parser():
    # the parser reports it, except for directives that take the raw rest of the line
    lexed = lex('    request="/index.html\n', "t.cf")
    assert lexed.diagnostics == []
    (d,) = lexed.items
    assert isinstance(d, Directive)
    assert (d.value, d.open_quote) == ('"/index.html', 0)


def test_bare_word_has_no_value():
    (d,) = directives("supervised\n")
    assert d.value is None


def test_empty_value_is_empty_string():
    (d,) = directives("logfile=\n")
    assert d.value == ""


def test_short_indentation_is_an_error():
    (diag,) = lex("  real=1.2.3.4 gate\n", "t.cf").diagnostics
    assert str(diag).startswith("t.cf:1:1: error: indentation of 2 spaces")


def test_missing_equals_and_bad_start():
    diags = lex("checktimeout 5\n=5\n", "t.cf").diagnostics
    assert [str(d) for d in diags] == [
        "t.cf:1:14: error: expected '=' after 'checktimeout'",
        "t.cf:2:1: error: expected a directive name, found '='",
    ]


def test_crlf_line_endings():
    assert split_lines("a=1\r\nb=2\r\n") == ["a=1", "b=2"]
    assert [d.value for d in directives("a=1\r\nb=2\r\n")] == ["1", "2"]


@settings(deadline=None)
@given(st.text())
def test_lexer_never_crashes(text: str):
    lexed = lex(text, "fuzz.cf")
    for item in lexed.items:
        if isinstance(item, Directive):
            assert 1 <= item.line <= len(lexed.lines)
            assert item.value_col >= item.loc.col
    for diag in lexed.diagnostics:
        assert diag.loc is not None
        assert 1 <= diag.loc.line <= len(lexed.lines)


@settings(deadline=None)
@given(
    st.lists(st.sampled_from(["virtual=1:80", "\treal=x gate", "", "# c", "a = 'b' # c", '  x="y']))
)
def test_lexer_never_crashes_on_config_like_lines(lines: list[str]):
    lexed = lex("\n".join(lines), "fuzz.cf")
    assert len(lexed.lines) <= len(lines)
