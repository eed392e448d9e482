//! Typed identifiers. All are UUIDs (v7 for new records, so they sort by creation time)
//! kept as text in the stores.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Returns a new, time-ordered identifier (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "format": "uuid"})
            }
        }
    };
}

id_type!(
    /// Identifies a tenant: the prefecture or one member organization.
    TenantId
);
id_type!(
    /// Identifies a person's account.
    UserId
);
id_type!(
    /// Identifies an API token.
    TokenId
);
id_type!(
    /// Identifies a service monitor.
    MonitorId
);
id_type!(
    /// Identifies a fault record (障害記録).
    FaultId
);
id_type!(
    /// Identifies a remote monitoring probe.
    ProbeId
);
id_type!(
    /// Identifies a test notification (the monitor sends it to a tenant's targets).
    NotifyTestId
);
id_type!(
    /// Identifies an event. UUID v7: the first 48 bits are the event's time in ms,
    /// which tells the event store the day partition of an id.
    EventId
);

impl EventId {
    /// Returns an id whose embedded time is `time_ms` (the event's own time), so the
    /// id alone locates the event's day partition.
    pub fn at(time_ms: i64) -> Self {
        let ms = time_ms.max(0) as u64;
        let random: u128 = Uuid::new_v4().as_u128();
        let mut bytes = random.to_be_bytes();
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        // Version 7 and RFC 4122 variant bits.
        bytes[6] = (bytes[6] & 0x0f) | 0x70;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(Uuid::from_bytes(bytes))
    }

    /// Returns the time in ms embedded in this id.
    pub fn time_ms(&self) -> i64 {
        let b = self.0.as_bytes();
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&b[..6]);
        u64::from_be_bytes(ms) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_carries_its_time() {
        let id = EventId::at(1_763_800_000_123);
        assert_eq!(id.time_ms(), 1_763_800_000_123);
        assert_eq!(id.0.get_version_num(), 7);
        assert_ne!(EventId::at(5), EventId::at(5));
    }
}
