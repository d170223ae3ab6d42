"""Access to the kernel's IPVS table: value types, the driver protocol and its drivers."""
