//! Embedded event store (being written).
