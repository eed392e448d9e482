//! Console and REST API behavior, in-process, on SQLite and PostgreSQL.
//!
//! One test binary (fewer links on 2 cores); each module is one concern.

mod support {
    pub use mamori_console::testing::*;
}

mod accounts;
mod auth_flows;
mod bad_input;
mod holds;
mod pages;
