"""checktype=external-perl: run a Perl check file as ldirectord would, in a child `perl`.

ldirectord evals the file inside the daemon (`sub { @ARGV=@_; <file> }`, cached until a
restart). healthd runs the same wrapping in a fresh `perl` per check: the same arguments and
exit meaning, but a crash or a hang cannot take the daemon with it, and edits apply at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from checks import _process
from checks.base import CheckContext, Result, Target

PERL: Final = "perl"
DIED: Final = 255  # the wrapper's exit status when the file dies (or does not compile)

# ldirectord: exit(n) ends the check with result n (0 = up); die = down; falling off the end
# = up. The file runs under `use strict` and -w, as inside ldirectord, and is compiled in a
# sub with no lexicals in view. exit codes are folded so that any non-zero value stays
# non-zero (exit 256 would otherwise become 0).
WRAPPER: Final = r"""
use strict;
BEGIN {
    *CORE::GLOBAL::exit = sub {
        my $code = @_ ? shift : 0;
        $code = 0 unless defined $code;
        CORE::exit($code == 0 ? 0 : (($code & 255) || 1));
    };
}
sub healthd_compile { return eval("sub { \@ARGV=\@_; " . $_[0] . "\n}"); }
my $file = shift @ARGV;
my $fh;
if (!open($fh, "<", $file)) {
    print STDERR "cannot open external-perl checkcommand file: $file: $!\n";
    CORE::exit(255);
}
my $source = do { local $/; <$fh> };
close($fh);
my $check = healthd_compile($source);
if (!$check) { print STDERR $@; CORE::exit(255); }
eval { $check->(@ARGV); 1 } or do { print STDERR $@; CORE::exit(255) };
CORE::exit(0);
"""


@dataclass(frozen=True, slots=True)
class ExternalPerlCheck:
    """Up when the Perl file exits 0 or returns; down when it exits non-zero or dies."""

    kind: ClassVar[str] = "external-perl"
    path: str
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from `checkcommand`, the path of the Perl file."""
        return cls(path=_process.checkcommand(options, cls.kind), timeout=ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Run the file once in its own process group, killed with its children on timeout."""
        argv = [PERL, "-w", "-e", WRAPPER, "--", self.path, *_process.arguments(target)]
        return await _process.run(argv, self.timeout, self.path)
