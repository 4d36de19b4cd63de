//! argv/envp as NUL-terminated pointer arrays, built once and reused for every spawn.

use std::ffi::{CStr, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;

use libc::c_char;

use crate::error::{Error, Result};

/// A NULL-terminated array of NUL-terminated C strings, as `execve` takes for `argv` and
/// `envp`. All strings live in one buffer; the pointer array is built once, so handing it to
/// a spawn costs nothing.
///
/// # Examples
/// ```
/// use forkexec::raw::CStringArray;
/// let argv = CStringArray::new(["echo", "hello"])?;
/// assert_eq!(argv.len(), 2);
/// assert_eq!(argv.iter().map(|s| s.to_str().unwrap()).collect::<Vec<_>>(), ["echo", "hello"]);
/// # Ok::<(), forkexec::Error>(())
/// ```
pub struct CStringArray {
    /// Owns the storage every pointer points into.
    _storage: Vec<u8>,
    ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into `bytes`, which the array owns and never mutates after
// construction; sharing or sending the array is as safe as sharing a `Vec<u8>`.
unsafe impl Send for CStringArray {}
// SAFETY: see above; no interior mutability.
unsafe impl Sync for CStringArray {}

impl CStringArray {
    /// Builds an argv-style array from strings.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when a string holds a NUL
    /// byte (the error names its index).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{ErrorKind, raw::CStringArray};
    /// assert_eq!(CStringArray::new(["ok", "no\0pe"]).unwrap_err().kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn new<I, S>(items: I) -> Result<CStringArray>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut b = Builder::default();
        for (i, s) in items.into_iter().enumerate() {
            b.push_arg(i, s.as_ref().as_bytes())?;
        }
        Ok(b.finish())
    }

    /// The argv `first`, then `rest`, sized before it is filled: two allocations in all.
    pub(crate) fn from_argv(first: &OsStr, rest: &[OsString]) -> Result<CStringArray> {
        let len = rest.iter().map(|s| s.len() + 1).sum::<usize>() + first.len() + 1;
        let mut b = Builder {
            bytes: Vec::with_capacity(len),
            starts: Vec::with_capacity(rest.len() + 2),
        };
        b.push_arg(0, first.as_bytes())?;
        for (i, s) in rest.iter().enumerate() {
            b.push_arg(i + 1, s.as_bytes())?;
        }
        Ok(b.finish())
    }

    /// Builds an envp-style array of `KEY=VALUE` strings from pairs, in order (no dedup:
    /// see [`merge_env`] for Go's last-wins rule).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when a key is empty or
    /// holds `=` or a NUL byte, or a value holds a NUL byte.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::CStringArray;
    /// let env = CStringArray::from_env([("A", "1"), ("B", "x=y")])?;
    /// assert_eq!(env.iter().map(|s| s.to_str().unwrap()).collect::<Vec<_>>(), ["A=1", "B=x=y"]);
    /// assert!(CStringArray::from_env([("A=B", "1")]).is_err());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn from_env<I, K, V>(pairs: I) -> Result<CStringArray>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut b = Builder::default();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref().as_bytes(), v.as_ref().as_bytes());
            check_env_key(k)?;
            if memchr::memchr(0, v).is_some() {
                return Err(Error::invalid(format!(
                    "environment value of {:?} contains a NUL byte",
                    String::from_utf8_lossy(k)
                )));
            }
            b.push(&[k, b"=", v]);
        }
        Ok(b.finish())
    }

    /// The number of strings (the terminating NULL not counted).
    ///
    /// # Examples
    /// ```
    /// let argv = forkexec::raw::CStringArray::new(["ls", "-l"])?;
    /// assert_eq!(argv.len(), 2);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.ptrs.len() - 1
    }

    /// Whether the array holds no string.
    ///
    /// # Examples
    /// ```
    /// use forkexec::raw::CStringArray;
    /// assert!(CStringArray::new::<_, &str>([])?.is_empty());
    /// assert!(!CStringArray::new([""])?.is_empty()); // one empty string
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strings, in order.
    ///
    /// # Examples
    /// ```
    /// let env = forkexec::raw::CStringArray::from_env([("A", "1"), ("B", "")])?;
    /// assert_eq!(env.iter().collect::<Vec<_>>(), [c"A=1", c"B="]);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &CStr> + '_ {
        self.ptrs[..self.len()].iter().map(|&p| {
            // SAFETY: every pointer but the last points at a NUL-terminated string in `bytes`.
            unsafe { CStr::from_ptr(p) }
        })
    }

    /// The NULL-terminated pointer array, valid as long as `self` is.
    ///
    /// # Examples
    /// ```
    /// use std::ffi::CStr;
    /// let argv = forkexec::raw::CStringArray::new(["a", "b"])?;
    /// // SAFETY: the array holds `len()` string pointers then a NULL, alive with `argv`.
    /// unsafe {
    ///     assert_eq!(CStr::from_ptr(*argv.as_ptr().add(1)), c"b");
    ///     assert!((*argv.as_ptr().add(argv.len())).is_null());
    /// }
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

impl fmt::Debug for CStringArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Clone for CStringArray {
    fn clone(&self) -> CStringArray {
        let mut b = Builder::default();
        for s in self.iter() {
            b.push(&[s.to_bytes()]);
        }
        b.finish()
    }
}

#[derive(Default)]
struct Builder {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl Builder {
    /// Appends argument `i`, refusing a NUL byte in it.
    fn push_arg(&mut self, i: usize, s: &[u8]) -> Result<()> {
        if memchr::memchr(0, s).is_some() {
            return Err(Error::invalid(format!(
                "argument {i} contains a NUL byte: {:?}",
                String::from_utf8_lossy(s)
            )));
        }
        self.push(&[s]);
        Ok(())
    }

    fn push(&mut self, parts: &[&[u8]]) {
        self.starts.push(self.bytes.len());
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        self.bytes.push(0);
    }

    fn finish(self) -> CStringArray {
        let Builder { bytes, mut starts } = self;
        let base = bytes.as_ptr();
        // The place of the NULL; the offsets become the pointers in the same allocation
        // (same size and alignment: collected in place).
        starts.push(usize::MAX);
        let ptrs: Vec<*const c_char> = starts
            .into_iter()
            .map(|s| {
                if s == usize::MAX {
                    std::ptr::null()
                } else {
                    // SAFETY: every start is an offset inside `bytes`; `bytes` is not
                    // touched again, so the heap buffer (and these pointers) stay put when
                    // the Vec is moved.
                    unsafe { base.add(s) }.cast::<c_char>()
                }
            })
            .collect();
        CStringArray {
            _storage: bytes,
            ptrs,
        }
    }
}

/// Checks an environment key: not empty, no `=`, no NUL byte.
pub(crate) fn check_env_key(k: &[u8]) -> Result<()> {
    if k.is_empty() {
        return Err(Error::invalid("empty environment variable name"));
    }
    if let Some(c) = k.iter().find(|&&c| c == b'=' || c == 0) {
        let what = if *c == 0 { "a NUL byte" } else { "'='" };
        return Err(Error::invalid(format!(
            "environment variable name {:?} contains {what}",
            String::from_utf8_lossy(k)
        )));
    }
    Ok(())
}

/// Go's environment rule: applies `KEY=VALUE` entries in order; a later entry of a key
/// replaces the earlier one and takes the later position (as Go's `dedupEnv`), and a `None`
/// value removes the key.
/// Entries of `base` without `=` are dropped (as `execve` would see them as garbage).
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an override key that is
/// empty or holds `=` or NUL, or a value holding NUL.
///
/// # Examples
/// ```
/// use std::ffi::OsString;
/// use forkexec::raw::merge_env;
/// let base = vec![OsString::from("A=1"), OsString::from("B=2"), OsString::from("A=3")];
/// let merged = merge_env(base, [("B", Some("9")), ("C", Some("4")), ("A", None)])?;
/// assert_eq!(merged, vec![("B".into(), "9".into()), ("C".into(), "4".into())]);
/// # Ok::<(), forkexec::Error>(())
/// ```
pub fn merge_env<B, I, K, V>(base: B, overrides: I) -> Result<Vec<(OsString, OsString)>>
where
    B: IntoIterator<Item = OsString>,
    I: IntoIterator<Item = (K, Option<V>)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut out: Vec<(OsString, OsString)> = Vec::new();
    let set = |out: &mut Vec<(OsString, OsString)>, k: &OsStr, v: Option<&OsStr>| match (
        out.iter().position(|(ek, _)| ek == k),
        v,
    ) {
        (Some(i), Some(v)) => {
            out.remove(i);
            out.push((k.to_owned(), v.to_owned()));
        }
        (Some(i), None) => {
            out.remove(i);
        }
        (None, Some(v)) => out.push((k.to_owned(), v.to_owned())),
        (None, None) => {}
    };
    for entry in base {
        let b = entry.as_bytes();
        // A leading '=' belongs to the name (as on Windows-style "=C:" entries); Go does this too.
        let Some(eq) = b.iter().skip(1).position(|&c| c == b'=').map(|p| p + 1) else {
            continue;
        };
        let (k, v) = (OsStr::from_bytes(&b[..eq]), OsStr::from_bytes(&b[eq + 1..]));
        set(&mut out, k, Some(v));
    }
    for (k, v) in overrides {
        let k = k.as_ref();
        check_env_key(k.as_bytes())?;
        if let Some(v) = &v {
            if memchr::memchr(0, v.as_ref().as_bytes()).is_some() {
                return Err(Error::invalid(format!(
                    "environment value of {k:?} contains a NUL byte"
                )));
            }
        }
        set(&mut out, k, v.as_ref().map(|v| v.as_ref()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_survive_move() {
        let a = CStringArray::new(["x", "yy", ""]).unwrap();
        let b = a;
        let v: Vec<_> = b.iter().map(|s| s.to_bytes().to_vec()).collect();
        assert_eq!(v, [b"x".to_vec(), b"yy".to_vec(), b"".to_vec()]);
        // SAFETY: index len is the terminating NULL.
        assert!(unsafe { *b.as_ptr().add(3) }.is_null());
    }
}
