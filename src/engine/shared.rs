//! `SharedVec`: a vector whose elements a snapshot capture shares instead of copying.
//!
//! Each element is behind an `Arc`. Cloning the vector (what `Engine::capture` does) copies one
//! pointer per element; writing through `IndexMut` copies that one element first only
//! if a capture still holds it (`Arc::make_mut`), and otherwise costs a reference-count check.
//! A deep copy of the agents was a fresh allocation the size of the whole roster, which the kernel
//! faults in page by page on the engine task (docs/BENCHMARKS.md, "HTTP, second pass").
//!
//! Serialized exactly like `Vec<T>` (serde's `rc` feature), so the snapshot format is unchanged.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct SharedVec<T>(Vec<Arc<T>>);

impl<T> Default for SharedVec<T> {
    fn default() -> Self {
        SharedVec(Vec::new())
    }
}

impl<T: Clone> SharedVec<T> {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn push(&mut self, value: T) {
        self.0.push(Arc::new(value));
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.0.get(i).map(|a| &**a)
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &T> + DoubleEndedIterator {
        self.0.iter().map(|a| &**a)
    }
}

impl<T> Index<usize> for SharedVec<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.0[i]
    }
}

impl<T: Clone> IndexMut<usize> for SharedVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        Arc::make_mut(&mut self.0[i])
    }
}

impl<'a, T> IntoIterator for &'a SharedVec<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, Arc<T>>, fn(&'a Arc<T>) -> &'a T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|a| &**a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_shares_until_one_side_writes_and_then_they_differ() {
        let mut v = SharedVec::default();
        v.push(vec![1]);
        v.push(vec![2]);
        let capture = v.clone();
        assert!(Arc::ptr_eq(&v.0[0], &capture.0[0]));
        v[0].push(10);
        // The writer got its own copy of element 0; element 1 is still shared.
        assert_eq!(capture[0], vec![1]);
        assert_eq!(v[0], vec![1, 10]);
        assert!(!Arc::ptr_eq(&v.0[0], &capture.0[0]));
        assert!(Arc::ptr_eq(&v.0[1], &capture.0[1]));
        // Once the capture is gone, writes no longer copy.
        drop(capture);
        let before = Arc::as_ptr(&v.0[1]);
        v[1].push(20);
        assert_eq!(Arc::as_ptr(&v.0[1]), before);
    }

    #[test]
    fn it_serializes_like_a_plain_vector() {
        let mut v = SharedVec::default();
        v.push("a".to_string());
        v.push("b".to_string());
        let shared = rmp_serde::to_vec(&v).unwrap();
        let plain = rmp_serde::to_vec(&vec!["a".to_string(), "b".to_string()]).unwrap();
        assert_eq!(shared, plain);
        let back: SharedVec<String> = rmp_serde::from_slice(&plain).unwrap();
        assert_eq!(back.iter().cloned().collect::<Vec<_>>(), ["a", "b"]);
    }
}
