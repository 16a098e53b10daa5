"""What the Video Inference API's clients and servers share, free of Airflow and of any I/O.

- :mod:`~videoinfer_contract.errors`: the errors raised for invalid input and for answers that break
  the contract;
- :mod:`~videoinfer_contract.validation`: every check of user input, run by the provider before
  its calls and by the local server on the requests it receives, with the same messages;
- :mod:`~videoinfer_contract.jobs`: a job request (models, sampling rate, input) and a job's status;
- :mod:`~videoinfer_contract.results`: the result file's schema, written by the local server and
  read by the provider;
- :mod:`~videoinfer_contract.redaction`: keeping the API key out of text and logs;
- :mod:`~videoinfer_contract.batch`: Roboflow Batch Processing (the second service): its endpoints,
  the ids a client chooses, the video job body and its validation, typed answers and job states.
"""

from __future__ import annotations
