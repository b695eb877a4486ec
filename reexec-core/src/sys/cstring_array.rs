//! `argv` and `envp` as execve(2) takes them.
//!
//! Built by the parent, before the clone; the child only hands the pointer to execve.

use std::ffi::{CString, c_char};
use std::ptr;

/// An owned array of C strings ended by a NULL pointer, as execve(2) wants `argv` and
/// `envp`: the terminator is the type's to keep, so no caller can forget it.
///
/// Each pointer points into a `CString` the array owns. Moving a `CString` into `items`
/// leaves its bytes where they are, on the heap, so the pointers stay valid for as long
/// as the array lives and is not pushed to.
pub(crate) struct CStringArray {
    items: Vec<CString>,
    /// A pointer to each of `items`, in order, then NULL: always one longer than `items`.
    pointers: Vec<*const c_char>,
}

impl CStringArray {
    /// An empty array — only the NULL — with room for `capacity` strings.
    pub(crate) fn with_capacity(capacity: usize) -> CStringArray {
        let mut pointers = Vec::with_capacity(capacity + 1);
        pointers.push(ptr::null());
        CStringArray {
            items: Vec::with_capacity(capacity),
            pointers,
        }
    }

    /// Adds `item` at the end, before the NULL.
    pub(crate) fn push(&mut self, item: CString) {
        let last = self.pointers.len() - 1;
        self.pointers[last] = item.as_ptr();
        self.pointers.push(ptr::null());
        self.items.push(item);
    }

    /// The strings, in order.
    pub(crate) fn strings(&self) -> impl ExactSizeIterator<Item = &std::ffi::CStr> {
        self.items.iter().map(CString::as_c_str)
    }

    /// The NULL-terminated array of pointers, valid while `self` is neither dropped nor
    /// pushed to.
    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

impl FromIterator<CString> for CStringArray {
    fn from_iter<I: IntoIterator<Item = CString>>(items: I) -> CStringArray {
        let items = items.into_iter();
        let mut array = CStringArray::with_capacity(items.size_hint().0);
        for item in items {
            array.push(item);
        }
        array
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    /// The strings `array` points at, read as execve would: up to the NULL.
    fn read(array: &CStringArray) -> Vec<&CStr> {
        let mut strings = Vec::new();
        let mut at = array.as_ptr();
        // SAFETY: the array ends with NULL, and every pointer before it is to a string
        // `array` owns and keeps alive while borrowed.
        unsafe {
            while !(*at).is_null() {
                strings.push(CStr::from_ptr(*at));
                at = at.add(1);
            }
        }
        strings
    }

    #[test]
    fn the_array_is_null_terminated_however_it_grows() {
        assert!(read(&CStringArray::with_capacity(0)).is_empty());
        // Past its capacity, so that the pointers move; the strings do not.
        let mut array = CStringArray::with_capacity(1);
        for word in [c"a", c"bc", c"", c"def"] {
            array.push(word.to_owned());
        }
        assert_eq!(read(&array), [c"a", c"bc", c"", c"def"]);
        let collected: CStringArray = [c"x", c"y"].map(CString::from).into_iter().collect();
        assert_eq!(read(&collected), [c"x", c"y"]);
    }
}
