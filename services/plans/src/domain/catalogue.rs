//! The intervention catalogue of both principals.

use serde::{Deserialize, Serialize};

use super::values::{CatalogueCode, Text};

/// Which principal owns a catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Principal {
    /// The region (health care).
    Region,
    /// The municipality (social services).
    Municipality,
}

impl Principal {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Region => "region",
            Self::Municipality => "municipality",
        }
    }

    /// The principal of a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "region" => Some(Self::Region),
            "municipality" => Some(Self::Municipality),
            _ => None,
        }
    }
}

/// One kind of intervention a principal offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// Stable code.
    pub code: CatalogueCode,
    /// Owning principal.
    pub principal: Principal,
    /// The name staff see (Swedish).
    pub name: Text,
    /// Offered for new interventions.
    pub active: bool,
}
