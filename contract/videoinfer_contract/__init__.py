"""What the Video Inference API's clients and servers share, free of Airflow and of any I/O.

- :mod:`~videoinfer_contract.errors`: the error raised for invalid input;
- :mod:`~videoinfer_contract.validation`: every check of user input, run by the provider before
  its calls and by the local server on the requests it receives, with the same messages;
- :mod:`~videoinfer_contract.jobs`: a job request (models, sampling rate, input) and a job's status;
- :mod:`~videoinfer_contract.results`: the result file's schema, written by the local server and
  read by the provider;
- :mod:`~videoinfer_contract.redaction`: keeping the API key out of text and logs.
"""

from __future__ import annotations
