//! The one error type of Waymark.
//!
//! Every failure surfaces as an [`Error`] whose [`Error::code`] is one of the
//! stable `ErrorCode` strings of the public TypeScript contract (`API.md`).
//! The bindings turn it into a real JS `Error` with a `code` property.

use std::fmt;

/// A Waymark error. Match on [`Error::code`] (stable) rather than on the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something malformed; nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A state-machine transition that is not allowed from the current state.
    #[error("invalid transition: {0}")]
    InvalidTransition(String),
    /// A named thing (checkpoint, run, seq) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Somebody else got there first (unique name taken, live lease held, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A step's review kept rejecting its result until attempts ran out.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The storage adapter failed; the operation was not applied.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored bytes could not be decoded. `key` names the storage key.
    #[error("corrupt data at key {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// A single transaction is larger than the store accepts.
    #[error("too large: {what} is {size} bytes, the limit is {limit} bytes")]
    TooLarge { what: String, size: usize, limit: usize },
}

/// The stable codes, as in `API.md`'s `ErrorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidInput,
    InvalidTransition,
    NotFound,
    Conflict,
    Rejected,
    Storage,
    Corrupt,
    Closed,
    TooLarge,
}

impl ErrorCode {
    /// The string code exposed to TypeScript (`"INVALID_INPUT"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Rejected => "REJECTED",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Corrupt => "CORRUPT",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::TooLarge => "TOO_LARGE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::InvalidTransition(_) => ErrorCode::InvalidTransition,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Rejected(_) => ErrorCode::Rejected,
            Error::Storage(_) => ErrorCode::Storage,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::Closed => ErrorCode::Closed,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    pub fn corrupt(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::Corrupt { key: key.into(), reason: reason.to_string() }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A number in an error message, printed as JS would for the usual cases
/// (`NaN`, `Infinity`, `-5`, `1.5`, `1700000000000`) without Rust's float
/// formatting, which would add ~17 KB to the wasm (a size budget, STYLE.md
/// habit 12). Integers below 10^19 are exact; other numbers get at most six
/// decimals (`0.1`, `2.333333`, `1.5e+21`): enough to recognise a bad input.
pub struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n.is_nan() {
            return f.write_str("NaN");
        }
        if n < 0.0 {
            f.write_str("-")?;
        }
        let mut a = n.abs();
        if a == f64::INFINITY {
            return f.write_str("Infinity");
        }
        let mut exp = 0i32;
        if a >= 1e19 {
            while a >= 10.0 {
                a /= 10.0;
                exp += 1;
            }
        }
        while a != 0.0 && a < 1e-6 {
            a *= 10.0;
            exp -= 1;
        }
        if exp < 0 {
            while a < 1.0 {
                a *= 10.0;
                exp -= 1;
            }
        }
        let (int, mut frac) = (a as u64, ((a - a.trunc()) * 1e6 + 0.5).floor() as u64);
        let int = if frac >= 1_000_000 {
            frac = 0;
            int + 1
        } else {
            int
        };
        write!(f, "{int}")?;
        if frac > 0 {
            let mut width = 6;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            write!(f, ".{frac:0width$}")?;
        }
        match exp {
            0 => Ok(()),
            e if e > 0 => write!(f, "e+{e}"),
            e => write!(f, "e{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_api_strings() {
        let all = [
            (Error::invalid("x"), "INVALID_INPUT"),
            (Error::InvalidTransition("a -> b".into()), "INVALID_TRANSITION"),
            (Error::NotFound("cp".into()), "NOT_FOUND"),
            (Error::Conflict("name".into()), "CONFLICT"),
            (Error::Rejected("review".into()), "REJECTED"),
            (Error::Storage("io".into()), "STORAGE"),
            (Error::corrupt("k", "bad"), "CORRUPT"),
            (Error::Closed, "CLOSED"),
            (Error::TooLarge { what: "tx".into(), size: 2, limit: 1 }, "TOO_LARGE"),
        ];
        for (e, code) in all {
            assert_eq!(e.code().as_str(), code);
        }
    }

    #[test]
    fn numbers_print_like_js_for_the_usual_cases() {
        let cases: [(f64, &str); 14] = [
            (0.0, "0"),
            (-5.0, "-5"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-0.25, "-0.25"),
            (2.0 / 3.0, "0.666667"),
            (1_700_000_000_000.0, "1700000000000"),
            (1_700_000_000_000.5, "1700000000000.5"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (1.5e21, "1.5e+21"),
            (1e-7, "1e-7"),
        ];
        for (n, want) in cases {
            assert_eq!(Num(n).to_string(), want, "{n:?}");
        }
    }

    #[test]
    fn corrupt_message_names_the_key() {
        let e = Error::corrupt("s/abc/t/000000000001", "unexpected end");
        assert!(e.to_string().contains("s/abc/t/000000000001"), "{e}");
    }
}
