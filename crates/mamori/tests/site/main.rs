//! The assembled site: the console with every component's web part, as `mamori serve`
//! builds it, driven in-process on SQLite and PostgreSQL.

mod isolation;
mod layering;
mod monitoring;
