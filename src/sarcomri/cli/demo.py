"""`sarcomri demo`: placeholder."""


def demo() -> None:
    """(being built)"""
    raise SystemExit("not built yet")
