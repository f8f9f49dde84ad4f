"""The cohort: patients, labels and MRI series on disk (the contract every stage reads)."""

from sarcomri.cohort.manifest import SCHEMA_VERSION, Cohort

__all__ = ["Cohort", "SCHEMA_VERSION"]
