"""Implementation modules of vipcore. Import from :mod:`vipcore` instead."""
