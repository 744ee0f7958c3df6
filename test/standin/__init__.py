"""The stand-in MongoDB server used by qleaf_fdw's tests (see DESIGN.md)."""
