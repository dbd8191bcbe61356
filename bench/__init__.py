"""SEE benchmarks: ``python -m bench [name [options]]``; each ``bench/<name>.py`` is one, ``_*`` modules are helpers."""
