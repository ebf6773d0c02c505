"""`vljepa serve`: an HTTP API and a web page over one loaded model, for a video library and long streams.

Ours (the paper serves nothing): FastAPI on uvicorn, one model per process, loaded once. Modules:
  settings:  every limit and knob, typed, with the defaults the command line shows;
  limits:    what a request may ask for: upload size, video content checked by decoding, duration and
             decoded size, paths inside the allowed roots (symlinks resolved), the bearer token;
  uploads:   a bounded store of uploaded videos (each gets an id the page plays and asks about);
  batching:  the single model thread; concurrent predictions gathered into one batch;
  jobs:      stream captioning jobs (selective decoding, online segmenter) and their live events;
  app:       the routes, JSON errors, the static page.
The command itself (its options, loading the model, uvicorn) is `vljepa.cli.serve`.
Why one model thread: a CPU forward pass already uses every core, so running requests side by side
only splits them; gathering concurrent requests into one batch amortises the per-call overhead
instead. Video decoding (PyAV) runs in request threads beside it.
"""
