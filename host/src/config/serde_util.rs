//! Deserialisation helpers shared by the configuration types.
//!
//! ABS configs write numbers with YAML `_` separators (`50_000_000`), which YAML 1.2 (and so
//! serde_yaml) reads as strings; enum values are case-insensitive (`TCP` and `tcp`). Both are
//! handled here so the model types stay declarative (DESIGN D3).

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

/// A number that may arrive as a YAML/JSON integer, a float with no fraction, or a string with
/// `_` separators.
pub trait ConfigNumber: Sized + FromStr {
    fn from_i128(v: i128) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
}

macro_rules! int_number {
    ($($t:ty),*) => {$(
        impl ConfigNumber for $t {
            fn from_i128(v: i128) -> Option<Self> { <$t>::try_from(v).ok() }
            fn from_f64(v: f64) -> Option<Self> {
                if v.fract() == 0.0 && v.is_finite() { Self::from_i128(v as i128) } else { None }
            }
        }
    )*};
}
int_number!(u8, u16, u32, u64, i32, i64, usize);

impl ConfigNumber for f64 {
    fn from_i128(v: i128) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
}

struct NumberVisitor<T>(PhantomData<T>);

impl<'de, T: ConfigNumber> Visitor<'de> for NumberVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a number in range for {}", std::any::type_name::<T>())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::from_i128(v.into()).ok_or_else(|| E::custom(format!("number {v} is out of range")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_i128(v.into()).ok_or_else(|| E::custom(format!("number {v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        T::from_f64(v).ok_or_else(|| E::custom(format!("number {v} is not allowed here")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let cleaned: String = v.trim().chars().filter(|c| *c != '_').collect();
        if cleaned.is_empty() || v.starts_with('_') || v.ends_with('_') {
            return Err(E::custom(format!("expected a number, got \"{v}\"")));
        }
        cleaned
            .parse::<T>()
            .map_err(|_| E::custom(format!("expected a number, got \"{v}\"")))
    }
}

/// `deserialize_with` for a plain numeric field.
pub fn number<'de, D: Deserializer<'de>, T: ConfigNumber>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(NumberVisitor(PhantomData))
}

/// `deserialize_with` for an optional numeric field (`null` → `None`).
pub fn opt_number<'de, D: Deserializer<'de>, T: ConfigNumber>(d: D) -> Result<Option<T>, D::Error> {
    struct OptVisitor<T>(PhantomData<T>);
    impl<'de, T: ConfigNumber> Visitor<'de> for OptVisitor<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            number(d).map(Some)
        }
    }
    d.deserialize_option(OptVisitor(PhantomData))
}

/// `deserialize_with` for an optional list of numbers.
pub fn opt_number_list<'de, D: Deserializer<'de>, T: ConfigNumber>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Item<T: ConfigNumber>(#[serde(deserialize_with = "number")] T);
    let items: Option<Vec<Item<T>>> = serde::Deserialize::deserialize(d)?;
    Ok(items.map(|v| v.into_iter().map(|i| i.0).collect()))
}

/// Declares a string enum whose canonical spelling is used when writing and whose reading is
/// case-insensitive, with optional extra aliases.
macro_rules! config_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            // `tt`, not `literal`: a `literal` fragment reaches derive macros wrapped in an
            // invisible group, and utoipa then ignores the `serde(rename)` below, documenting
            // the variant names instead of the spellings the API reads and writes.
            $( $(#[$vmeta:meta])* $variant:ident = $canon:tt $(| $alias:tt)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $canon)] $variant, )+
        }

        impl $name {
            /// Every accepted canonical spelling, for error messages.
            pub const VARIANTS: &'static [&'static str] = &[$($canon),+];

            /// Every accepted spelling, aliases included (any case), for the OpenAPI schema.
            pub const SPELLINGS: &'static [&'static str] = &[$($canon $(, $alias)*),+];

            /// The canonical spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $( Self::$variant => $canon, )+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $(
                    if s.eq_ignore_ascii_case($canon) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Ok(Self::$variant);
                    }
                )+
                Err(format!(
                    "unknown value \"{}\", expected one of {}",
                    s,
                    Self::VARIANTS.join(", ")
                ))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use config_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct N {
        #[serde(deserialize_with = "number")]
        a: u64,
        #[serde(default, deserialize_with = "opt_number")]
        b: Option<i32>,
    }

    #[test]
    fn numbers_accept_yaml_underscores() {
        let n: N = serde_yaml::from_str("a: 50_000_000\nb: -1_0").unwrap();
        assert_eq!(n.a, 50_000_000);
        assert_eq!(n.b, Some(-10));
        let n: N = serde_yaml::from_str("a: 7").unwrap();
        assert_eq!((n.a, n.b), (7, None));
    }

    #[test]
    fn numbers_reject_garbage_and_out_of_range() {
        assert!(serde_yaml::from_str::<N>("a: 12abc").is_err());
        assert!(serde_yaml::from_str::<N>("a: -5").is_err());
        assert!(serde_yaml::from_str::<N>("a: _5").is_err());
        assert!(serde_yaml::from_str::<N>("a: 1.5").is_err());
        assert!(serde_json::from_str::<N>(r#"{"a": 4.0}"#).is_ok());
    }
}
