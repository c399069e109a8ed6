//! Every way a fault rule, inline spec, rules file, preset name or admin update is refused.

use std::fmt;

use thiserror::Error;

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

/// Why one rule was refused, before it is placed in a file, spec or engine;
/// `field` is the dotted key (`latency.jitter`) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: Option<String>,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(field: Option<String>, message: impl Into<String>) -> Self {
        RuleError {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError::new(Some(field.into()), message)
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}
