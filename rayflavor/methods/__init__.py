"""See the package docstring of rayflavor."""
