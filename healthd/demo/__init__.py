"""`healthd demo`: a newcomer's first run with local backends, a failure and a recovery.

Owns its HTTP backends, a throw-away configuration and the table printout; it drives the
ordinary Daemon and Engine, so what it shows is what the daemon does.
"""
