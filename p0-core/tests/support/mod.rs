//! What the core's test binaries share. Each binary uses a part of it.
#![allow(dead_code)]

pub mod cases;
pub mod grant_pg;
pub mod trials;
