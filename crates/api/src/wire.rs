//! Wire-level building blocks shared by the generated shapes: timestamps and lenient enums.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, kept as milliseconds since the Unix epoch. On the wire it is a JSON number of
/// epoch seconds with a millisecond fraction (`1409764576.589`), as the AWS JSON protocol sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Whole seconds since the epoch (as SigV4 signs them).
    pub fn whole_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// A system time (one before the epoch is the epoch).
    pub fn from_system(time: std::time::SystemTime) -> Timestamp {
        let since = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.seconds())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        if !seconds.is_finite() || seconds.abs() > 1.0e13 {
            return Err(serde::de::Error::custom("timestamp out of range"));
        }
        Ok(Timestamp((seconds * 1000.0).round() as i64))
    }
}

/// An enum value as it arrived on the wire: either one of the modelled values or an unrecognised
/// string. Handlers reject unknown values with the exception AWS uses for that field, which a plain
/// serde enum could not do (it would fail the whole body with a generic error).
pub trait WireEnum: Sized {
    /// Every modelled value, in model order.
    const VALUES: &'static [&'static str];
    fn as_str(&self) -> &str;
    fn is_known(&self) -> bool;
}

/// Defines a wire enum: known variants plus `Unrecognized(String)`, (de)serialised as its string.
macro_rules! wire_enum {
    ($name:ident { $($variant:ident = $value:literal,)+ }) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
            Unrecognized(String),
        }

        impl $crate::wire::WireEnum for $name {
            const VALUES: &'static [&'static str] = &[$($value),+];

            fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $value,)+
                    $name::Unrecognized(other) => other.as_str(),
                }
            }

            fn is_known(&self) -> bool {
                !matches!(self, $name::Unrecognized(_))
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                $crate::wire::WireEnum::as_str(self)
            }

            pub fn is_known(&self) -> bool {
                $crate::wire::WireEnum::is_known(self)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($value => $name::$variant,)+
                    other => $name::Unrecognized(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::from(value.as_ref()))
            }
        }
    };
}

pub(crate) use wire_enum;

/// Formats the list of allowed values for an error message: `[Server, Lambda, ECS]`.
pub fn allowed_values<E: WireEnum>() -> impl fmt::Display {
    struct Allowed(&'static [&'static str]);
    impl fmt::Display for Allowed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "[{}]", self.0.join(", "))
        }
    }
    Allowed(E::VALUES)
}
