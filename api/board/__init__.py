"""The web board: incidents in a browser, decided by people whose role allows it (see routes.py)."""
