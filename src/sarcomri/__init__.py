"""sarcomri: deep learning on MRI of rare tumours (uterine sarcoma, carcinosarcoma, soft-tissue sarcoma)."""

__version__ = "0.1.0"
