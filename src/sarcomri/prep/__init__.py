"""Preparation of images for learning: ADC from DWI, slice selection, intensity normalisation, cropping."""
