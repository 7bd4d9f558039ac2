//! Names that are parsed, not validated: a value that exists is a valid name.

use crate::error::TypeError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a value, refusing anything that is not a valid name.
            pub fn new(value: impl Into<String>) -> Result<Self, TypeError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(why) => Err(TypeError::Invalid { what: $what, value, why }),
                }
            }

            /// A value built by p0 itself from characters that are always valid.
            #[allow(dead_code)]
            pub(crate) fn trusted(value: String) -> Self {
                debug_assert!(Self::new(value.clone()).is_ok(), "{value}");
                Self(value)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TypeError;
            fn try_from(value: String) -> Result<Self, TypeError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = TypeError;
            fn from_str(s: &str) -> Result<Self, TypeError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn check_slug(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > max {
        return Err("length out of range");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("only a-z, 0-9 and _ are allowed");
    }
    if !s.as_bytes()[0].is_ascii_lowercase() {
        return Err("must start with a letter");
    }
    Ok(())
}

checked_name!(
    /// A database user created by p0: `p0_<requester slug>_<short id>`, lowercase ASCII,
    /// at most 63 bytes (PostgreSQL's limit; MySQL's limit of 32 is applied by its provisioner).
    Username,
    "user name",
    |s| {
        check_slug(s, 63)?;
        if !s.starts_with("p0_") {
            return Err("managed users start with `p0_`");
        }
        Ok(())
    }
);

checked_name!(
    /// A database role: either an ephemeral role made by p0 or a pre-existing role asked for by name.
    RoleName,
    "role name",
    |s| {
        if s.is_empty() || s.len() > 63 {
            return Err("length must be 1 to 63 bytes");
        }
        if s.chars().any(|c| c.is_control()) {
            return Err("control characters are not allowed");
        }
        Ok(())
    }
);

checked_name!(
    /// The identifier of one access request: 8 to 64 characters of `A-Za-z0-9-_`.
    RequestId,
    "request id",
    |s| {
        if s.len() < 8 || s.len() > 64 {
            return Err("length must be 8 to 64 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("only A-Z, a-z, 0-9, - and _ are allowed");
        }
        Ok(())
    }
);

checked_name!(
    /// A named database target, e.g. `pg/prod`.
    ResourceId,
    "resource",
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("length must be 1 to 128 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b)) {
            return Err("only A-Z, a-z, 0-9 and -_./: are allowed");
        }
        Ok(())
    }
);

impl RequestId {
    /// A fresh random request id (128 bits, hex).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(hex::encode(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(Username::new("p0_alice_1234abcd").is_ok());
        assert!(Username::new("alice").is_err());
        assert!(Username::new("p0_a\"; drop").is_err());
        assert!(RequestId::new("short").is_err());
        assert!(RoleName::new("x\0y").is_err());
        assert!(ResourceId::new("pg/prod").is_ok());
    }
}
