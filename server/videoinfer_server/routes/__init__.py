"""The local server's HTTP routes, as FastAPI routers.

- :mod:`.contract`: the hosted Video Inference API (``/``, ``/video_upload_signed_url``,
  ``/videoinfer``) and the signed upload and result URLs it hands out;
- :mod:`.local`: what only the local server has (``/models``, ``/_jobs``, and ``/_faults`` when
  fault injection is enabled);
- :mod:`.common`: authentication, error answers and request helpers shared by both.
"""
