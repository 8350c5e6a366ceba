//! The law: the shipped schema and policies, loaded as the gateway loads them (every policy
//! named by its `@id`), and deliberately broken copies of it for the mutant tests.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema};

/// The schema file beside the policies, as the gateway names it.
pub const SCHEMA_FILE: &str = "samsyn.cedarschema";

#[derive(Debug, thiserror::Error)]
pub enum LawError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("mutant of {policy}: {message}")]
    Mutant { policy: String, message: String },
}

/// A schema and a policy set, with the texts they came from (mutants edit the texts).
#[derive(Debug, Clone)]
pub struct Law {
    schema: Schema,
    policies: PolicySet,
    files: Vec<(String, String)>,
}

impl Law {
    /// The policies the gateway ships: `deploy/policies/` of this repository.
    pub fn shipped() -> Result<Self, LawError> {
        Self::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies"))
    }

    /// `samsyn.cedarschema` and every `*.cedar` file of `dir`, in name order.
    pub fn load(dir: &Path) -> Result<Self, LawError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| LawError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let schema = read(&dir.join(SCHEMA_FILE))?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| LawError::Read {
                path: dir.to_owned(),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "cedar"))
            .collect();
        paths.sort();
        let mut files = vec![(SCHEMA_FILE.to_owned(), schema)];
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, read(&path)?));
        }
        Self::from_files(files)
    }

    /// The schema (first, named [`SCHEMA_FILE`]) and policy files; each policy is named by its
    /// `@id`, as the gateway names it.
    fn from_files(files: Vec<(String, String)>) -> Result<Self, LawError> {
        let invalid = |file: &str, message: String| LawError::Invalid {
            file: file.to_owned(),
            message,
        };
        let mut schema = None;
        let mut policies = PolicySet::new();
        for (file, text) in &files {
            if file == SCHEMA_FILE {
                let (parsed, _warnings) =
                    Schema::from_cedarschema_str(text).map_err(|e| invalid(file, e.to_string()))?;
                schema = Some(parsed);
                continue;
            }
            let parsed = PolicySet::from_str(text).map_err(|e| invalid(file, e.to_string()))?;
            for policy in parsed.policies() {
                let id = policy
                    .annotation("id")
                    .ok_or_else(|| invalid(file, "a policy without @id".into()))?;
                policies
                    .add(policy.new_id(PolicyId::new(id)))
                    .map_err(|_| invalid(file, format!("@id {id} used twice")))?;
            }
        }
        let schema = schema.ok_or_else(|| invalid(SCHEMA_FILE, "no schema".into()))?;
        Ok(Self {
            schema,
            policies,
            files,
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The permits, in id order.
    pub fn permits(&self) -> Vec<&Policy> {
        let mut permits: Vec<&Policy> = self
            .policies
            .policies()
            .filter(|p| p.effect() == Effect::Permit)
            .collect();
        permits.sort_by_key(|p| p.id().to_string());
        permits
    }

    /// The forbids.
    pub fn forbids(&self) -> Vec<&Policy> {
        self.policies
            .policies()
            .filter(|p| p.effect() == Effect::Forbid)
            .collect()
    }

    /// The policies with `@flag(flag)`.
    pub fn flagged(&self, flag: &str) -> Vec<&Policy> {
        self.policies
            .policies()
            .filter(|p| p.annotation("flag") == Some(flag))
            .collect()
    }

    /// A mutant: `from` replaced by `to` in the policy `@id(policy)`. `from` must occur in
    /// that policy exactly once, so that a mutant cannot silently stop mutating when the
    /// policy is rewritten.
    pub fn mutant(&self, policy: &str, from: &str, to: &str) -> Result<Self, LawError> {
        let fail = |message: String| LawError::Mutant {
            policy: policy.to_owned(),
            message,
        };
        let marker = format!("@id(\"{policy}\")");
        let mut files = self.files.clone();
        let (_, text) = files
            .iter_mut()
            .find(|(_, text)| text.contains(&marker))
            .ok_or_else(|| fail("no such policy".into()))?;
        let start = text.find(&marker).unwrap_or_default();
        // A policy ends at its closing `};` (no policy here has `;` inside a string).
        let end = text[start..]
            .find("};")
            .map(|i| start + i + 2)
            .ok_or_else(|| fail("no end of policy".into()))?;
        let body = &text[start..end];
        if body.matches(from).count() != 1 {
            return Err(fail(format!("{from:?} does not occur exactly once")));
        }
        let mutated = body.replacen(from, to, 1);
        text.replace_range(start..end, &mutated);
        Self::from_files(files)
    }

    /// A mutant: the law with one more policy file.
    pub fn with_policy(&self, text: &str) -> Result<Self, LawError> {
        let mut files = self.files.clone();
        files.push(("mutant.cedar".to_owned(), text.to_owned()));
        Self::from_files(files)
    }
}
