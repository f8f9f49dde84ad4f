"""`sarcomri synth`: placeholder until the synthetic cohort lands."""


def synth() -> None:
    """(being built)"""
    raise SystemExit("not built yet")
