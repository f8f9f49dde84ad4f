"""Reading and writing images, DICOM and cohort files."""
