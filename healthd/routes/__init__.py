"""Route announcement: the VIP's host route (or address) while its virtual carries traffic.

plan.py decides (pure), rtnl.py talks rtnetlink (the one pyroute2 import, loaded lazily),
announcer.py is the daemon's plugin that joins them.
"""
