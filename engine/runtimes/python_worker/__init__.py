"""Scripts of the Python runtime that run outside the app: the zygote (fork server), the worker shim and the
sandbox primitives they share. All stdlib-only: the zygote runs them in a separate `python -I`, and
engine/sandbox.py imports `jail` for detection."""
