//! pynto runtime. TODO
