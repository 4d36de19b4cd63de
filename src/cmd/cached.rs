//! A value and what was prepared from it, kept apart so that no change to the value can
//! leave a stale preparation behind: reads go through `Deref`, and the only way to change
//! the value, [`Cached::edit`], drops the prepared part. (There is no `DerefMut`.)

use std::ops::Deref;

/// `spec` and, once built, what was prepared from it.
#[derive(Clone)]
pub(super) struct Cached<S, P> {
    spec: S,
    prepared: Option<P>,
}

impl<S, P> Cached<S, P> {
    pub(super) fn new(spec: S) -> Cached<S, P> {
        Cached {
            spec,
            prepared: None,
        }
    }

    /// The value, for a change: what was prepared from it is dropped.
    pub(super) fn edit(&mut self) -> &mut S {
        self.prepared = None;
        &mut self.spec
    }

    /// What was prepared, if it still holds.
    pub(super) fn prepared_mut(&mut self) -> Option<&mut P> {
        self.prepared.as_mut()
    }

    /// What was prepared, built by `build` first when nothing is.
    pub(super) fn prepare<E>(
        &mut self,
        build: impl FnOnce(&S) -> Result<P, E>,
    ) -> Result<&mut P, E> {
        if self.prepared.is_none() {
            self.prepared = Some(build(&self.spec)?);
        }
        Ok(self.prepared.as_mut().expect("prepared above"))
    }
}

impl<S, P> Deref for Cached<S, P> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_drops_what_was_prepared() {
        let mut c: Cached<Vec<u8>, usize> = Cached::new(vec![1, 2]);
        let built = |v: &Vec<u8>| Ok::<_, ()>(v.len());
        assert_eq!(*c.prepare(built).unwrap(), 2);
        assert_eq!(c.prepared_mut().copied(), Some(2));
        c.edit().push(3);
        assert_eq!(c.prepared_mut(), None);
        assert_eq!(*c.prepare(built).unwrap(), 3);
        assert_eq!(c.len(), 3); // reads through Deref keep it
        assert_eq!(c.prepared_mut().copied(), Some(3));
        assert!(!c.edit().is_empty() && c.prepared_mut().is_none());
        assert_eq!(
            c.prepare(|_| Err::<usize, _>("refused")).unwrap_err(),
            "refused"
        );
        assert_eq!(c.prepared_mut(), None);
    }
}
