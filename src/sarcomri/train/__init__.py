"""Training: the fit loop (checkpoint, resume, early stopping, progress) and grids of jobs."""
