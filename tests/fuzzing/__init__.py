"""Fuzz targets shared by the CI property tests and the long run in scripts/fuzz."""
