"""Roboflow Batch Processing on the local server: Data Staging batches and Workflow jobs on staged videos.

A sibling of the Video Inference API's code, sharing its authentication, URL signing, model
registry, frame sampling, fault injection and settings; what differs lives here:

- :mod:`.store`: batches, their files, ingests, jobs, stages, tasks and logs in SQLite;
- :mod:`.workflows`: which built-in models a Workflow id runs;
- :mod:`.runner`: a job's run: one task per video (rows per sampled frame), then the export archive,
  the cumulative runtime cap, abort and restart;
- :mod:`.ingest`: fetching the videos of reference ingests (``bulk-upload/video-references``);
- :mod:`.service`: what the routes call, owning the above;
- :mod:`.staging_routes` and :mod:`.job_routes`: the two path families of the contract
  (:mod:`videoinfer_contract.batch`).
"""

from __future__ import annotations
