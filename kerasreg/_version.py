"""The package version, in one place: `kerasreg.__version__`, `kerasreg --version`, manifests and pyproject.toml."""

__version__ = "0.3.0"
