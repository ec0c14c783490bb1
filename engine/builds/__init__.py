"""Builds of the compiled runtimes (Go, Rust): finding the toolchains, laying out a function's sources
beside Nimbus's generated wrapper (wrappers/), compiling in a throwaway jail, caching artifacts by hash,
and the Build records with their logs (service.py)."""
