//! End-to-end: the real `mamori` binary, started as an operator would start it.
//!
//! - `basics`: first start, the demo and `--no-demo`, admin commands, config checks,
//!   signals, component-only nodes, PostgreSQL.
//! - `https`: HTTPS on all addresses with the self-signed certificate, on PostgreSQL,
//!   with a login and a remote probe; a configured certificate renewed on SIGHUP.
//! - `hardening`: slowloris and connection floods against the real binary.
//! - `proxy`: behind a real nginx reverse proxy, client addresses from `X-Forwarded-For`.
//! - `cluster`: component config checked at start, root given up after binding, the
//!   singleton monitor on two nodes sharing PostgreSQL and its failover.
//! - `events`: events posted through the API while the server is killed: every
//!   acknowledged one is searchable after the restart, none twice.
//! - `forwarding`: a RELP destination to a real rsyslog gets every acknowledged event
//!   across a kill of the server.
//! - `split`: split nodes over NATS JetStream (intake and indexing nodes, PostgreSQL):
//!   events posted to one are searchable on the other; killing the indexer loses nothing.
//! - `accounts`: a maintenance vendor made by the CLI, refused once its account expired.
//! - `vault`: secrets never leave as text (logs, audit, API, files, `mamori init`); the
//!   master key file, a wrong key refused at start, rotation.

mod accounts;
mod basics;
mod cluster;
mod events;
mod forwarding;
mod hardening;
mod https;
mod proxy;
mod split;
mod support;
mod vault;
