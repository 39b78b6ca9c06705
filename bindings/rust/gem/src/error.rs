//! Status codes, the error type and the small conversions every wrapper needs.
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_void};
use std::path::Path;

use gem_sys as sys;

/// `gem_status_t` of a failed call. `Other` keeps a code appended by a newer library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    InvalidArgument,
    InvalidInput,
    Io,
    NoMemory,
    NotSupported,
    NoDevice,
    Device,
    OutOfRange,
    ShapeMismatch,
    Infeasible,
    Limit,
    Incomplete,
    Version,
    Internal,
    Cancelled,
    Other(i32),
}

impl Status {
    /// The status of a C code (never called with GEM_OK).
    pub fn from_raw(code: sys::gem_status_t) -> Status {
        match code {
            sys::GEM_ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::GEM_ERR_INVALID_INPUT => Status::InvalidInput,
            sys::GEM_ERR_IO => Status::Io,
            sys::GEM_ERR_NO_MEMORY => Status::NoMemory,
            sys::GEM_ERR_NOT_SUPPORTED => Status::NotSupported,
            sys::GEM_ERR_NO_DEVICE => Status::NoDevice,
            sys::GEM_ERR_DEVICE => Status::Device,
            sys::GEM_ERR_OUT_OF_RANGE => Status::OutOfRange,
            sys::GEM_ERR_SHAPE_MISMATCH => Status::ShapeMismatch,
            sys::GEM_ERR_INFEASIBLE => Status::Infeasible,
            sys::GEM_ERR_LIMIT => Status::Limit,
            sys::GEM_ERR_INCOMPLETE => Status::Incomplete,
            sys::GEM_ERR_VERSION => Status::Version,
            sys::GEM_ERR_INTERNAL => Status::Internal,
            sys::GEM_ERR_CANCELLED => Status::Cancelled,
            other => Status::Other(other),
        }
    }

    /// The C code.
    pub fn code(self) -> sys::gem_status_t {
        match self {
            Status::InvalidArgument => sys::GEM_ERR_INVALID_ARGUMENT,
            Status::InvalidInput => sys::GEM_ERR_INVALID_INPUT,
            Status::Io => sys::GEM_ERR_IO,
            Status::NoMemory => sys::GEM_ERR_NO_MEMORY,
            Status::NotSupported => sys::GEM_ERR_NOT_SUPPORTED,
            Status::NoDevice => sys::GEM_ERR_NO_DEVICE,
            Status::Device => sys::GEM_ERR_DEVICE,
            Status::OutOfRange => sys::GEM_ERR_OUT_OF_RANGE,
            Status::ShapeMismatch => sys::GEM_ERR_SHAPE_MISMATCH,
            Status::Infeasible => sys::GEM_ERR_INFEASIBLE,
            Status::Limit => sys::GEM_ERR_LIMIT,
            Status::Incomplete => sys::GEM_ERR_INCOMPLETE,
            Status::Version => sys::GEM_ERR_VERSION,
            Status::Internal => sys::GEM_ERR_INTERNAL,
            Status::Cancelled => sys::GEM_ERR_CANCELLED,
            Status::Other(code) => code,
        }
    }

    /// The library's short description ("invalid input").
    pub fn description(self) -> String {
        // SAFETY: gem_status_string never returns NULL and its strings are static.
        unsafe { from_c_static(sys::gem_status_string(self.code())) }
    }
}

/// A failed libgem call: its status and gem_last_error()'s explanation (what and where).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// The error of a call that just returned `code`, with this thread's last message.
    pub(crate) fn last(code: sys::gem_status_t) -> Error {
        Error { status: Status::from_raw(code), message: last_error() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{} [{:?}]", self.status.description(), self.status)
        } else {
            write!(f, "{} [{:?}]", self.message, self.status)
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Message of the last failed libgem call on this thread ("" if none).
pub fn last_error() -> String {
    // SAFETY: gem_last_error never returns NULL; the text lives until the next call.
    unsafe { from_c_static(sys::gem_last_error()) }
}

pub(crate) fn check(code: sys::gem_status_t) -> Result<()> {
    if code == sys::GEM_OK {
        Ok(())
    } else {
        Err(Error::last(code))
    }
}

pub(crate) fn invalid(message: String) -> Error {
    Error::new(Status::InvalidArgument, message)
}

/// Copies a C string that libgem owns (NULL gives "").
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn from_c_static(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Same, None for NULL.
pub(crate) unsafe fn from_c_opt(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// Copies a string that libgem returned through `char **` and frees it with gem_free.
pub(crate) unsafe fn take_c_string(p: *mut c_char) -> String {
    let s = from_c_static(p);
    sys::gem_free(p as *mut c_void);
    s
}

/// A C string of a Rust string; an interior NUL is an InvalidArgument error, not a panic.
pub(crate) fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(format!("{}: contains a NUL byte", what)))
}

/// A C string of a path (its bytes as they are: Unix file names need not be UTF-8).
pub(crate) fn c_path(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| invalid(format!("path {}: contains a NUL byte", path.display())))
}

/// i32 of a usize count, or InvalidArgument naming it.
pub(crate) fn to_i32(n: usize, what: &str) -> Result<i32> {
    if n > i32::MAX as usize {
        Err(invalid(format!("{} = {} does not fit in 32 bits", what, n)))
    } else {
        Ok(n as i32)
    }
}
