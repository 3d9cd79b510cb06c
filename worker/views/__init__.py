"""The researcher's pages of the worker app, one module per concern: ``datasets`` (data
sets and their imports), ``runs`` (model runs: list, detail, progress, launch, cancel,
compare), ``uploads`` (a run made elsewhere) and ``images`` (thumbnails and a run's
colourised images). Views are thin: reads come from ``worker.selectors``, writes from
``worker.services``; a GET never writes."""
