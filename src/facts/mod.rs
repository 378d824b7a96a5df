//! facts: see the crate documentation for this layer.
