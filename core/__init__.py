"""ChargeLens core: every piece of logic, with no Streamlit in it."""

__version__ = "0.1.0"
