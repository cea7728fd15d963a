"""``vipcore bench``: benchmarks that write JSON with device, versions and load."""
