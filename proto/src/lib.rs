//! Samsyn's gRPC contract: the code generated from `proto/samsyn/**.proto`, the descriptor set
//! (for reflection and for the gateway), the access table read from its annotations, and the
//! checked ids every service and the gateway share ([`ids`]).

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("samsyn.common.v1");
        }
    }
    pub mod participants {
        pub mod v1 {
            tonic::include_proto!("samsyn.participants.v1");
        }
    }
    pub mod consent {
        pub mod v1 {
            tonic::include_proto!("samsyn.consent.v1");
        }
    }
    pub mod plans {
        pub mod v1 {
            tonic::include_proto!("samsyn.plans.v1");
        }
    }
    pub mod board {
        pub mod v1 {
            tonic::include_proto!("samsyn.board.v1");
        }
    }
    pub mod kit {
        pub mod v1 {
            tonic::include_proto!("samsyn.kit.v1");
        }
    }
    pub mod audit {
        pub mod v1 {
            tonic::include_proto!("samsyn.audit.v1");
        }
    }
    pub mod reports {
        pub mod v1 {
            tonic::include_proto!("samsyn.reports.v1");
        }
    }
}

pub use generated::{audit, board, common, consent, kit, participants, plans, reports};

mod access_check;
pub mod ids;

use std::collections::HashMap;

use common::v1::{Action, DataCategory};

pub use access_check::{ACCESS_EXTENSION, MethodAccess, read_access_table};

/// The encoded `FileDescriptorSet` of every Samsyn `.proto`, imports included.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/samsyn_descriptor.bin"));

impl MethodAccess {
    /// Whether the call reads or writes.
    pub fn action(&self) -> Action {
        Action::try_from(self.action).unwrap_or_default()
    }

    /// The data category the call touches.
    pub fn category(&self) -> DataCategory {
        DataCategory::try_from(self.category).unwrap_or_default()
    }
}

/// Every annotated RPC by its gRPC path; what the gateway consults to describe a call.
#[derive(Debug, Clone)]
pub struct AccessTable {
    by_path: HashMap<String, MethodAccess>,
}

/// A descriptor set whose RPCs do not all carry a valid access annotation.
#[derive(Debug, thiserror::Error)]
#[error("access annotations are missing or wrong: {}", .problems.join("; "))]
pub struct AccessTableError {
    /// One line per problem, naming the RPC.
    pub problems: Vec<String>,
}

impl AccessTable {
    /// Reads the table from an encoded descriptor set.
    pub fn from_descriptor_set(descriptor_set: &[u8]) -> Result<Self, AccessTableError> {
        let methods =
            read_access_table(descriptor_set).map_err(|problems| AccessTableError { problems })?;
        Ok(Self {
            by_path: methods.into_iter().map(|m| (m.path.clone(), m)).collect(),
        })
    }

    /// The table of Samsyn's own contract.
    pub fn samsyn() -> Result<Self, AccessTableError> {
        Self::from_descriptor_set(FILE_DESCRIPTOR_SET)
    }

    /// The annotation of one RPC by its gRPC path; `None` means the gateway refuses the call.
    pub fn get(&self, path: &str) -> Option<&MethodAccess> {
        self.by_path.get(path)
    }

    /// Every annotated RPC.
    pub fn iter(&self) -> impl Iterator<Item = &MethodAccess> {
        self.by_path.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Compiles a `.proto` text (with Samsyn's protos on the include path) into a descriptor set.
    fn descriptor_set_of(proto_text: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fixture.proto");
        std::fs::write(&file, proto_text).unwrap();
        let out = dir.path().join("fixture.bin");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = std::process::Command::new(protoc_bin_vendored::protoc_bin_path().unwrap())
            .arg("--include_imports")
            .arg(format!("--descriptor_set_out={}", out.display()))
            .arg(format!("-I{}", root.display()))
            .arg(format!(
                "-I{}",
                protoc_bin_vendored::include_path().unwrap().display()
            ))
            .arg(format!("-I{}", dir.path().display()))
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success(), "protoc failed on the fixture");
        std::fs::read(out).unwrap()
    }

    const HEADER: &str = r#"
syntax = "proto3";
package samsyn.fixture.v1;
import "samsyn/common/v1/access.proto";
import "samsyn/common/v1/common.proto";
message GetRequest { samsyn.common.v1.ParticipantId participant_id = 1; string note = 2; }
message Row { string participant_id = 1; }
message ListResponse { repeated Row rows = 1; }
"#;

    #[test]
    fn every_samsyn_rpc_is_annotated() {
        let table = AccessTable::samsyn().unwrap();
        for service in ["participants", "consent", "plans", "board"] {
            let path = format!(
                "/samsyn.{service}.v1.{}Service/WatchChanges",
                service[..1].to_uppercase() + &service[1..]
            );
            let access = table.get(&path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!(access.action(), Action::Read);
            assert_eq!(access.category(), DataCategory::ChangeFeed);
            assert!(access.internal_only);
        }
    }

    #[test]
    fn an_rpc_without_the_annotation_is_refused_by_name() {
        let set = descriptor_set_of(&format!(
            "{HEADER}
service FixtureService {{
  rpc Annotated(GetRequest) returns (Row) {{
    option (samsyn.common.v1.access) = {{ action: ACTION_READ category: DATA_CATEGORY_PLAN participant_field: \"participant_id\" }};
  }}
  rpc Forgotten(GetRequest) returns (Row);
}}"
        ));
        let err = AccessTable::from_descriptor_set(&set).unwrap_err();
        assert_eq!(
            err.problems,
            vec![format!(
                "rpc /samsyn.fixture.v1.FixtureService/Forgotten lacks the ({ACCESS_EXTENSION}) option"
            )]
        );
    }

    #[test]
    fn field_paths_are_checked_against_the_messages() {
        let set = descriptor_set_of(&format!(
            "{HEADER}
service FixtureService {{
  rpc Typo(GetRequest) returns (Row) {{
    option (samsyn.common.v1.access) = {{ action: ACTION_READ category: DATA_CATEGORY_PLAN participant_field: \"participant\" }};
  }}
  rpc NoCategory(GetRequest) returns (Row) {{
    option (samsyn.common.v1.access) = {{ action: ACTION_WRITE }};
  }}
  rpc List(GetRequest) returns (ListResponse) {{
    option (samsyn.common.v1.access) = {{ action: ACTION_READ category: DATA_CATEGORY_BOARD narrowed_list: true rows_field: \"rows\" row_participant_field: \"participant_id\" }};
  }}
  rpc BadList(GetRequest) returns (ListResponse) {{
    option (samsyn.common.v1.access) = {{ action: ACTION_READ category: DATA_CATEGORY_BOARD narrowed_list: true rows_field: \"rows.participant_id\" }};
  }}
}}"
        ));
        let problems = AccessTable::from_descriptor_set(&set).unwrap_err().problems;
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("Typo") && problems[0].contains("has no field 'participant'"));
        assert!(problems[1].contains("NoCategory") && problems[1].contains("category"));
        assert!(problems[2].contains("BadList") && problems[2].contains("rows_field"));
    }
}
