//! The Python binding of pynto. Not yet built; see the Python package issue.
