"""Hospital integration: studies pulled from a PACS (DICOMweb or DIMSE) into a de-identified cohort, and results
pushed back (docs/hospital.md).

* :mod:`sarcomri.pacs.address`: ``dicomweb+http://HOST/dicom-web`` and ``dimse://AET@HOST:PORT`` addresses;
* :mod:`sarcomri.pacs.retry`: retries with back-off, and the one error a failed exchange ends with;
* :mod:`sarcomri.pacs.dicomweb` / :mod:`sarcomri.pacs.dimse`: the two protocols behind one interface
  (:class:`sarcomri.pacs.model.Pacs`);
* :mod:`sarcomri.pacs.query`: which studies (UIDs, accession numbers, dates, patient pseudonyms);
* :mod:`sarcomri.pacs.staging`: each instance de-identified as it arrives, kept until the cohort is written;
* :mod:`sarcomri.pacs.pull`: a cohort from a PACS, resumable.
"""
