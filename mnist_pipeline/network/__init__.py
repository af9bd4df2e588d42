"""The network: built from params (model.py), saved and loaded as a .keras archive (archive.py)."""
