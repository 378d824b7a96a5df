//! devcloud: see the crate documentation for this layer.
pub mod netns;
