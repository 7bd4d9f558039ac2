//! Examples live in `examples/*.rs`; this crate only hosts them.
