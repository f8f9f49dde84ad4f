"""`sarcomri ingest`: placeholder until ingestion lands."""


def ingest() -> None:
    """(being built)"""
    raise SystemExit("not built yet")
