//! Stack → desired Kubernetes objects (DESIGN §4), in apply order. Pure: no cluster, no cloud.
//! (Interface fixed here; implementation to be written.)

mod object;
pub use object::{Desired, Rendered};
