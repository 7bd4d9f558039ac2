//! Support for the `p0` binary that tests use too: the in-process stack of `p0 demo`.

pub mod stack;
