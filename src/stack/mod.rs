//! Stack files: the TOML schema of docs/design.md §1, parsed and validated with every error located
//! (file, line, column, key). No I/O beyond reading the file itself.

mod diagnostic;
mod parse;
mod schema;
mod source;
pub mod units;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use parse::{
    DEFAULT_STATE_NAMESPACE, DerivedName, RESERVED_NAMESPACES, derived_names, load,
    load_with_bytes, parse_str,
};
pub use schema::*;
pub use source::{MAX_STACK_FILE_BYTES, file_kind};
pub use units::{KubeRayVersion, Quantity};
