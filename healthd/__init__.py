"""healthd: a health-checking controller for Linux Virtual Server.

This module only carries the version; everything else lives in submodules.
"""

__version__ = "0.1.0.dev0"
