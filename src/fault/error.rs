//! Every way a fault rule, inline spec, rules file, preset name or admin update is refused.

use thiserror::Error;

use super::rule::Rule;
use super::validate::RuleError;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FaultError {
    /// A rules file did not parse or a rule in it is invalid. `field` is the key the
    /// problem sits at (`probability`, `latency.jitter`) when it could be told.
    #[error("{file}:{line}:{column}: {message}")]
    Toml {
        file: String,
        line: usize,
        column: usize,
        field: Option<String>,
        message: String,
    },

    /// A JSON rule body (admin API) did not parse or is invalid.
    #[error("invalid fault rules at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },

    #[error("invalid fault spec `{spec}`: {message}")]
    Spec { spec: String, message: String },

    /// A rule built in code, or handed to the engine, failed validation.
    #[error("fault rule {rule}: {message}")]
    Rule {
        /// `'name'`, or `#N` (position from 1) for an unnamed rule.
        rule: String,
        field: Option<String>,
        message: String,
    },

    #[error("two fault rules are named '{0}'; rule names must be unique")]
    DuplicateName(String),

    #[error("no fault rule named '{0}'")]
    UnknownRule(String),

    #[error("unknown fault preset `{name}`; valid presets: {valid}")]
    UnknownPreset { name: String, valid: String },
}

impl FaultError {
    pub(crate) fn from_rule(rule: &Rule, err: RuleError) -> FaultError {
        FaultError::Rule {
            rule: rule.label(),
            field: err.field,
            message: err.message,
        }
    }
}
