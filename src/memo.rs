//! Values computed once per command and key, shared by every caller: concurrent callers wait
//! for the first one's answer, later ones get a clone of it. Preflight's calls, the engine's
//! clients and cluster identities, and its listings are kept this way.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// One value per key, each computed once.
pub struct OnceMap<K, T> {
    cells: Mutex<HashMap<K, Arc<OnceCell<T>>>>,
}

impl<K, T> Default for OnceMap<K, T> {
    fn default() -> Self {
        OnceMap {
            cells: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash, T: Clone> OnceMap<K, T> {
    /// `compute`'s value for `key`, computed once (awaited only if no caller has yet).
    pub async fn once(&self, key: K, compute: impl Future<Output = T>) -> T {
        let cell = self
            .cells
            .lock()
            .expect("memo lock")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| compute).await.clone()
    }
}
