//! The parts of the Mamori binary that tests reach too: which components this build
//! knows ([`components::registry`]), so the tests of the assembled site (every
//! component's pages and API in one console) walk exactly what `mamori serve` serves.

pub mod components;
