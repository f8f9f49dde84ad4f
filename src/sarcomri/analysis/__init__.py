"""Multi-sequence analysis: per-sequence votes, summed scores, thresholds, and the combination search."""
