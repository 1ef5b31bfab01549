//! Stack file parsing and validation (being written).
use std::path::Path;

use super::{Diagnostic, Diagnostics, Stack};

/// Reads and validates a stack file.
pub fn load(path: &Path) -> Result<Stack, Diagnostics> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse_str(path, &text),
            Err(_) => Err(Diagnostics(vec![])),
        },
        Err(_) => Err(Diagnostics(vec![])),
    }
}

/// Parses stack text as if read from `path` (which places the default state file).
pub fn parse_str(path: &Path, _text: &str) -> Result<Stack, Diagnostics> {
    Err(Diagnostics(vec![Diagnostic { file: path.into(), line: 0, column: 0, key: String::new(), message: "not implemented".into(), help: None }]))
}
